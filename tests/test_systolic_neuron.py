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
from tests_paths import CONF

from elk_dse.cost.core_models import CORE_MODELS, matmul_shape
from elk_dse.errors import ConfigError
from elk_dse.hw.chip import CoreSpec, chip_from_dict
from elk_dse.ir.graph import Operator, Role, Tensor
from elk_dse.models.ops import Ops
from elk_dse.models.resnet import conv

ONCE = 32 + 128 + 256  # first weight load (128 rows / 4) + fill (128 rows) + drain (256 cols)


def _core(name: str = "inferentia2") -> CoreSpec:
    return chip_from_dict(yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())).cores


def _cycles(core: CoreSpec, op: Operator) -> float:
    sub = {d: np.array([x]) for d, x in op.dims}
    return float(CORE_MODELS[core.model](core).cycles(op, sub)[0])


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
