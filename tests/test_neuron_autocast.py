"""neuronx-cc's --auto-cast as the neuron stack compiles traced FP32 models (issue 17e, seventh session).

Rule and sources: elk_dse/cost/neuron_autocast.py (aws-neuron-sdk @81ce03ae: the benchmark CSVs' "FP32,
Matmult-BF16" columns; the compiler reference's matmult mode; the NKI architecture guide's FP32 TensorE output and
the engines' free casts on their own input and output). Under ``matmult`` an activation is FP32 unless every reader
is a matrix operator; a matrix operator reading an FP32 activation reads it through a cast (one VectorE pass in
cost/neuron_engines.py's floor).
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
from elk_dse.cost.neuron_autocast import auto_cast_graph, is_cast_input
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import load_stack
from elk_dse.ir.graph import Operator, Role, Tensor
from elk_dse.models import build_model, model_config_from_dict
from elk_dse.sim.base import SimConfig

CLOCK = 1.45e9
V, S = 1.12e9, 1.4e9  # VectorE, ScalarE clocks (cost/neuron_attention.py)


def _graph(name: str, mode: str = "matmult", **model):
    cfg = model_config_from_dict({"name": name, "phase": "prefill", "batch": 2, "seq_len": 32, "dtype": "bf16",
                                  **model})
    return auto_cast_graph(build_model(cfg), mode)


def _layer(graph, name):
    return next(la for la in graph.layers if la.name == name)


def _bytes(layer) -> dict[str, tuple[float, ...]]:
    """op name -> bytes per element of (inputs..., output) for the activations."""
    return {op.name: tuple(t.bytes_per_element for t in (*op.inputs, op.output) if t.role == Role.ACTIVATION)
            for op in layer.ops}


def test_bert_post_ln_layer_by_hand():
    # BERT is post-LN: the layer input x (a LayerNorm output) is read by Q/K/V (matrix) and by the residual add
    # (FP32), so it stays FP32 and Q/K/V read it through a cast; Q, K, V and the softmax's probabilities feed only
    # matmuls (written at bf16); the scores, projections' outputs, residual stream and fc1 output stay FP32.
    enc = _layer(_graph("bert_base"), "encoder")
    got = _bytes(enc)
    assert got == {
        "q_proj": (4, 2), "k_proj": (4, 2), "v_proj": (4, 2),   # x read through a cast; q/k/v written bf16
        "attn_score": (2, 2, 4),                                 # scores FP32 (the softmax reads them)
        "attn_softmax": (4, 2),                                  # probs written bf16 (the value matmul)
        "attn_value": (2, 2, 2),                                 # ctx feeds o_proj only
        "o_proj": (2, 4),
        "attn_residual": (4, 4, 4),
        "attn_norm": (4, 4),                                     # h_norm: fc1 and the second residual
        "fc1": (4, 4),                                           # h_norm through a cast; fc1 -> GELU, FP32
        "gelu": (4, 2),                                          # mlp_act feeds fc2 only
        "fc2": (2, 4),
        "mlp_residual": (4, 4, 4),
        "mlp_norm": (4, 4),
    }
    casts = sorted(op.name for op in enc.ops for t in op.inputs if is_cast_input(op, t))
    assert casts == ["fc1", "k_proj", "q_proj", "v_proj"]
    # the matrix unit still reads bf16: the cast copy's format, so no matmul runs at the FP32 rate
    assert all(t.fmt == "bf16" for op in enc.ops if op.uses_matrix_unit for t in op.inputs)
    # weights, the model's output and the token ids keep their formats
    for la in _graph("bert_base").layers:
        for op in la.ops:
            for t in (*op.inputs, op.output):
                if t.role != Role.ACTIVATION:
                    assert t.bytes_per_element == 2 or t.role == Role.OUTPUT


def test_vit_pre_ln_needs_no_cast():
    # Pre-LN: each LayerNorm output feeds only Q/K/V or fc1, so the norm writes bf16 directly; the residual
    # stream stays FP32.
    enc = _layer(_graph("vit_base"), "encoder")
    assert not [op.name for op in enc.ops for t in op.inputs if is_cast_input(op, t)]
    got = _bytes(enc)
    assert got["attn_norm"] == (4, 2) and got["mlp_residual"] == (4, 4, 4)


def test_resnet_block_input_is_cast_for_the_first_convolution():
    g = _graph("resnet50", batch=1)
    stage = _layer(g, "stage1")  # a repeated bottleneck: x read by conv_a and by add_relu
    got = _bytes(stage)
    assert got["stage1.conv_a"] == (4, 2)      # x FP32, read through a cast; a_act feeds conv_b only
    assert got["stage1.conv_b"] == (2, 2)
    assert got["stage1.conv_c"] == (2, 4)      # c is read by the residual add
    assert got["stage1.add_relu"] == (4, 4, 4)
    assert [op.name for op in stage.ops for t in op.inputs if is_cast_input(op, t)] == ["stage1.conv_a"]
    # the stem's max-pool output feeds only the first block's convolutions: written bf16, no cast there
    first = _layer(g, "stage1.first")
    assert not [op.name for op in first.ops for t in op.inputs if is_cast_input(op, t)]


def test_other_modes_and_decode_graphs():
    declared = build_model(model_config_from_dict({"name": "bert_base", "phase": "prefill", "batch": 2,
                                                   "seq_len": 32, "dtype": "bf16"}))
    assert auto_cast_graph(declared, "") is declared and auto_cast_graph(declared, "all") is declared
    none = auto_cast_graph(declared, "none")  # the model as traced: every activation and weight FP32
    for la in none.layers:
        for op in la.ops:
            for t in (*op.inputs, op.output):
                if t.role in (Role.ACTIVATION, Role.WEIGHT) and t.name != "word_embeddings.ids":
                    assert t.bytes_per_element == 4 and t.fmt == "fp32", (op.name, t.name)
    # a decode step is a transformers-neuronx bf16 program: left as declared
    decode = build_model(model_config_from_dict({"name": "llama3_2_1b", "batch": 1, "kv_len": 128, "dtype": "bf16"}))
    assert auto_cast_graph(decode, "matmult") is decode
    with pytest.raises(ValueError, match="auto_cast"):
        auto_cast_graph(declared, "matmul")


def _core():
    return chip_from_dict(yaml.safe_load((CONF / "chip" / "inferentia2.yaml").read_text())).cores


def _matmul(m: int, k: int, n: int, cast: bool) -> Operator:
    a = Tensor("a", ("m", "k"), Role.ACTIVATION, 4.0 if cast else 2.0, "bf16")
    return Operator("mm", "matmul", (("m", m), ("n", n), ("k", k)),
                    (a, Tensor("w", ("k", "n"), Role.WEIGHT, 2.0, "bf16")), Tensor("c", ("m", "n"), Role.ACTIVATION))


def _cycles(op: Operator) -> float:
    return float(core_model(_core(), CLOCK).cycles(op, {d: np.array([x]) for d, x in op.dims})[0])


def test_the_cast_is_one_vector_pass_over_the_operand():
    # 4096 x 512 -> 128: the TensorE needs 4 k-tiles x half a 128 x 256 tile x 4096 rows + 32 + 128 + 256 = 8,608
    # cycles; ScalarE reads 4096 x 128 results out of PSUM in (4096 + 100) / 1.4 GHz = 4,346 chip cycles. The cast
    # of the 4096 x 512 FP32 operand is (2,097,152 / 128 + 100) VectorE cycles at 1.12 GHz = 21,341 chip cycles.
    assert _cycles(_matmul(4096, 512, 128, cast=False)) == pytest.approx(4 * 0.5 * 4096 + 32 + 128 + 256)
    assert _cycles(_matmul(4096, 512, 128, cast=True)) == pytest.approx((4096 * 512 / 128 + 100) / V * CLOCK)
    # a wide projection hides its cast behind the TensorE (BERT's fc1 at 1024 tokens: 768 -> 3072)
    wide = _matmul(1024, 768, 3072, cast=True)
    assert _cycles(wide) == _cycles(_matmul(1024, 768, 3072, cast=False))


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 4096), k=st.integers(1, 2048), n=st.integers(1, 2048))
def test_a_cast_never_lowers_a_cost_nor_beats_the_peak(m, k, n):
    with_cast, without = _cycles(_matmul(m, k, n, True)), _cycles(_matmul(m, k, n, False))
    assert with_cast >= without
    assert with_cast >= 2 * m * k * n / _core().peak_flops_per_cycle * (1 - 1e-12)


def test_neuron_stack_ships_matmult_with_its_sources():
    s = load_stack("neuron")
    assert s.auto_cast == "matmult"
    for cited in ("throughput_data_encoder.csv", "Matmult-BF16", "api-reference-guide/index.rst",
                  "inf2_benchmark.py", "81ce03ae"):
        assert cited in s.sources.auto_cast


def _evaluate(batch: int, mode: str, sim: str = "analytic", phase: str = "prefill", name: str = "bert_base"):
    data = yaml.safe_load((CONF / "chip" / "inferentia2.yaml").read_text())
    data["cores"].update(count=1, grid=[1])
    data["hbm"]["bandwidth_gb_s"] = 440.25
    model = model_config_from_dict({"name": name, "phase": phase, "batch": batch, "seq_len": 128,
                                    "kv_len": 128, "dtype": "bf16"})
    stack = dataclasses.replace(load_stack("neuron"), auto_cast=mode)
    return evaluate(DesignPoint(chip_from_dict(data), model, SchedulerConfig(name="elk_full"), SimConfig(name=sim),
                                stack=stack), include_ops=False)


def test_fp32_activations_spill_from_sbuf_at_batch_16():
    # BERT-base at batch 16 on one NeuronCore-v2 (24 MiB SBUF): fc1's FP32 output alone is 2048 x 3072 x 4 =
    # 25.2 MB, so the FP32 tensors stream through HBM, which the declared bf16 graph does not.
    declared, cast = _evaluate(16, ""), _evaluate(16, "matmult")
    assert cast["hbm_bytes"] > 2 * declared["hbm_bytes"]
    assert cast["latency_s"] > declared["latency_s"]
    assert cast["latency_s"] >= cast["roofline_latency_s"]


def test_simulators_agree_and_decode_is_unchanged():
    analytic, event = _evaluate(2, "matmult"), _evaluate(2, "matmult", sim="event")
    assert event["latency_s"] == pytest.approx(analytic["latency_s"], rel=0.02)
    d0 = _evaluate(2, "", phase="decode", name="llama3_2_1b")
    d1 = _evaluate(2, "matmult", phase="decode", name="llama3_2_1b")
    assert d1["latency_s"] == d0["latency_s"]


# --- the per-NeuronCore DMA limit (hbm.core_dma_gb_s; same session) ---

def _inf2(cores: int, **hbm):
    data = yaml.safe_load((CONF / "chip" / "inferentia2.yaml").read_text())
    data["cores"].update(count=cores, grid=[cores])
    data["hbm"].update(hbm)
    return chip_from_dict(data)


def test_one_neuroncore_draws_at_most_its_dma_engines():
    # 16 DMA engines x 17 B/ns = 272 GB/s sustained per NeuronCore-v2 (issue 17n, eighth session: the NKI DMA
    # bandwidth guide's TRN1 row; 463.9 GB/s = 16 x 27 GiB/s "peak" before): one core cannot use the chip's
    # 880.5 GB/s, and neither can two (2 x 272 = 544 GB/s).
    assert _inf2(1).hbm_bytes_per_s == pytest.approx(272e9)
    assert _inf2(2).hbm_bytes_per_s == pytest.approx(544e9)
    assert _inf2(2, core_dma_gb_s=463.9).hbm_bytes_per_s == pytest.approx(880.5e9)  # 17e's figure: 2 cores unbound
    assert _inf2(1, core_dma_gb_s=0.0).hbm_bytes_per_s == pytest.approx(880.5e9)  # 0: no limit
    assert _inf2(1, bandwidth_gb_s=200.0).hbm_bytes_per_s == pytest.approx(200e9)  # below the limit


def test_the_dma_limit_bounds_a_memory_bound_step_and_its_roofline():
    model = model_config_from_dict({"name": "llama3_2_1b", "batch": 1, "kv_len": 128, "dtype": "bf16"})
    out = {}
    for dma in (0.0, 272.0):
        chip = _inf2(1, core_dma_gb_s=dma)
        out[dma] = evaluate(DesignPoint(chip, model, SchedulerConfig(name="elk_full"), stack=load_stack("none")),
                            include_ops=False)
    assert out[272.0]["roofline_hbm_s"] == pytest.approx(out[0.0]["roofline_hbm_s"] * 880.5 / 272.0)
    assert out[272.0]["latency_s"] > out[0.0]["latency_s"]
    assert out[272.0]["latency_s"] >= out[272.0]["roofline_latency_s"]
    # the event simulator's HBM channels carry the same limit (hw/resources.py reads Chip.hbm_achievable_bytes_per_s)
    event = evaluate(DesignPoint(_inf2(1), model, SchedulerConfig(name="elk_full"), SimConfig(name="event"),
                                 stack=load_stack("none")), include_ops=False)
    assert event["latency_s"] == pytest.approx(out[272.0]["latency_s"], rel=0.02)


def test_the_three_neuroncore_v2_chips_set_the_dma_limit():
    using = sorted(p.stem for p in (CONF / "chip").glob("*.yaml")
                   if (yaml.safe_load(p.read_text()) or {}).get("hbm", {}).get("core_dma_gb_s"))
    assert using == ["inf2_48xlarge", "inferentia2", "trn1_32xlarge"]
