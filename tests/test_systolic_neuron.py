"""The NeuronCore-v2 TensorE tile rule on the systolic core model (issue 17n), with hand-counted cycles.

Rule (docs/core_models.md, aws-neuron-sdk nki/guides/architecture/trainium_inferentia2_arch.rst @81ce03ae):
a weight tile streams for max(m, 64) cycles (MultiplyMoving initiation interval), loads in rows / 4 = 32 cycles
in the background (fast, background LoadStationary), and the operator pays one load, fill and drain:
tiles x max(m, 64, 32) + 32 + 128 + 256.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_paths import CONF

from elk_dse.cost.core_models import CORE_MODELS, matmul_shape
from elk_dse.errors import ConfigError
from elk_dse.hw.chip import CoreSpec, chip_from_dict
from elk_dse.ir.graph import Operator, Role, Tensor
from elk_dse.models.ops import Ops
from elk_dse.models.resnet import conv

CLOCK_HZ = 1.45e9  # the NeuronCore-v2 chips' clock (conf/chip/inferentia2.yaml); the engine floor needs it
ONCE = 32 + 128 + 256  # first weight load (128 rows / 4) + fill (128 rows) + drain (256 cols)


def _core(name: str = "inferentia2") -> CoreSpec:
    return chip_from_dict(yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())).cores


def _cycles(core: CoreSpec, op: Operator) -> float:
    sub = {d: np.array([x]) for d, x in op.dims}
    return float(CORE_MODELS[core.model](core, CLOCK_HZ).cycles(op, sub)[0])


def _matmul(m: int, n: int, k: int) -> Operator:
    return Operator("mm", "matmul", (("m", m), ("n", n), ("k", k)),
                    (Tensor("a", ("m", "k"), Role.ACTIVATION), Tensor("w", ("k", "n"), Role.WEIGHT)),
                    Tensor("c", ("m", "n"), Role.ACTIVATION))


@pytest.mark.parametrize("chip", ["inferentia2", "inf2_48xlarge", "trn1_32xlarge"])
def test_shipped_neuroncore_v2_chips_carry_the_documented_tensore_rule(chip):
    core = _core(chip)
    assert (core.matrix_rows, core.matrix_cols, core.weight_double_buffer) == (128, 256, True)
    assert (core.matrix_min_tile_cycles, core.weight_load_speedup) == (64, 4.0)


def test_resnet_stage4_conv_on_a_neuroncore_hand_count():
    # ResNet's last stage at batch 1: 3x3 conv, 512 -> 512 channels on 7x7. As a matmul m = 49 output pixels,
    # k = 512 x 9 = 4608 (36 tiles of 128 rows), n = 512 (2 tiles of 256 columns): 72 weight tiles.
    op, p = conv(Ops(2.0), "conv_b", 1, 512, 512, 7, 3, 1, "x", "y")
    assert p == 7
    sub = {d: np.array([x]) for d, x in op.dims}
    assert [int(x[0]) for x in matmul_shape(op, sub)] == [1, 49, 512, 4608]
    core = _core()
    assert _cycles(core, op) == 72 * 64 + ONCE == 5024  # 49 rows < 64: the initiation interval bounds a tile
    # Before issue 17n the model charged the weight load (128 cycles, one row per cycle) per tile: 72 x 128 + 512.
    old = CoreSpec(count=1, sram_kib=24576, model="systolic", matrix_rows=128, matrix_cols=256,
                   weight_double_buffer=True)
    assert _cycles(old, op) == 72 * 128 + 512 == 9728
    # The bf16 roofline: 49 x 4608 x 512 MACs at 128 x 256 per cycle = 3528 cycles (49 of 64 per tile busy).
    assert op.flops / (2 * 128 * 256) == 72 * 49 <= _cycles(core, op)


def test_resnet_stage3_conv_streams_its_196_pixels_at_full_rate():
    # 14x14 stage: m = 196 >= 64, so a tile costs its 196 rows: 36 x 1 tiles (k = 256 x 9 = 2304 -> 18; n = 256 -> 1).
    op, _ = conv(Ops(2.0), "conv_b", 1, 256, 256, 14, 3, 1, "x", "y")
    assert _cycles(_core(), op) == 18 * 196 + ONCE


@pytest.mark.parametrize("batch", [1, 8, 64])
def test_decode_matmul_at_small_batch_costs_the_initiation_interval_per_tile(batch):
    # Decode: the moving dimension is the batch. A 4096 x 4096 weight = 32 x 16 tiles; up to batch 64 each
    # tile costs 64 cycles, so batch 8 costs what batch 1 does (the weight side bounds it), batch 128 twice.
    core = _core()
    assert _cycles(core, _matmul(batch, 4096, 4096)) == 512 * 64 + ONCE
    assert _cycles(core, _matmul(128, 4096, 4096)) == 512 * 128 + ONCE


def test_without_double_buffering_the_load_is_exposed_per_tile():
    core = CoreSpec(count=1, sram_kib=1024, model="systolic", matrix_rows=128, matrix_cols=256,
                    matrix_min_tile_cycles=64, weight_load_speedup=4)
    assert _cycles(core, _matmul(8, 512, 1024)) == 16 * (64 + 32 + 256)


@pytest.mark.parametrize(("field", "value"), [("matrix_min_tile_cycles", -1), ("weight_load_speedup", 0.5),
                                              ("weight_load_speedup", 100)])
def test_bad_tile_rule_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        CoreSpec(count=1, sram_kib=64, **{field: value})


# --- issue 17n (2026-11-29, fourth session): 128-column stationary tiles ---------------------------------------
# TensorE is 128 x 128 PEs; a stationary (weight) tile's free axis is at most 128 ("Tile Size", same document).
# Our 128 x 256 array at 1.45 GHz stands for two such tiles at 2.8 GHz, so an operand <= 128 columns wide uses one
# of them: half a whole-array tile (streaming, load and drain scale with the columns).


@pytest.mark.parametrize("chip", ["inferentia2", "inf2_48xlarge", "trn1_32xlarge"])
def test_shipped_neuroncore_v2_chips_issue_128_column_tiles(chip):
    assert _core(chip).matrix_col_tile == 128


def test_attention_head_matmul_costs_half_a_whole_array_tile():
    # Prefill attention scores of one head at seq 128: m = 128 queries, k = 64 (head dim), n = 128 keys.
    # One 128-column tile = 0.5 of a 128 x 256 tile: 0.5 x max(128, 64) + the operator's load, fill and drain.
    core = _core()
    assert _cycles(core, _matmul(128, 128, 64)) == 0.5 * 128 + ONCE == 480
    assert _cycles(core, _matmul(128, 64, 128)) == 480  # P x V: n = 64 (head dim), one 128-column tile too
    whole = CoreSpec(count=1, sram_kib=24576, model="systolic", matrix_rows=128, matrix_cols=256,
                     weight_double_buffer=True, matrix_min_tile_cycles=64, weight_load_speedup=4)
    assert _cycles(whole, _matmul(128, 128, 64)) == 128 + ONCE == 544  # before: a whole 256-column tile


def test_decode_attention_over_2112_keys_hand_count():
    # Decode q.K^T of one head: m = 1, k = 128, n = 2112 keys: ceil(2112 / 128) = 17 tiles of 128 columns = 8.5
    # whole tiles of max(1, 64) cycles; whole 256-column tiles would be ceil(2112 / 256) = 9.
    assert _cycles(_core(), _matmul(1, 2112, 128)) == 8.5 * 64 + ONCE == 960


def test_widths_that_fill_whole_tiles_are_unchanged():
    # n a multiple of 256: 128-column tiles cover it exactly as 256-column ones do (the decode test above too).
    core = _core()
    assert _cycles(core, _matmul(200, 768, 768)) == 6 * 3 * 200 + ONCE
    assert _cycles(core, _matmul(200, 384, 768)) == 6 * 1.5 * 200 + ONCE  # 3 x 128 columns, not 2 x 256


@settings(max_examples=80, deadline=None)
@given(m=st.integers(1, 600), n=st.integers(1, 600), k=st.integers(1, 600), batch=st.integers(1, 4))
def test_neuroncore_tile_rule_never_beats_the_bf16_peak(m, n, k, batch):
    op = Operator("bmm", "matmul", (("b", batch), ("m", m), ("n", n), ("k", k)),
                  (Tensor("a", ("b", "m", "k"), Role.ACTIVATION), Tensor("w", ("b", "k", "n"), Role.ACTIVATION)),
                  Tensor("c", ("b", "m", "n"), Role.ACTIVATION))
    assert _cycles(_core(), op) >= op.flops / (2 * 128 * 256)  # bf16: 128 x 256 MACs per cycle


@pytest.mark.parametrize("value", [100, -1, 512])
def test_a_column_tile_that_does_not_divide_the_array_names_the_field(value):
    with pytest.raises(ConfigError, match="matrix_col_tile"):
        CoreSpec(count=1, sram_kib=64, matrix_rows=128, matrix_cols=256, matrix_col_tile=value)
