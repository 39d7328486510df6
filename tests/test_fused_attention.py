"""Fused (FlashAttention-style) attention: the same FLOPs as score + softmax + value, no score tensors, and
fewer HBM bytes once the scores do not fit on chip."""

from __future__ import annotations

import pytest
from conftest import small_chip_dict

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ConfigError
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, build_model


def graph(name, fused, **kw):
    return build_model(ModelConfig(name, fused_attention=fused, **kw))


@pytest.mark.parametrize(("name", "kw"), [
    ("llama2_7b", {"phase": "prefill", "batch": 2, "seq_len": 256}),
    ("llama2_70b", {"phase": "prefill", "batch": 1, "seq_len": 128}),  # GQA: 8 KV heads x 8 queries each
    ("llama2_13b", {"phase": "decode", "batch": 4, "kv_len": 512}),
    ("vit_large", {"phase": "prefill", "batch": 2}),
])
def test_same_flops_and_weights_fewer_operators(name, kw):
    plain, fused = graph(name, False, **kw), graph(name, True, **kw)
    assert fused.flops == pytest.approx(plain.flops, rel=1e-12)
    assert fused.weight_bytes == plain.weight_bytes and fused.kv_cache_bytes == plain.kv_cache_bytes
    body = next(layer for layer in fused.layers if layer.repeat > 1)
    kinds = [op.name for op in body.ops]
    assert "attention" in kinds and not {"attn_score", "attn_softmax", "attn_value"} & set(kinds)
    assert fused.num_op_instances == plain.num_op_instances - 2 * body.repeat


def test_fused_operator_by_hand():
    b, s, heads, d = 2, 256, 32, 128
    g = graph("llama2_7b", True, phase="prefill", batch=b, seq_len=s)
    att = next(op for op in g.layers[1].ops if op.name == "attention")
    # QK^T and PV: 2 x 2 x b x heads x s x s x d; softmax: 5 x b x heads x s x s.
    assert att.flops == 4 * b * heads * s * s * d + 5 * b * heads * s * s
    # It reads q, K, V and writes the context, b x s x heads x d each: no s x s tensor anywhere.
    assert [att.tensor_bytes(t) for t in att.inputs] == [b * s * heads * d * 2] * 3
    assert att.output_bytes == b * s * heads * d * 2


def test_fused_attention_moves_fewer_hbm_bytes_and_respects_the_roofline():
    chip = chip_from_dict(small_chip_dict(hbm={"capacity_gib": 64}))
    cfg = {"phase": "prefill", "batch": 1, "seq_len": 1024}
    plain = evaluate_graph(graph("llama2_7b", False, **cfg), chip, SchedulerConfig(), include_ops=False)
    fused = evaluate_graph(graph("llama2_7b", True, **cfg), chip, SchedulerConfig(), include_ops=False)
    assert plain["feasible"] and fused["feasible"]
    # The 32 x 1024 x 1024 fp16 scores (64 MiB per layer) exceed this chip's SRAM: unfused, they stream.
    assert fused["hbm_bytes"] < plain["hbm_bytes"]
    assert fused["latency_s"] >= fused["roofline_latency_s"]


def test_fused_attention_is_rejected_where_not_modelled():
    with pytest.raises(ConfigError) as err:
        ModelConfig("llama2_7b", phase="train", fused_attention=True)
    assert err.value.field == "fused_attention"
    with pytest.raises(ConfigError) as err:
        graph("resnet50", True, phase="prefill")
    assert err.value.field == "model.fused_attention"
