"""Descriptions of shipping chips (issue 10): derived figures against the sources in their comments, the
overhead parameters' physical meaning, numeric-format compute rates, and one-line rejection of contradictory
descriptions."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from tests_paths import CONF

from elk_dse.cli import main
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.core_models import core_model
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.ir.graph import Operator, Role, Tensor
from elk_dse.models import model_config_from_dict

REAL = ("wormhole_n150", "blackhole_p150", "wormhole_t3k", "wormhole_galaxy", "inferentia2")


def chip_dict(name: str) -> dict:
    return yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())


def test_real_chips_derived_figures():
    n150, p150 = chip_from_dict(chip_dict("wormhole_n150")), chip_from_dict(chip_dict("blackhole_p150"))
    t3k, inf2 = chip_from_dict(chip_dict("wormhole_t3k")), chip_from_dict(chip_dict("inferentia2"))
    # Wormhole: 64 Tensix x 4096 FLOP/cycle at LoFi x 1 GHz; 12 banks, 288 GB/s; 1464 KB L1 per core.
    assert n150.peak_flops_per_s == 64 * 4096 * 1e9
    assert n150.cores.macs_per_cycle * 2 == 1024  # HiFi4 = 1/4 of LoFi
    assert (n150.hbm.channels, n150.hbm_bytes_per_s, n150.sram_bytes_per_core) == (12, 288e9, 1464 * 1024)
    # Blackhole p150: 13x10 = 130 cores of 140 on the die, 1.35 GHz, 8 banks at 512 GB/s, 64 B/flit.
    assert (p150.num_cores, p150.cores.die_cores, p150.hbm.channels) == (130, 140, 8)
    assert p150.peak_flops_per_s == pytest.approx(130 * 4096 * 1.35e9)
    assert p150.link_bytes_per_s == 64 * 1.35e9 and p150.hbm_bytes_per_s == 512e9
    # 8 Wormhole chips: all cores of all chips, per-chip DRAM summed.
    assert (t3k.num_chips, t3k.num_cores, t3k.hbm_bytes_per_s) == (8, 512, 8 * 288e9)
    # 1 link per neighbour at the 11.1 GB/s tt-metal's CCLs reach (conf/chip/wormhole_t3k.yaml, issue 17t).
    assert t3k.chip_topology.grid == (2, 4) and t3k.chip_link_bytes_per_s == pytest.approx(2.5 * 1 * 11.1e9)
    # Galaxy: 32 chips as a 4x8 mesh; 4 links to each neighbour, 13 links per chip on average, 11.1 GB/s each.
    galaxy = chip_from_dict(chip_dict("wormhole_galaxy"))
    assert (galaxy.num_chips, galaxy.num_cores, galaxy.chip_topology.grid) == (32, 2048, (4, 8))
    assert len(galaxy.chip_topology.links()) == 52
    assert galaxy.chip_link_bytes_per_s == pytest.approx(52 * 2 * 4 / 32 * 11.1e9)
    assert galaxy.chips.parallelism == "tp2d"  # the Galaxy demo's 2-D sharding (compiler/parallel/tp2d.py)
    # Inferentia2: 2 cores x 95 TFLOP/s bf16 = 190 per chip; fp32 at 1/4; 820 GiB/s of HBM.
    bf16_flops = 2 * inf2.cores.macs_per_cycle * inf2.clock_hz * inf2.num_cores
    assert bf16_flops == pytest.approx(190e12, rel=0.01)
    assert bf16_flops * inf2.cores.format_speedup.fp32 == pytest.approx(47.5e12, rel=0.01)
    assert inf2.hbm.bandwidth_gb_s * 1e9 == pytest.approx(820 * 2**30, rel=1e-3)
    # ... of which its two NeuronCore-v2 draw at most 2 x 16 DMA engines x 17 B/ns = 544 GB/s (issue 17n, eighth
    # session: the NKI DMA bandwidth guide's sustained rate; conf/chip/inferentia2.yaml)
    assert inf2.hbm_bytes_per_s == pytest.approx(2 * 272e9)


@pytest.mark.parametrize(("override", "field"), [
    ({"cores": {"die_cores": 60}}, "chip.cores.count"),  # an 8x8 compute grid on a 60-core die
    ({"hbm": {"channels": 0}}, "chip.hbm.channels"),  # zero DRAM banks
    ({"hbm": {"efficiency": 1.2}}, "chip.hbm.efficiency"),  # more than the peak
    ({"overheads": {"dispatch_us_per_op": -1}}, "chip.overheads.dispatch_us_per_op"),
    ({"cores": {"format_speedup": {"bfp4": 0}}}, "chip.cores.format_speedup.bfp4"),
])
def test_contradictory_description_is_rejected_naming_the_field(override, field):
    data = chip_dict("wormhole_n150")
    for section, values in override.items():
        data[section] = {**data.get(section, {}), **values}
    with pytest.raises(ConfigError) as err:
        chip_from_dict(data)
    assert str(err.value).startswith(field + "=") and "\n" not in str(err.value)


def test_cli_rejects_compute_grid_larger_than_die(capsys):
    assert main(["evaluate", "+chip=wormhole_n150", "chip.cores.die_cores=32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "chip.cores.count" in err and "die_cores=32" in err


def _matmul(m: int, fmt: str) -> Operator:
    a = Tensor("x", ("m", "k"), Role.ACTIVATION, 2.0, "bf16")
    w = Tensor("w", ("k", "n"), Role.WEIGHT, 0.5625 if fmt == "bfp4" else 2.0, fmt)
    return Operator("mm", "matmul", (("m", m), ("k", 256), ("n", 256)), (a, w), Tensor("y", ("m", "n"), Role.ACTIVATION))


def test_tensix_pads_to_tiles_and_runs_formats_at_their_fidelity():
    model = core_model(chip_from_dict(chip_dict("wormhole_n150")).cores)
    sub = {"m": np.array([1.0, 32.0, 33.0]), "k": np.array([256.0] * 3), "n": np.array([256.0] * 3)}
    bf16 = model.cycles(_matmul(1, "bf16"), sub)
    # One row computes a whole 32-row tile; 33 rows take two. 8x8 k-n tiles of 32^3 MACs at 512 MAC/cycle.
    assert list(bf16) == [64 * 64, 64 * 64, 2 * 64 * 64]
    assert list(model.cycles(_matmul(1, "bfp4"), sub)) == list(bf16 / 4)  # LoFi: 4x HiFi4


def _decode(chip, sched="sequential", **formats):
    cfg = model_config_from_dict({"name": "llama3_2_1b", "phase": "decode", "batch": 1, "kv_len": 128,
                                  "dtype": "bf16", "formats": formats})
    return evaluate(DesignPoint(chip, cfg, SchedulerConfig(name=sched)), include_ops=False)


def test_overheads_add_their_physical_cost():
    base = {**chip_dict("wormhole_n150"), "overheads": {"dispatch_us_per_op": 0.0, "sync_us_per_layer": 0.0}}
    r0 = _decode(chip_from_dict(base))
    d = {**base, "overheads": {"dispatch_us_per_op": 10.0, "sync_us_per_layer": 0.0}}
    r1 = _decode(chip_from_dict(d))
    # Sequential schedule: nothing overlaps an operator, so each instance adds exactly its dispatch.
    assert r1["latency_s"] - r0["latency_s"] == pytest.approx(r0["model"]["ops"] * 10e-6, rel=1e-6)
    s = {**base, "overheads": {"dispatch_us_per_op": 0.0, "sync_us_per_layer": 50.0}}
    r2 = _decode(chip_from_dict(s))
    layers = 16 + 2  # 16 decoder layer instances, plus embed and head
    assert r2["latency_s"] - r0["latency_s"] == pytest.approx(layers * 50e-6, rel=1e-6)
    # Half the DRAM efficiency: the HBM-bound decode takes longer, and never beats the (peak) roofline.
    e = {**base, "hbm": {**base["hbm"], "efficiency": 0.5}}
    r3 = _decode(chip_from_dict(e))
    assert r3["latency_s"] > 1.5 * r0["latency_s"] and r3["roofline_latency_s"] == r0["roofline_latency_s"]
    for r in (r0, r1, r2, r3):
        assert r["latency_s"] >= r["roofline_latency_s"]


def test_tensor_parallel_over_eight_chips():
    # Llama-3.1-70B does not fit one Wormhole's 12 GiB; over 8 chips (tensor parallelism since issue 17,
    # docs/parallelism.md) each chip holds 1/8 of every block, the all-reduces cross the Ethernet links, and the
    # latency stays above the roofline.
    fmts = {"weights": "bfp8", "mlp_weights": "bfp4", "attention_weights": "bfp8", "kv_cache": "bfp8"}
    cfg = model_config_from_dict({"name": "llama3_1_70b", "batch": 1, "kv_len": 128, "dtype": "bf16",
                                  "formats": fmts})
    one = evaluate(DesignPoint(chip_from_dict(chip_dict("wormhole_n150")), cfg), include_ops=False)
    assert not one["feasible"] and one["infeasible_reason"] == "hbm_capacity"
    t3k = evaluate(DesignPoint(chip_from_dict(chip_dict("wormhole_t3k")), cfg, SchedulerConfig(name="sequential")),
                   include_ops=False)
    assert t3k["feasible"] and t3k["chip_link_bytes"] > 0
    assert t3k["latency_s"] >= t3k["roofline_latency_s"]
