"""NeuronCore-v2's PF-transposes of a LayerNorm's / softmax's output before the matmul that contracts over it
(issue 17n, eighth session).

Rule and sources: elk_dse/cost/neuron_layout.py (aws-neuron-sdk @81ce03ae: the TensorE contracts along the
partition axis, bn_stats and the softmax reductions run along the free axis, a TensorE transpose is
nc_matmul(input, identity) at 2.8 GHz and its result leaves PSUM through one more engine pass). The mark is a fact
of the graph; only cores with ``vector_engine: neuron_v2`` charge it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_paths import CONF

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.core_models import core_model
from elk_dse.cost.neuron_autocast import auto_cast_graph
from elk_dse.cost.neuron_layout import is_transposed_input, mark_transposes
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import load_stack
from elk_dse.ir.graph import Operator, Role, Tensor
from elk_dse.models import build_model, model_config_from_dict

CLOCK = 1.45e9
TENSOR_HZ, SCALAR_HZ = 2.8e9, 1.4e9  # TensorE, ScalarE clocks (arch guide, the engines' table)


def _marked(name: str, phase: str = "prefill", **model) -> list[tuple[str, str, str]]:
    cfg = model_config_from_dict({"name": name, "phase": phase, "batch": 2, "seq_len": 32, "kv_len": 64,
                                  "dtype": "bf16", **model})
    graph = mark_transposes(auto_cast_graph(build_model(cfg), "matmult"))
    return [(la.name, op.name, t.name) for la in graph.layers for op in la.ops for t in op.inputs
            if t.pf_transpose]


def test_bert_layer_marks_by_hand():
    # Post-LN BERT: the layer input x (the previous LayerNorm's output) is transposed once for Q (K and V reuse
    # it), the softmax's probabilities for P x V, the attention LayerNorm's output for fc1. Nothing else: o_proj
    # and fc2 read matmul / GELU outputs, the residual adds and norms are not matrix operators.
    assert _marked("bert_base") == [("encoder", "q_proj", "x"), ("encoder", "attn_value", "probs"),
                                    ("encoder", "fc1", "h_norm")]


def test_rmsnorm_is_not_transposed_softmax_and_k_cache_are():
    # Llama's RMSNorm sums across the partitions on the TensorE (perf guide, Opt #8, technique 2): no transpose;
    # the softmax's probabilities still are, in prefill and in decode. In decode the K cache (d contiguous, as
    # transformers-neuronx lays it out) is read by the score matmul contracting over d: transposed every step;
    # the V cache (contracted over the positions) is not. In prefill K is the k projection's output (no mark).
    assert _marked("llama3_2_1b", "prefill") == [("decoder", "attn_value", "probs")]
    assert _marked("llama3_2_1b", "decode") == [("decoder", "attn_score", "k_cache"),
                                                ("decoder", "attn_value", "probs")]


def test_cnn_has_no_transpose():
    assert _marked("resnet50") == []


def _op(tokens: int, hidden: int, out: int, transposed: bool) -> Operator:
    x = Tensor("x", ("t", "h"), Role.ACTIVATION, 2.0, "bf16", pf_transpose=transposed)
    w = Tensor("w", ("h", "o"), Role.WEIGHT, 2.0, "bf16")
    return Operator("proj", "matmul", (("t", tokens), ("h", hidden), ("o", out)), (x, w),
                    Tensor("y", ("t", "o"), Role.ACTIVATION, 2.0, "bf16"))


def _chip(name: str):
    return chip_from_dict(yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text()))


def _cycles(chip, op: Operator) -> float:
    model = core_model(chip.cores, clock_hz=chip.clock_hz)
    sub = {d: np.array([n]) for d, n in op.dims}
    return float(model.cycles(op, sub)[0])


def test_transpose_cycles_by_hand():
    # BERT-base fc1 at 1,024 tokens on one NeuronCore-v2: x [1024 x 768] transposed = 786,432 elements =
    # 6,144 TensorE cycles at 2.8 GHz added to the matmul's own TensorE cycles (in the chip's 1.45 GHz cycles:
    # 6,144 x 1.45 / 2.8 = 3,181.7); the ScalarE's read-out grows by (6,144 + 100) cycles at 1.4 GHz, which
    # stays below the TensorE here (fc1 is TensorE-bound).
    chip = _chip("inferentia2")
    plain, marked = _op(1024, 768, 3072, False), _op(1024, 768, 3072, True)
    assert is_transposed_input(marked, marked.inputs[0]) and not is_transposed_input(plain, plain.inputs[0])
    assert _cycles(chip, marked) - _cycles(chip, plain) == pytest.approx(6144 * CLOCK / TENSOR_HZ, rel=1e-9)


def test_transpose_read_out_binds_a_short_matmul():
    # P x V of one BERT head, 8 sequences x 128 queries x 128 keys -> 64: TensorE 8 x 128 x ... is short
    # (K = 128 keys, n = 64), so the ScalarE bound decides: the output's read-out (8 x 128 x 64 / 128 = 512
    # cycles + 100) plus the transposed probabilities' copy (8 x 128 x 128 / 128 = 1,024 cycles + 100), at 1.4 GHz.
    chip = _chip("inferentia2")
    probs = Tensor("probs", ("b", "s", "s2"), Role.ACTIVATION, 2.0, "bf16", pf_transpose=True)
    v = Tensor("v", ("b", "s2", "e"), Role.ACTIVATION, 2.0, "bf16")
    op = Operator("attn_value", "matmul", (("b", 8), ("s", 128), ("s2", 128), ("e", 64)), (probs, v),
                  Tensor("ctx", ("b", "s", "e"), Role.ACTIVATION, 2.0, "bf16"))
    unmarked = dataclasses.replace(op, inputs=(dataclasses.replace(probs, pf_transpose=False), v))
    scalar_floor = ((512 + 100) + (1024 + 100)) / SCALAR_HZ * CLOCK
    got = _cycles(chip, op)
    assert got >= scalar_floor * (1 - 1e-9)
    assert got > _cycles(chip, unmarked)


@pytest.mark.parametrize("chip_name", ["wormhole_n150", "mesh64", "trn2_48xlarge"])
def test_mark_is_free_without_the_neuron_v2_rule(chip_name):
    # The mark is a graph fact; chips without the NeuronCore-v2 engine rule (trn2's file does not set it) ignore it.
    chip = _chip(chip_name)
    assert _cycles(chip, _op(1024, 768, 3072, True)) == _cycles(chip, _op(1024, 768, 3072, False))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4096), st.integers(1, 2048), st.integers(1, 2048))
def test_transpose_only_adds(tokens, hidden, out):
    chip = _chip("inferentia2")
    assert _cycles(chip, _op(tokens, hidden, out, True)) >= _cycles(chip, _op(tokens, hidden, out, False))


def test_bert_b8_with_transposes_above_roofline_simulators_agree():
    # End to end (both simulators): BERT-base batch 8 on one NeuronCore-v2 under the neuron stack. The
    # transposes add per layer about (6,144 x 2 + 12,288) TensorE cycles at 2.8 GHz beside the read-outs; the
    # prediction must grow, stay above the roofline, and the simulators must agree.
    data = yaml.safe_load((CONF / "chip" / "inferentia2.yaml").read_text())
    data["cores"]["count"], data["cores"]["grid"], data["cores"]["die_cores"] = 1, [1], 1
    data["hbm"]["bandwidth_gb_s"] = 440.25
    chip = chip_from_dict(data)
    cfg = model_config_from_dict({"name": "bert_base", "phase": "prefill", "batch": 8, "seq_len": 128,
                                  "dtype": "bf16"})
    out = {sim: evaluate(DesignPoint(chip, cfg, SchedulerConfig(), sim=sim, stack=load_stack("neuron")),
                         include_ops=False) for sim in ("analytic", "event")}
    for r in out.values():
        assert r["feasible"] and r["latency_s"] >= r["roofline_latency_s"]
    assert out["event"]["latency_s"] == pytest.approx(out["analytic"]["latency_s"], rel=0.05)


@pytest.mark.parametrize(("name", "phase"), [("bert_base", "prefill"), ("llama3_2_1b", "decode")])
def test_repeated_layers_mark_as_if_unrolled(name, phase):
    # mark_transposes walks two repetitions of a repeated layer: unrolling every layer into copies of repeat 1
    # must give each copy exactly the repeated layer's marks.
    cfg = model_config_from_dict({"name": name, "phase": phase, "batch": 2, "seq_len": 32, "kv_len": 64,
                                  "dtype": "bf16"})
    graph = auto_cast_graph(build_model(cfg), "matmult")
    unrolled = dataclasses.replace(graph, layers=tuple(
        dataclasses.replace(la, repeat=1) for la in graph.layers for _ in range(la.repeat)))
    rolled = [[tuple(t.pf_transpose for t in op.inputs) for op in la.ops]
              for la in mark_transposes(graph).layers for _ in range(la.repeat)]
    flat = [[tuple(t.pf_transpose for t in op.inputs) for op in la.ops] for la in mark_transposes(unrolled).layers]
    assert rolled == flat and any(any(m) for layer in flat for m in layer)
