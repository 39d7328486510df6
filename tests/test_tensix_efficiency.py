"""Issue 17k (eighth session): the Tensix matrix kernels' measured utilization (tt-metal's GEMM_FLOPS tables)
under tt_cnn: a table of [per-core tile products, utilization] rows per architecture, interpolated in
log(tiles), that only ever slows a kernel (docs/core_models.md, docs/stacks.md)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_paths import CONF

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.core_models import CORE_MODELS
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import CoreSpec, chip_from_dict
from elk_dse.hw.stack import apply_stack, load_stack, stack_names
from elk_dse.ir.graph import Operator, Role, Tensor
from elk_dse.models import model_config_from_dict

TABLE = ((64.0, 0.2), (512.0, 0.4), (4096.0, 0.6))


def matmul(m: int, n: int, k: int, batch: int = 1) -> Operator:
    dims = (("b", batch), ("m", m), ("n", n), ("k", k))
    return Operator("mm", "matmul", dims,
                    (Tensor("a", ("b", "m", "k"), Role.ACTIVATION), Tensor("w", ("b", "k", "n"), Role.ACTIVATION)),
                    Tensor("c", ("b", "m", "n"), Role.ACTIVATION))


def core(table=TABLE) -> CoreSpec:
    return CoreSpec(count=64, sram_kib=1464, model="tensix", matrix_rows=16, matrix_cols=32,
                    matmul_efficiency=table)


def cycles(spec: CoreSpec, op: Operator) -> float:
    sub = {d: np.array([n]) for d, n in op.dims}
    return float(CORE_MODELS["tensix"](spec).cycles(op, sub)[0])


def chip(name: str):
    import yaml
    return chip_from_dict(yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text()))


def test_a_utilization_below_the_peak_slows_the_kernel_by_its_inverse():
    # 8 x 8 x 8 tiles = 512 tile products per core: the table's 0.4 row, so 2.5x the peak's cycles
    op = matmul(256, 256, 256)
    peak = cycles(core(()), op)
    assert peak == 512 * 32 ** 3 / 512  # 512 tiles x 64 cycles (16 x 32 MAC/cycle, base rate)
    assert cycles(core(), op) == pytest.approx(peak / 0.4)


def test_the_table_is_interpolated_in_log_tiles_and_held_at_its_ends():
    cm = CORE_MODELS["tensix"](core())
    u = cm.utilization(np.array([1.0, 64.0, 512.0, math.sqrt(64 * 512), 2048.0, 4096.0, 1e7]))
    # at the rows exactly; halfway in log(tiles) between 64 and 512 (sqrt(64*512)) the mean of 0.2 and 0.4;
    # 2048 = 2/3 of the way from 512 to 4096 in log2 (9 -> 11 of 9 -> 12): 0.4 + 2/3 x 0.2; the end rows beyond
    assert u == pytest.approx([0.2, 0.2, 0.4, 0.3, 0.4 + 0.2 * 2 / 3, 0.6, 0.6])
    assert CORE_MODELS["tensix"](core(())).utilization(np.array([5.0])) == pytest.approx([1.0])


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 2048), n=st.integers(1, 2048), k=st.integers(1, 2048), batch=st.integers(1, 16))
def test_the_measured_utilization_never_beats_the_peak_nor_the_roofline(m, n, k, batch):
    op = matmul(m, n, k, batch)
    spec, peak_spec = core(), core(())
    slow, fast = cycles(spec, op), cycles(peak_spec, op)
    assert slow >= fast >= op.flops / spec.peak_flops_per_cycle
    assert slow <= fast / 0.2 * (1 + 1e-12)  # never slower than the table's lowest row says


def test_tt_cnn_ships_the_vendor_tables_per_architecture_and_only_tensix_cores_take_them():
    cnn = load_stack("tt_cnn")
    wh, bh = cnn.matmul_efficiency_by_arch.wormhole_b0, cnn.matmul_efficiency_by_arch.blackhole
    # GEMM_FLOPS.md @06bd3735: N150 traced BFLOAT8_B LoFi 2048^3 on 8x8 -> 64^3 / 64 = 4096 tiles per core at
    # 58.89%; P150 (13x10) 2560x3328x3328 -> 80 x 104 x 104 / 130 = 6656 tiles at 83.15%
    assert (4096, 0.5889) in wh and (6656, 0.8315) in bh
    assert "GEMM_FLOPS" in cnn.sources.matmul_efficiency
    assert apply_stack(chip("wormhole_n150"), cnn).cores.matmul_efficiency == wh
    assert apply_stack(chip("blackhole_p150"), cnn).cores.matmul_efficiency == bh
    assert apply_stack(chip("wormhole_galaxy"), cnn).cores.matmul_efficiency == wh
    assert apply_stack(chip("mesh64"), cnn).cores.matmul_efficiency == ()  # no architecture, not Tensix
    for name in stack_names():  # every other stack runs the matrix engine at its peak, as before
        if name != "tt_cnn":
            assert load_stack(name).matmul_efficiency_by_arch.set() == {}, name


def test_a_tt_cnn_model_is_slower_with_the_table_and_never_below_its_roofline():
    cfg = model_config_from_dict({"name": "vit_base", "phase": "prefill", "batch": 2, "dtype": "bfp8"})
    cnn = load_stack("tt_cnn")
    peak = dataclasses.replace(cnn, matmul_efficiency_by_arch=type(cnn.matmul_efficiency_by_arch)())
    run = {s: evaluate(DesignPoint(chip("wormhole_n150"), cfg, SchedulerConfig(name="sequential"), stack=st_),
                       include_ops=False) for s, st_ in (("table", cnn), ("peak", peak))}
    assert run["table"]["breakdown_compute_s"] > 1.5 * run["peak"]["breakdown_compute_s"]
    assert run["table"]["latency_s"] >= run["table"]["roofline_latency_s"]
    assert run["table"]["roofline_latency_s"] == run["peak"]["roofline_latency_s"]


@pytest.mark.parametrize("table, needle", [(((64, 0.5), (512, 1.5)), "(0, 1]"), (((512, 0.5), (64, 0.4)), "ascending"),
                                           (((0, 0.5),), "> 0"), (((64, 0.0),), "(0, 1]")])
def test_a_bad_table_is_refused_naming_the_field(table, needle):
    with pytest.raises(ConfigError, match="matmul_efficiency") as err:
        core(table)
    assert needle in str(err.value)
