"""Issue 17q (ninth session): tt_transformers adds a Qwen2 decoder's q/k/v biases in a separate elementwise operator
after the fused QKV matmul (tt-metal attention.py forward_decode: ``xqkv_fused_sharded + self.wqkv_bias_decode[...]``,
the bias a bfloat16 tensor expanded to the tile-padded rows and sharded with the fused QKV columns); stack field
separate_qkv_bias, ModelConfig.qkv_bias_add (docs/parallelism.md "Per-model programs")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from elk_dse.compiler.parallel import PARALLELISMS, Workload
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate, stack_model
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import apply_stack, load_stack, stack_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.validation.suite import chip_data

SCHED = SchedulerConfig(name="sequential")
# Qwen2.5-7B (conf/model/qwen2_5_7b.yaml, its config.json): 28 layers, 28 query heads, 4 KV heads, head_dim 128
LAYERS, HEADS, KV_HEADS, HEAD_DIM = 28, 28, 4, 128


def _decoder(graph):
    (layer,) = [layer for layer in graph.layers if layer.name == "decoder"]
    return layer


def _n300_tp2():
    data = chip_data("wormhole_n300")
    data["chips"] = {**data["chips"], "parallelism": "tp", "tp": 2}
    return chip_from_dict(data)


def test_the_graph_has_one_bias_add_per_layer_and_the_same_parameters():
    cfg = ModelConfig("qwen2_5_7b", batch=1, kv_len=128)
    folded, added = build_model(cfg), build_model(replace(cfg, qkv_bias_add=True))
    names = [op.name for op in _decoder(added).ops]
    assert names.count("qkv_bias") == 1 and "qkv_bias" not in [op.name for op in _decoder(folded).ops]
    # after the three projections, before attention
    assert names.index("qkv_bias") == names.index("v_proj") + 1
    assert added.num_op_instances - folded.num_op_instances == LAYERS
    # the projections no longer carry the bias; the model's parameters (elements) are the same, its stored bytes
    # grow by the expanded rows the device keeps (31 more rows of 4,608 bf16 per layer; fp16 folded biases here)
    for op in _decoder(added).ops:
        if op.name in ("q_proj", "k_proj", "v_proj"):
            assert not [t for t in op.inputs if t.name.endswith(".bias")], op.name
    assert dict(added.meta)["params"] == dict(folded.meta)["params"]
    assert folded_bias_bpe(folded) == 2.0
    assert added.parameter_bytes - folded.parameter_bytes == pytest.approx(LAYERS * 31 * 4608 * 2, rel=1e-12)
    op = next(op for op in _decoder(added).ops if op.name == "qkv_bias")
    width = (HEADS + 2 * KV_HEADS) * HEAD_DIM  # 4,608 fused q/k/v columns
    assert dict(op.dims) == {"t": 1, "o": width} and op.kind == "elementwise" and op.flops_per_point == 1.0
    bias = next(t for t in op.inputs if t.name == "qkv_proj.bias")
    # decode reads the bias expanded to one tile of 32 rows, in bfloat16: 32 x 4,608 x 2 B
    assert op.tensor_bytes(bias) == 32 * width * 2
    # a Llama decoder (no q/k/v bias) is not touched
    llama = ModelConfig("llama3_1_8b", batch=1, kv_len=128)
    assert build_model(llama) == build_model(replace(llama, qkv_bias_add=True))


def folded_bias_bpe(graph):
    """Bytes per element of the folded q/k/v biases (the attention weights' format)."""
    op = next(op for op in _decoder(graph).ops if op.name == "q_proj")
    return next(t for t in op.inputs if t.name == "q_proj.bias").bytes_per_element


def test_prefill_adds_one_broadcast_row():
    cfg = ModelConfig("qwen2_5_7b", phase="prefill", batch=1, seq_len=256, qkv_bias_add=True)
    op = next(op for op in _decoder(build_model(cfg)).ops if op.name == "qkv_bias")
    bias = next(t for t in op.inputs if t.name == "qkv_proj.bias")
    assert dict(op.dims)["t"] == 256 and op.tensor_bytes(bias) == (HEADS + 2 * KV_HEADS) * HEAD_DIM * 2


def test_only_tt_transformers_adds_the_bias_separately():
    cfg = ModelConfig("qwen2_5_7b", batch=1, kv_len=128)
    assert stack_model(cfg, load_stack("tt_transformers")).qkv_bias_add
    for other in ("none", "tt_galaxy", "tt_cnn", "neuron"):  # the Neuron and paper paths keep the folded bias
        assert not stack_model(cfg, load_stack(other)).qkv_bias_add, other


def test_tp2_evaluate_per_chip_hand_count():
    """On an n300 at TP=2 each chip adds its 14 query heads' and 2 KV heads' columns: (14 + 2 x 2) x 128 = 2,304;
    it reads the bias expanded to one tile of 32 rows: 32 x 2,304 x 2 B = 147,456 B from DRAM per layer, and no
    collective comes before or after the add."""
    tt = load_stack("tt_transformers")
    cfg = ModelConfig("qwen2_5_7b", batch=1, kv_len=128)
    out = evaluate(DesignPoint(_n300_tp2(), cfg, SCHED, stack=tt), include_ops=True)
    ops = out["ops"]
    adds = [o for o in ops if o["name"] == "qkv_bias"]
    assert len(adds) == LAYERS
    for o in adds:
        assert o["dims"] == {"t": 1, "o": 2304}
        assert o["hbm_bytes"] == 147_456  # the bias only: the projections' output stays on chip
        assert o["flops"] == 2304
    names = [o["name"] for o in ops]
    for i, name in enumerate(names):
        if name == "qkv_bias":
            assert names[i - 1] == "v_proj" and names[i + 1] == "attn_score"  # no collective around the add
    off = evaluate(DesignPoint(_n300_tp2(), cfg, SCHED, stack=replace(tt, separate_qkv_bias=False)), include_ops=False)
    assert out["model"]["ops"] - off["model"]["ops"] == LAYERS
    # the step pays at least one dispatch per added operator, and stays above the roofline
    assert out["latency_s"] - off["latency_s"] >= LAYERS * tt.dispatch_us_per_op * 1e-6
    assert out["latency_s"] >= out["roofline_latency_s"]


def _plan_adds(chip: str, parallelism: str, degree: int, model: str, batch: int):
    data = chip_data(chip)
    data["chips"] = {**data["chips"], "parallelism": parallelism}
    system = apply_stack(chip_from_dict(data), load_stack("tt_transformers"))
    cfg = stack_model(ModelConfig(model, batch=batch, kv_len=128), load_stack("tt_transformers"))
    plan = PARALLELISMS[parallelism]().plan(Workload(build_model(cfg)), system, degree)
    (layer,) = [layer for layer in plan.stages[0].graph.layers if layer.name == "decoder"]
    by_name = {op.name: op for op in layer.ops}
    add = by_name["qkv_bias"]
    bias = next(t for t in add.inputs if t.name == "qkv_proj.bias")
    width = sum(dict(by_name[n].dims)["o"] for n in ("q_proj", "k_proj", "v_proj"))
    return dict(add.dims), add.tensor_bytes(bias), width, layer.repeat


@pytest.mark.parametrize("chip, par, degree, model, batch, per_chip, rows", [
    # n300 TP=2, 33 users: two tiles of rows, 2 x 32 x 2,304 x 2 B
    ("wormhole_n300", "tp", 2, "qwen2_5_7b", 33, 2304, 64),
    # T3K TP=8: Qwen2.5-32B (40 heads, 8 KV heads): 5 query + 1 KV head per chip, (5 + 2) x 128 = 896
    ("wormhole_t3k", "tp", 8, "qwen2_5_32b", 1, 896, 32),
    # T3K TP=8: Qwen2.5-7B (28 heads padded to 32, 4 KV heads replicated: 1 per chip): (4 + 2) x 128 = 768
    ("wormhole_t3k", "tp", 8, "qwen2_5_7b", 1, 768, 32),
    # Galaxy 2-D tp, columns over the 8-chip axis A: Qwen2.5-72B (64 heads, 8 KV): (64 + 2 x 8) x 128 / 8 = 1,280
    ("wormhole_galaxy", "tp2d", 32, "qwen2_5_72b", 32, 1280, 32),
])
def test_split_with_the_fused_qkv_columns(chip, par, degree, model, batch, per_chip, rows):
    dims, bias_bytes, proj_width, _ = _plan_adds(chip, par, degree, model, batch)
    assert dims == {"t": batch, "o": per_chip}
    assert proj_width == per_chip  # the chip's q/k/v projections' own columns
    assert bias_bytes == rows * per_chip * 2  # bfloat16, the tile-padded rows


def test_the_field_needs_its_source():
    data = {"name": "x", "separate_qkv_bias": True,
            "sources": {k: "s" for k in ("dispatch_us_per_op", "sync_us_per_layer", "chip_sync_us_per_layer",
                                         "collective_startup_us", "dram_efficiency")}}
    with pytest.raises(ConfigError) as err:
        stack_from_dict(data)
    assert err.value.field == "stack.sources.qkv_bias"
    data["sources"]["qkv_bias"] = "tt-metal attention.py forward_decode"
    assert stack_from_dict(data).separate_qkv_bias
