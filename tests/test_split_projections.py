"""Issue 17d (eighth session): tt_transformers splits a checkpoint's fused qkv_proj / gate_up_proj at load
(tt-metal load_checkpoints.split_hf_keys), so a Phi-3 / Falcon decoder runs the operators a Llama decoder runs
(stack field split_fused_projections, ModelConfig.split_projections; docs/parallelism.md "Per-model programs")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate, stack_model
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import load_stack, stack_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.validation.suite import chip_data

# The operators of one decoder layer, by hand: Llama-layout (separate projections) and Phi-3's fused checkpoint.
SPLIT_LAYER = ["attn_norm", "q_proj", "k_proj", "v_proj", "attn_score", "attn_softmax", "attn_value", "o_proj",
               "attn_residual", "mlp_norm", "gate_proj", "up_proj", "swiglu", "down_proj", "mlp_residual"]
FUSED_LAYER = ["attn_norm", "qkv_proj", "q_split", "k_split", "v_split", "attn_score", "attn_softmax",
               "attn_value", "o_proj", "attn_residual", "mlp_norm", "gate_up_proj", "gate_split", "up_split",
               "swiglu", "down_proj", "mlp_residual"]


def _layer_names(graph):
    (layer,) = [layer for layer in graph.layers if layer.name == "decoder"]
    return [op.name for op in layer.ops], layer.repeat


def test_split_phi_decoder_has_the_llama_operators_and_the_same_work():
    cfg = ModelConfig("phi3_5_mini", batch=1, kv_len=128)
    fused, split = build_model(cfg), build_model(replace(cfg, split_projections=True))
    assert sorted(_layer_names(fused)[0]) == sorted(FUSED_LAYER)
    assert sorted(_layer_names(split)[0]) == sorted(SPLIT_LAYER)
    assert _layer_names(split)[1] == _layer_names(fused)[1] == 32
    # 32 layers x (17 - 15) operators fewer; the same FLOPs, weights and stored bytes
    assert fused.num_op_instances - split.num_op_instances == 64
    assert split.flops == pytest.approx(fused.flops, rel=1e-12)
    assert split.weight_bytes == pytest.approx(fused.weight_bytes, rel=1e-12)
    assert split.kv_cache_write_bytes == pytest.approx(fused.kv_cache_write_bytes, rel=1e-12)
    assert split.parameter_bytes == pytest.approx(fused.parameter_bytes, rel=1e-12)


def test_only_a_stack_that_splits_builds_separate_projections():
    cfg = ModelConfig("phi4", batch=1, kv_len=128)
    assert load_stack("tt_transformers").split_fused_projections
    assert stack_model(cfg, load_stack("tt_transformers")).split_projections
    for other in ("none", "tt_galaxy", "tt_cnn", "neuron"):
        assert not stack_model(cfg, load_stack(other)).split_projections, other


def test_evaluate_under_tt_transformers_charges_the_llama_operator_count():
    chip = chip_from_dict(chip_data("wormhole_n150"))
    cfg = ModelConfig("phi3_5_mini", batch=1, kv_len=128)
    tt = load_stack("tt_transformers")
    no_split = replace(tt, split_fused_projections=False)
    sched = SchedulerConfig(name="sequential")
    on = evaluate(DesignPoint(chip, cfg, sched, stack=tt), include_ops=True)
    off = evaluate(DesignPoint(chip, cfg, sched, stack=no_split), include_ops=True)
    # embedding + 32 x 15 + final norm + LM head, against 32 x 17 with the fused checkpoint's layout ops
    assert on["model"]["ops"] == 1 + 32 * 15 + 2
    assert off["model"]["ops"] == 1 + 32 * 17 + 2
    assert not [o for o in on["ops"] if o["kind"] == "layout"]
    assert len([o for o in off["ops"] if o["kind"] == "layout"]) == 32 * 5
    # each operator pays the stack's dispatch (plus its barriers): 64 operators fewer, at least 64 dispatches less
    # fixed time (the split matmuls' own barriers differ a little), and a faster step
    dispatch_s = tt.dispatch_us_per_op * 1e-6
    sync = {k: sum(o["sync_s"] for o in r["ops"]) for k, r in (("on", on), ("off", off))}
    assert 64 * dispatch_s <= sync["off"] - sync["on"] <= 64 * dispatch_s * 1.1
    assert on["latency_s"] < off["latency_s"]
    assert on["latency_s"] >= on["roofline_latency_s"]


def test_a_llama_decoder_does_not_move():
    chip = chip_from_dict(chip_data("wormhole_n150"))
    cfg = ModelConfig("llama3_2_1b", batch=1, kv_len=128)
    tt = load_stack("tt_transformers")
    sched = SchedulerConfig(name="sequential")
    a = evaluate(DesignPoint(chip, cfg, sched, stack=tt), include_ops=False)
    b = evaluate(DesignPoint(chip, cfg, sched, stack=replace(tt, split_fused_projections=False)), include_ops=False)
    assert a["latency_s"] == b["latency_s"]


def test_the_field_needs_its_source():
    data = {"name": "x", "split_fused_projections": True,
            "sources": {k: "s" for k in ("dispatch_us_per_op", "sync_us_per_layer", "chip_sync_us_per_layer",
                                         "collective_startup_us", "dram_efficiency")}}
    with pytest.raises(ConfigError) as err:
        stack_from_dict(data)
    assert err.value.field == "stack.sources.split_projections"
    data["sources"]["split_projections"] = "tt-metal load_checkpoints.py"
    assert stack_from_dict(data).split_fused_projections
