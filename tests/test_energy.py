"""Energy per action and per level (issue 20): accesses from the compiled plans, per-level sums, overrides,
both simulators, the report's split, and the ZigZag cross-check where zigzag-dse is installed."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import yaml
from conftest import small_chip_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_roofline_property import chips, graphs

from elk_dse.cli import main
from elk_dse.compiler.compile import compile_graph
from elk_dse.cost.energy import DYNAMIC_LEVELS, LEVELS, program_energy
from elk_dse.errors import ConfigError
from elk_dse.evaluate import METRICS, DesignPoint, evaluate, evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.energy import SRAM_REF_BANK_BYTES, EnergySpec, sram_pj_per_byte
from elk_dse.models import ModelConfig, build_model
from elk_dse.results.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
ZIGZAG_RESULTS = ROOT / "tests" / "data" / "zigzag_tpu_like_resnet18.json"

ENERGY_KEYS = ["mac_fp16_pj", "mac_int8_pj", "rf_pj_per_byte", "acc_pj_per_byte", "sram_read_pj_per_byte",
               "sram_write_pj_per_byte", "noc_pj_per_byte_hop", "chip_link_pj_per_byte", "hbm_read_pj_per_byte",
               "hbm_write_pj_per_byte", "leakage_w_per_mm2", "sram_leakage_w_per_mib"]


@st.composite
def energy_overrides(draw):
    keys = draw(st.lists(st.sampled_from(ENERGY_KEYS), unique=True, max_size=5))
    return {k: draw(st.floats(0.0, 100.0 if not k.endswith(("_mm2", "_mib")) else 0.2)) for k in keys}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chip=chips(), graph=graphs(), overrides=energy_overrides(), sim=st.sampled_from(["analytic", "event"]))
def test_levels_sum_exactly_to_energy_j_over_random_chips(chip, graph, overrides, sim):
    chip = chip_from_dict({**_plain(chip), "energy": overrides})
    result = evaluate_graph(graph, chip, sim=sim)
    if not result["feasible"]:
        assert math.isnan(result["energy_j"]) and all(math.isnan(result[f"energy_{lv}_j"]) for lv in LEVELS)
        return
    levels = result["energy_by_level"]
    assert list(levels) == list(LEVELS)
    total = 0.0
    for lv in LEVELS:  # the contract: energy_j is the levels added in LEVELS order -- exactly
        total += levels[lv]
        assert levels[lv] >= 0 and result[f"energy_{lv}_j"] == levels[lv]
    assert result["energy_j"] == total
    assert result["energy_dynamic_j"] == pytest.approx(sum(levels[lv] for lv in DYNAMIC_LEVELS), rel=1e-12, abs=1e-300)
    # Per operator, the dynamic levels add up to the totals.
    for lv in DYNAMIC_LEVELS:
        assert sum(op["energy_j"][lv] for op in result["ops"]) == pytest.approx(levels[lv], rel=1e-9, abs=1e-300)
    # Charged bytes are the Program's: HBM and chip-link energy follow from its byte counts and the table.
    table = result["energy_table"]
    hbm_read = sum(op["hbm_bytes"] for op in result["ops"])  # reads + writes
    low, high = sorted((table["hbm_read_pj_per_byte"], table["hbm_write_pj_per_byte"]))
    assert hbm_read * low * 1e-12 * (1 - 1e-9) <= levels["hbm"] <= hbm_read * high * 1e-12 * (1 + 1e-9) + 1e-300
    assert levels["chip_link"] == pytest.approx(result["chip_link_bytes"] * table["chip_link_pj_per_byte"] * 1e-12,
                                                rel=1e-9, abs=1e-300)
    assert levels["static"] == pytest.approx(result["static_power_w"] * result["latency_s"], rel=1e-12)


def _plain(chip):
    d = chip.resolved()
    d.pop("derived")
    return d


def test_no_mac_is_lost_and_padding_is_charged():
    chip = chip_from_dict(small_chip_dict())
    graph = build_model(ModelConfig("bert_base", phase="prefill", batch=1, seq_len=128))
    program = compile_graph(graph, chip)
    report = program_energy(program, graph, latency_s=1e-3)
    ops = [op for _, _, op in graph.instances()]
    for op, acc in zip(ops, report.accesses, strict=True):
        if op.uses_matrix_unit:
            assert acc.macs >= op.points * (1 - 1e-12), op.name  # every true MAC at least once
            assert acc.rf_bytes > 0 and acc.acc_bytes > 0 and acc.sram_read_bytes > 0
    assert sum(a.hbm_read_bytes + a.hbm_write_bytes for a in report.accesses) == pytest.approx(program.hbm_bytes)


def test_overrides_replace_only_their_action():
    base = small_chip_dict()
    point = DesignPoint(chip_from_dict(base), ModelConfig("llama2_7b", batch=1, kv_len=256))
    ref = evaluate(point, include_ops=False)
    hbm88 = evaluate(DesignPoint(chip_from_dict({**base, "energy": {"hbm_read_pj_per_byte": 88.0}}), point.model),
                     include_ops=False)
    for lv in LEVELS:
        if lv != "hbm":
            assert hbm88[f"energy_{lv}_j"] == pytest.approx(ref[f"energy_{lv}_j"], rel=1e-12), lv
    assert hbm88["energy_hbm_j"] > 2 * ref["energy_hbm_j"]
    # With every dynamic action free, only leakage is left.
    free = {k: 0.0 for k in ENERGY_KEYS if k.endswith("_pj") or "_pj_" in k}
    free.update({f"mac_{f}_pj": 0.0 for f in ("fp32", "bf16", "fp8", "bfp8", "bfp4")})
    zero = evaluate(DesignPoint(chip_from_dict({**base, "energy": free}), point.model), include_ops=False)
    assert zero["energy_dynamic_j"] == 0.0 and zero["energy_j"] == zero["energy_static_j"] > 0


def test_both_simulators_charge_the_same_accesses():
    chip = chip_from_dict(small_chip_dict())
    model = ModelConfig("llama2_7b", batch=2, kv_len=256)
    a = evaluate(DesignPoint(chip, model), include_ops=False)
    from elk_dse.sim import SimConfig

    e = evaluate(DesignPoint(chip, model, sim=SimConfig("event")), include_ops=False)
    assert e["energy_dynamic_j"] == pytest.approx(a["energy_dynamic_j"], rel=1e-12)
    assert e["energy_static_j"] / e["latency_s"] == pytest.approx(a["energy_static_j"] / a["latency_s"], rel=1e-12)


def test_sram_energy_grows_with_bank_size_and_falls_with_width():
    ref = 0.8
    assert sram_pj_per_byte(ref, SRAM_REF_BANK_BYTES, 8) == pytest.approx(ref)
    assert sram_pj_per_byte(ref, 4 * SRAM_REF_BANK_BYTES, 8) == pytest.approx(2 * ref)  # sqrt of capacity
    assert sram_pj_per_byte(ref, SRAM_REF_BANK_BYTES, 64) < sram_pj_per_byte(ref, SRAM_REF_BANK_BYTES, 8)
    small = chip_from_dict(small_chip_dict(cores={"sram_kib": 64}))
    big = chip_from_dict(small_chip_dict(cores={"sram_kib": 1024}))
    assert small.energy_table.sram_read_pj_per_byte < big.energy_table.sram_read_pj_per_byte


@pytest.mark.parametrize("field,value", [("hbm_read_pj_per_byte", -1.0), ("leakage_w_per_mm2", -0.1),
                                         ("sram_width_bytes", 0.0), ("mac_int8_pj", 1e9)])
def test_bad_energy_entries_name_their_field(field, value):
    with pytest.raises(ConfigError, match=f"chip.energy.{field}"):
        chip_from_dict({**small_chip_dict(), "energy": {field: value}})
    with pytest.raises(ConfigError):
        EnergySpec(**{field: value})


def test_energy_metrics_are_parquet_columns():
    for lv in LEVELS:
        assert f"energy_{lv}_j" in METRICS
    assert "energy_dynamic_j" in METRICS


def test_sweep_on_perf_per_w_with_an_overridden_energy_table_reports_the_split(tmp_path, capsys):
    space = tmp_path / "ppw.yaml"
    space.write_text(yaml.safe_dump({
        "description": "perf/W against latency with ZigZag-like DRAM energy",
        "objectives": [{"metric": "perf_per_w", "direction": "maximize"},
                       {"metric": "latency_s", "direction": "minimize"}],
        "params": {"chip.cores.sram_kib": {"choices": [512, 1536]},
                   "chip.energy.sram_read_pj_per_byte": {"choices": [0.5, 2.0]}},
    }))
    out = tmp_path / "sweep"
    assert main(["sweep", "+chip=mesh64", "model=bert_base", "model.seq_len=128", f"sweep={space}", f"out={out}",
                 "chip.energy.hbm_read_pj_per_byte=88", "chip.energy.hbm_write_pj_per_byte=94",
                 "search.n_trials=4", "search.batch_size=4", "search.workers=0", "search.sampler=grid",
                 "progress=false"]) == 0
    df = ResultStore(out).read()
    assert (df["status"] == "COMPLETE").all() and len(df) == 4
    levels = df[[f"metric.energy_{lv}_j" for lv in LEVELS]].sum(axis=1)
    assert (levels - df["metric.energy_j"]).abs().max() <= 1e-9 * df["metric.energy_j"].max()
    # The fixed override reached every trial: HBM bytes x 88 pJ for reads (bert keeps weights in HBM).
    design = json.loads(next((out / "designs").glob("trial_*.json")).read_text())
    assert design["energy_table"]["hbm_read_pj_per_byte"] == 88.0
    assert set(df["param.chip.energy.sram_read_pj_per_byte"]) == {0.5, 2.0}
    html = (out / "report" / "index.html").read_text() if (out / "report" / "index.html").exists() else \
        next(out.rglob("*.html")).read_text()
    assert "Energy by level" in html and "energy_designs_" in html


def _zigzag_inputs():
    zigzag = pytest.importorskip("zigzag", reason="zigzag-dse is not installed (pip install zigzag-dse==3.9.1 six)")
    return Path(zigzag.__file__).parent / "inputs"


def _crosscheck():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import zigzag_crosscheck
    finally:
        sys.path.pop(0)
    return zigzag_crosscheck


def test_resnet18_dynamic_energy_within_25_percent_of_zigzag(tmp_path):
    """ZigZag 3.9.1's per-layer results (tests/data, made by benchmarks/zigzag_crosscheck.py) against ours on
    the same ONNX and ZigZag's tpu_like per-access energies; needs the zigzag-dse wheel for both files."""
    inputs = _zigzag_inputs()
    zc = _crosscheck()
    energy = zc.tpu_like_energy(inputs / "hardware" / "tpu_like.yaml")
    onnx_path = zc.shape_only_onnx(inputs / "workload" / "resnet18.onnx", tmp_path / "resnet18.onnx")
    ours, _ = zc.run_ours(onnx_path, energy)
    cmp = zc.compare(json.loads(ZIGZAG_RESULTS.read_text()), ours)
    assert len(cmp["rows"]) == 21
    assert 0.75 <= cmp["ratio"] <= 1.25, cmp["ratio"]
    assert cmp["spearman"] >= 0.9, cmp["spearman"]


@pytest.mark.slow
def test_stored_zigzag_results_are_what_zigzag_computes(tmp_path):
    """Reruns ZigZag's loop-nest search (~2-3 min) and checks the stored per-layer results."""
    inputs = _zigzag_inputs()
    zc = _crosscheck()
    onnx_path = zc.shape_only_onnx(inputs / "workload" / "resnet18.onnx", tmp_path / "resnet18.onnx")
    fresh = zc.run_zigzag(inputs, onnx_path, None)
    stored = json.loads(ZIGZAG_RESULTS.read_text())
    assert [r["name"] for r in fresh] == [r["name"] for r in stored]
    for f, s in zip(fresh, stored, strict=True):
        for k in ("mac", "rf", "sram", "hbm"):
            assert f[k] == pytest.approx(s[k], rel=1e-6), (f["name"], k)


def test_shipped_perf_per_w_sweep_searches_an_energy_entry_absent_from_the_chip_yaml():
    from elk_dse.search.space import apply_params, load_space

    space = load_space("perf_per_w")
    assert space.objectives[0].metric == "perf_per_w"
    base = {"chip": yaml.safe_load((ROOT / "conf" / "chip" / "mesh64.yaml").read_text())}
    assert "energy" not in base["chip"]
    design = apply_params(base, {"chip.energy.sram_bank_kib": 16, "chip.cores.sram_kib": 512})
    small_bank = chip_from_dict(design["chip"])
    big_bank = chip_from_dict(apply_params(base, {"chip.energy.sram_bank_kib": 256})["chip"])
    assert small_bank.energy_table.sram_read_pj_per_byte < big_bank.energy_table.sram_read_pj_per_byte
    with pytest.raises(ConfigError, match="chip.hbm.bandwidth_gb_s"):  # a section with required fields
        apply_params({"chip": {"name": "x"}}, {"chip.hbm.bandwidth_gb_s": 800.0})


def test_every_process_node_has_energy_defaults_and_keeps_its_static_power():
    from elk_dse.cost.area import sram_area_mm2
    from elk_dse.hw.energy import NODE_ENERGY
    from elk_dse.hw.tech import TECH_NODES

    assert set(NODE_ENERGY) == set(TECH_NODES)
    for node in TECH_NODES:
        chip = chip_from_dict({**small_chip_dict(), "process": node})
        # SRAM leakage per MiB is the node's leakage per mm^2 over the SRAM's mm^2 per MiB: static power stays
        # area x W/mm^2, as before per-level accounting.
        from elk_dse.cost.area import area_mm2, static_power_w

        assert static_power_w(chip) == pytest.approx(area_mm2(chip) * NODE_ENERGY[node].leakage_w_per_mm2, rel=1e-9)
        assert 0 < sram_area_mm2(chip) < area_mm2(chip)
