"""NeuronCore-v2's VectorE / ScalarE passes and PSUM read-out as a floor per operator (issue 17n, sixth session).

Rule and sources: elk_dse/cost/neuron_engines.py (aws-neuron-sdk trainium_inferentia2_arch.rst @81ce03ae: 128
lanes at 1.12 GHz (VectorE) / 1.4 GHz (ScalarE), N cycles per one-input pass, 2N per two-input tensor_tensor,
100 cycles per instruction; every TensorE result leaves PSUM through one engine). Hand counts below are in the
chip's cycles (1.45 GHz, conf/chip/inferentia2.yaml): engine cycles x 1.45 / f_engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_paths import CONF

from elk_dse.cost.core_models import CORE_MODELS, core_model
from elk_dse.errors import ConfigError
from elk_dse.hw.chip import CoreSpec, chip_from_dict
from elk_dse.ir.graph import Operator, Role, Tensor
from elk_dse.models.ops import Ops

CLOCK = 1.45e9
V, S = 1.12e9, 1.4e9  # VectorE, ScalarE clocks
OPS = Ops(2.0)


def _core(name: str = "inferentia2") -> CoreSpec:
    return chip_from_dict(yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())).cores


def _cycles(op: Operator, rule: bool = True) -> float:
    core = _core() if rule else dataclasses.replace(_core(), vector_engine="")
    sub = {d: np.array([x]) for d, x in op.dims}
    return float(core_model(core, CLOCK).cycles(op, sub)[0])


def _add(t: int, h: int) -> Operator:
    return OPS.elementwise("residual", (("t", t), ("h", h)), ["x", "y"], "z", 1.0)


def test_residual_add_is_one_two_input_vector_pass():
    # BERT-base at batch 8: 1024 tokens x 768. tensor_tensor: 2 x 786,432 / 128 = 12,288 cycles + 100, at 1.12 GHz
    want = (2 * 1024 * 768 / 128 + 100) / V * CLOCK
    assert _cycles(_add(1024, 768)) == pytest.approx(want)  # 16,039 chip cycles
    # the FLOP rule alone (512 FLOP/cycle) charges 1,536: the floor is what moves it
    assert _cycles(_add(1024, 768), rule=False) == pytest.approx(1024 * 768 / 512)


def test_gelu_keeps_the_flop_rule_where_it_is_slower():
    gelu = OPS.elementwise("gelu", (("t", 1024), ("f", 3072)), ["x"], "y", 8.0)
    flop_rule = 1024 * 3072 * 8 / 512  # 49,152 cycles
    scalar_pass = (1024 * 3072 / 128 + 100) / S * CLOCK  # one ScalarE activation: 25,557 cycles
    assert scalar_pass < flop_rule
    assert _cycles(gelu) == pytest.approx(flop_rule)


def test_layernorm_is_bn_stats_plus_two_scalar_passes():
    ln = OPS.norm("ln", (("t", 1024), ("h", 768)), "x", "y", "layer")
    n = 1024 * 768 / 128
    want = max((n + 100) / V, 2 * (n + 100) / S) * CLOCK  # the engines overlap: the busier one
    assert _cycles(ln) == pytest.approx(want)
    assert _cycles(ln, rule=False) == pytest.approx(1024 * 768 * 7 / 512)


def test_softmax_is_max_then_exp_and_scale():
    op = Operator("sm", "softmax", (("b", 8), ("g", 12), ("s", 128), ("s2", 128)),
                  (Tensor("x", ("b", "g", "s", "s2"), Role.ACTIVATION),), Tensor("y", ("b", "g", "s", "s2"),
                                                                                 Role.ACTIVATION), 5.0)
    n = 8 * 12 * 128 * 128 / 128
    assert _cycles(op) == pytest.approx(max((n + 100) / V, 2 * (n + 100) / S) * CLOCK)


def test_psum_read_out_bounds_a_matmul_with_one_contraction_tile():
    # 4096 x 64 x 128 (a 1x1 convolution from 64 channels): the TensorE streams 4096 rows through half a
    # 128 x 256 tile (0.5 x 4096 + 32 + 128 + 256 = 2,464 cycles); ScalarE reads 4096 x 128 results out of PSUM
    # in 4096 + 100 cycles at 1.4 GHz = 4,346 chip cycles.
    op = Operator("mm", "matmul", (("m", 4096), ("n", 128), ("k", 64)),
                  (Tensor("a", ("m", "k"), Role.ACTIVATION), Tensor("w", ("k", "n"), Role.WEIGHT)),
                  Tensor("c", ("m", "n"), Role.ACTIVATION))
    assert _cycles(op, rule=False) == pytest.approx(0.5 * 4096 + 32 + 128 + 256)
    assert _cycles(op) == pytest.approx((4096 * 128 / 128 + 100) / S * CLOCK)


def test_a_decode_matmul_is_not_bound_by_its_few_results():
    op = Operator("mm", "matmul", (("m", 8), ("n", 4096), ("k", 4096)),
                  (Tensor("a", ("m", "k"), Role.ACTIVATION), Tensor("w", ("k", "n"), Role.WEIGHT)),
                  Tensor("c", ("m", "n"), Role.ACTIVATION))
    assert _cycles(op) == _cycles(op, rule=False)


@settings(max_examples=60, deadline=None)
@given(t=st.integers(1, 4096), h=st.integers(1, 4096), k=st.integers(1, 2048),
       kind=st.sampled_from(["add", "gelu", "norm", "matmul"]))
def test_the_floor_never_lowers_a_cost(t, h, k, kind):
    if kind == "add":
        op = _add(t, h)
    elif kind == "gelu":
        op = OPS.elementwise("gelu", (("t", t), ("f", h)), ["x"], "y", 8.0)
    elif kind == "norm":
        op = OPS.norm("ln", (("t", t), ("h", h)), "x", "y", "layer")
    else:
        op = OPS.linear("fc", t, k, h, x="x", y="y")
    core = _core()
    peak = core.peak_flops_per_cycle
    with_rule = _cycles(op)
    assert with_rule >= _cycles(op, rule=False)
    assert with_rule >= op.flops / peak * (1 - 1e-12)


def test_the_three_neuroncore_v2_chips_use_it_and_no_other_chip():
    chips = sorted(p.stem for p in (CONF / "chip").glob("*.yaml"))
    using = []
    for name in chips:
        data = yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())
        if isinstance(data, dict) and data.get("cores", {}).get("vector_engine"):
            using.append(name)
    assert using == ["inf2_48xlarge", "inferentia2", "trn1_32xlarge"]


def test_bad_values_are_refused():
    with pytest.raises(ConfigError, match="vector_engine"):
        CoreSpec(count=1, sram_kib=64, vector_engine="gpu")
    core = CoreSpec(count=1, sram_kib=64, matrix_rows=128, matrix_cols=256, vector_engine="neuron_v2")
    for model in CORE_MODELS:
        with pytest.raises(ValueError, match="clock"):
            CORE_MODELS[model](core)
