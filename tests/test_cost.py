"""Cost formulas: every core model respects the physics; transfer times respect their bandwidths."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_chip_dict
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_dse.cost.core_models import CORE_MODELS, matmul_shape
from elk_dse.cost.network import hbm_time_s, noc_time_s
from elk_dse.hw.chip import CoreSpec, chip_from_dict
from elk_dse.ir.graph import Operator, Role, Tensor


def matmul(m, n, k):
    return Operator("mm", "matmul", (("m", m), ("n", n), ("k", k)),
                    (Tensor("a", ("m", "k"), Role.ACTIVATION), Tensor("w", ("k", "n"), Role.WEIGHT)),
                    Tensor("c", ("m", "n"), Role.ACTIVATION))


def test_matmul_shape_classifies_dims():
    op = matmul(3, 5, 7)
    sub = {d: np.array([n]) for d, n in op.dims}
    assert [int(x[0]) for x in matmul_shape(op, sub)] == [1, 3, 5, 7]


@pytest.mark.parametrize("model", sorted(CORE_MODELS))
@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 300), n=st.integers(1, 300), k=st.integers(1, 300), rows=st.sampled_from([4, 8, 16, 32]),
       cols=st.sampled_from([4, 8, 16, 32]), lanes=st.sampled_from([8, 64, 512]), double=st.booleans(),
       col_tile=st.sampled_from([0, 1, 2, 4]))
def test_core_models_never_beat_peak(model, m, n, k, rows, cols, lanes, double, col_tile):
    core = CoreSpec(count=1, sram_kib=64, model=model, matrix_rows=rows, matrix_cols=cols, vector_lanes=lanes,
                    weight_double_buffer=double, matrix_col_tile=col_tile)
    cm = CORE_MODELS[model](core)
    for op in (matmul(m, n, k), Operator("relu", "elementwise", (("m", m), ("n", n)),
                                         (Tensor("a", ("m", "n"), Role.ACTIVATION),),
                                         Tensor("b", ("m", "n"), Role.ACTIVATION), flops_per_point=3.0)):
        sub = {d: np.array([x]) for d, x in op.dims}
        cycles = float(cm.cycles(op, sub)[0])
        assert cycles >= op.flops / core.peak_flops_per_cycle


def test_systolic_tile_quantization_wastes_partial_tiles():
    core = CoreSpec(count=1, sram_kib=64, model="systolic", matrix_rows=16, matrix_cols=16)
    cm = CORE_MODELS["systolic"](core)
    full = matmul(64, 16, 16)
    partial = matmul(64, 17, 16)  # one more column needs a second, almost empty, tile
    c_full = cm.cycles(full, {d: np.array([x]) for d, x in full.dims})[0]
    c_partial = cm.cycles(partial, {d: np.array([x]) for d, x in partial.dims})[0]
    assert c_partial == pytest.approx(2 * c_full)


def test_systolic_weight_double_buffering_hides_the_loads_behind_streaming():
    # 128 x 256 array, 4 x 4 weight tiles of a 512 x 1024 weight. Without double buffering every tile pays
    # its rows + cols of load/fill/drain: 16 x (m + 384). With it a tile costs max(m, 128) and the operator
    # pays one load, fill and drain: 16 x max(m, 128) + 2 x 128 + 256.
    plain = CoreSpec(count=1, sram_kib=24576, model="systolic", matrix_rows=128, matrix_cols=256)
    double = CoreSpec(count=1, sram_kib=24576, model="systolic", matrix_rows=128, matrix_cols=256,
                      weight_double_buffer=True)
    for m in (1, 128, 512):
        op = matmul(m, 1024, 512)
        sub = {d: np.array([x]) for d, x in op.dims}
        c_plain = CORE_MODELS["systolic"](plain).cycles(op, sub)[0]
        c_double = CORE_MODELS["systolic"](double).cycles(op, sub)[0]
        assert c_plain == 16 * (m + 384)
        assert c_double == 16 * max(m, 128) + 512
        assert op.flops / double.peak_flops_per_cycle <= c_double <= c_plain
    # At m = 128 (BERT at sequence 128) the array is busy 2048 of 2560 cycles instead of 2048 of 8192.
    op = matmul(128, 1024, 512)
    sub = {d: np.array([x]) for d, x in op.dims}
    assert op.flops / double.peak_flops_per_cycle / CORE_MODELS["systolic"](double).cycles(op, sub)[0] == 0.8


def test_ipu_small_m_runs_far_below_peak():
    core = CoreSpec(count=1, sram_kib=624, model="ipu_mk2", matrix_rows=16, matrix_cols=4)
    cm = CORE_MODELS["ipu_mk2"](core)
    decode, prefill = matmul(1, 256, 256), matmul(96, 256, 256)
    eff = [op.flops / (2 * 64 * cm.cycles(op, {d: np.array([x]) for d, x in op.dims})[0]) for op in (decode, prefill)]
    assert eff[0] < 0.1 < 0.5 < eff[1] <= 1.0


def test_transfer_times_respect_bandwidths():
    chip = chip_from_dict(small_chip_dict())
    nbytes = 1e9
    assert hbm_time_s(chip, nbytes, nbytes) >= nbytes / chip.hbm_bytes_per_s
    # Any core-to-core traffic takes at least the busiest core's bytes over its ports.
    assert noc_time_s(chip, nbytes, nbytes / 16) >= nbytes / 16 / (4 * chip.link_bytes_per_s)
    assert noc_time_s(chip, 0.0, 0.0) == 0.0
    no_hbm = chip_from_dict({**small_chip_dict(), "hbm": None})
    with pytest.raises(ValueError, match="no HBM"):
        hbm_time_s(no_hbm, 10.0, 10.0)


def test_why_slow_states_the_double_buffered_systolic_bound():
    from elk_dse.results import diagnosis

    cores = {"matrix_rows": 128, "matrix_cols": 256}
    config = {"model": {"phase": "decode", "batch": 4}, "chip": {"cores": cores}}
    assert "m/(m+rows+cols) = 1.0%" in diagnosis._low_utilisation_reason({}, config)  # 4 / 388
    config["chip"]["cores"] = {**cores, "weight_double_buffer": True}
    assert "m / 128 cycles per tile = 3.1%" in diagnosis._low_utilisation_reason({}, config)  # 4 / 128
    # NeuronCore-v2's tile rule (issue 17n): a tile streams >= 64 cycles, loads in 128 / 4 = 32 in the background.
    config["chip"]["cores"] = {**cores, "weight_double_buffer": True, "matrix_min_tile_cycles": 64,
                               "weight_load_speedup": 4}
    assert "m / 64 cycles per tile = 6.2%" in diagnosis._low_utilisation_reason({}, config)  # 4 / 64
