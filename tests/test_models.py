"""Workload models against hand computations and published figures.

Every expected number below is written out by hand from the published architecture (HF config.json / paper),
not computed by the code under test.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from elk_dse.errors import ConfigError, UnknownKeyError
from elk_dse.ir.graph import Graph, Role
from elk_dse.models import MODELS, ModelConfig, build_model, model_config_from_dict, model_names

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
DECODERS = ("llama2_7b", "llama2_13b", "llama2_70b", "opt_30b", "gemma2_27b", "mixtral_8x7b", "llama3_1_8b",
            "llama3_1_70b", "llama3_2_1b", "llama3_2_3b", "mistral_7b",
            "mistral_7b_v0_2", "qwen2_5_7b", "qwen2_5_32b", "qwen2_5_72b", "qwen3_32b",
            "phi3_5_mini",  # issue 17 validation points (2026-11-29)
            "phi4",  # issue 17 validation points (2026-11-29, fourth session)
            "qwen3_8b",  # issue 17 validation points (2026-11-29, fifth session)
            "falcon3_1b", "falcon3_7b", "falcon_7b", "falcon_40b",  # issue 17 points (2026-11-29, sixth session)
            "llama3_1_405b",
            "opt_13b", "opt_66b")  # issue 17 points (2026-11-29, seventh session)
ENCODERS = ("bert_large", "bert_base", "vit_large", "dit_xl",
            "roberta_large",  # issue 17 validation points (2026-11-29, fourth session)
            "roberta_base")  # issue 17 validation points (2026-11-29, ninth session)


def graph(name: str, **kw) -> Graph:
    return build_model(ModelConfig(name, **kw))


def op(g: Graph, name: str):
    return next(o for layer in g.layers for o in layer.ops if o.name == name)


# --- Llama-2-13B decode ------------------------------------------------------------------------------------


def test_llama2_13b_decode_kv_cache_bytes():
    g = graph("llama2_13b", batch=32, kv_len=2048)
    # K and V, 40 layers, 32 sequences, 2048 rows of 5120 (40 heads x 128) fp16 values.
    assert g.kv_cache_read_bytes == 2 * 40 * 32 * 2048 * 5120 * 2
    # The step appends one K and one V row per sequence and layer.
    assert g.kv_cache_write_bytes == 2 * 40 * 32 * 5120 * 2


def test_llama2_13b_parameter_count_matches_published():
    per_layer = 4 * 5120 * 5120 + 3 * 5120 * 13824 + 2 * 5120  # q k v o, gate up down, 2 RMSNorms
    # Layers, final norm, embedding table and untied LM head: the published count.
    assert 40 * per_layer + 5120 + 2 * 32000 * 5120 == 13_015_864_320
    g = graph("llama2_13b", batch=32, kv_len=2048)
    assert g.parameter_bytes == 2 * 13_015_864_320
    assert dict(g.meta)["params"] == 13_015_864_320


def test_llama2_13b_decode_weight_bytes_and_flops():
    b, kv, hidden, layers = 32, 2048, 5120, 40
    g = graph("llama2_13b", batch=b, kv_len=kv)
    per_layer = 4 * 5120 * 5120 + 3 * 5120 * 13824 + 2 * 5120
    # Layers, final norm, the whole LM head, and only the 32 gathered embedding rows.
    params_read = 40 * per_layer + 5120 + 32000 * 5120 + 32 * 5120
    assert g.weight_bytes == 2 * params_read
    # Each weight element read does one MAC per token (2 FLOPs x batch); attention is QK^T plus PV, each
    # 2 FLOPs x B x L x hidden per layer. The rest -- softmax (5 FLOPs per score, 5*40/(4*5120) ~ 1% of
    # attention = 0.06% of the total), norms, SwiGLU, residuals, minus the embedding rows and norm weights
    # that do no MAC -- is < 0.1%, so 0.5% is a tight but safe tolerance.
    expected = 2 * params_read * b + 2 * 2 * b * kv * hidden * layers
    assert g.flops == pytest.approx(expected, rel=5e-3)
    assert g.flops > expected  # the non-matmul ops only add


def test_decoder_layer_structure():
    g = graph("llama2_13b", batch=4, kv_len=100)
    assert [(layer.name, layer.repeat) for layer in g.layers] == [("embed", 1), ("decoder", 40), ("head", 1)]
    score = op(g, "attn_score")
    assert score.sizes == {"b": 4, "g": 40, "r": 1, "l": 100, "d": 128}
    assert [t.role for t in score.inputs] == [Role.ACTIVATION, Role.KV_CACHE]
    assert op(g, "k_proj").output.role == Role.KV_CACHE and op(g, "v_proj").output.role == Role.KV_CACHE
    assert op(g, "lm_head").output.role == Role.OUTPUT
    assert (g.batch, g.seq_len, g.kv_len, g.phase, g.name) == (4, 1, 100, "decode", "llama2_13b")


def test_llama2_7b_prefill():
    b, s = 2, 128
    g = graph("llama2_7b", phase="prefill", batch=b, seq_len=s)
    assert g.kv_cache_read_bytes == 0  # K/V stay on chip within a prefill
    assert g.kv_cache_write_bytes == 2 * 32 * b * s * 4096 * 2
    assert op(g, "attn_score").sizes == {"b": 2, "g": 32, "r": 1, "s": 128, "s2": 128, "d": 128}
    assert op(g, "lm_head").sizes == {"t": b, "h": 4096, "o": 32000}  # last token of each sequence only
    assert op(g, "embed_tokens").bytes_by_role(Role.WEIGHT) == b * s * 4096 * 2  # gathered rows only
    # 6,738,415,616 published parameters.
    assert g.parameter_bytes == 2 * 6_738_415_616


# --- Llama-2-70B (GQA) -------------------------------------------------------------------------------------


def test_llama2_70b_gqa_kv_bytes_and_params():
    kv = 1024
    g = graph("llama2_70b", batch=1, kv_len=kv)
    # K and V, 80 layers, 8 KV heads of 128, fp16: bytes per token of KV length.
    assert g.kv_cache_read_bytes / kv == 2 * 80 * 8 * 128 * 2
    assert op(g, "attn_score").sizes == {"b": 1, "g": 8, "r": 8, "l": kv, "d": 128}
    per_layer = 2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672 + 2 * 8192
    assert 80 * per_layer + 8192 + 2 * 32000 * 8192 == 68_976_648_192  # published
    params = dict(g.meta)["params"]
    assert params == 68_976_648_192
    assert params == pytest.approx(68.98e9, rel=1e-3)


# --- OPT-30B and Gemma-2-27B -------------------------------------------------------------------------------


def test_opt_30b_params_biases_and_positions():
    h, f = 7168, 28672
    per_layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h  # biased projections, 2 LayerNorms
    # Layers, final LayerNorm, tied token embedding (counted once), 2050 learned position rows.
    expected = 48 * per_layer + 2 * h + 50272 * h + 2050 * h
    assert expected == 29_974_540_288
    g = graph("opt_30b", batch=1, kv_len=2048)
    assert dict(g.meta)["params"] == expected
    assert expected == pytest.approx(30e9, rel=0.01)  # "OPT-30B"
    assert op(g, "lm_head").inputs[1].name == "embed_tokens"  # tied head
    assert any(t.name == "q_proj.bias" for t in op(g, "q_proj").inputs)


def test_gemma2_27b_tied_embedding_and_params():
    h, v = 4608, 256000
    per_layer = h * 4096 + 2 * h * 2048 + 4096 * h + 3 * h * 36864 + 4 * h  # 32x128 q, 16x128 k/v, 4 norms
    expected = 46 * per_layer + h + v * h  # the tied table counted once
    assert expected == 27_227_128_320  # HF google/gemma-2-27b: 27.2B
    g = graph("gemma2_27b", batch=1, kv_len=2048)
    assert g.parameter_bytes == 2 * expected
    # A decode step reads the whole table through the LM head plus one embedding row.
    assert g.weight_bytes == 2 * (46 * per_layer + h + v * h + h)
    assert g.kv_cache_read_bytes == 2 * 46 * 1 * 2048 * 16 * 128 * 2


# --- Encoders ----------------------------------------------------------------------------------------------


def test_bert_base_params_match_the_published_count():
    h, f = 768, 3072
    per_layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    expected = 30522 * h + 512 * h + 2 * h + 2 * h + 12 * per_layer + h * h + h
    assert expected == 109_482_240  # google-bert/bert-base-uncased (BertModel with the pooler)
    g = graph("bert_base", phase="prefill", batch=1, seq_len=128)
    assert dict(g.meta)["params"] == expected and g.layers[1].repeat == 12
    assert op(g, "attn_score").sizes == {"b": 1, "g": 12, "r": 1, "s": 128, "s2": 128, "d": 64}


def test_bert_large_params_and_layer():
    h, f = 1024, 4096
    per_layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    embeddings = 30522 * h + 512 * h + 2 * h + 2 * h  # word, position, token type, LayerNorm
    expected = embeddings + 24 * per_layer + h * h + h  # + pooler
    assert expected == 335_141_888
    g = graph("bert_large", phase="prefill", batch=2, seq_len=384)
    assert dict(g.meta)["params"] == expected
    assert expected == pytest.approx(335e6, rel=0.03)
    assert g.layers[1].repeat == 24 and g.kv_cache_bytes == 0
    assert op(g, "attn_score").sizes == {"b": 2, "g": 16, "r": 1, "s": 384, "s2": 384, "d": 64}



# --- issue 17 (2026-11-29, fourth session): the new validation points' models -----------------------------------


def test_roberta_large_params_match_the_published_count():
    """FacebookAI/roberta-large through the BERT graph: vocab 50265, 514 positions, one token type, with the
    pooler (RobertaModel, as AutoModel loads it): 355,359,744 parameters."""
    h, f = 1024, 4096
    per_layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    embeddings = 50265 * h + 514 * h + 1 * h + 2 * h  # word, position, token type, LayerNorm
    expected = embeddings + 24 * per_layer + h * h + h  # + pooler
    assert expected == 355_359_744
    g = graph("roberta_large", phase="prefill", batch=8, seq_len=128)
    assert dict(g.meta)["params"] == expected and g.layers[1].repeat == 24
    assert op(g, "attn_score").sizes == {"b": 8, "g": 16, "r": 1, "s": 128, "s2": 128, "d": 64}


def test_roberta_base_params_match_the_published_count():
    """FacebookAI/roberta-base through the BERT graph (issue 17, ninth session's points): hidden 768, 12 layers,
    FFN 3072, vocab 50265, 514 positions, one token type, with the pooler (RobertaModel, as AutoModel loads it):
    124,645,632 parameters."""
    h, f = 768, 3072
    per_layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    embeddings = 50265 * h + 514 * h + 1 * h + 2 * h  # word, position, token type, LayerNorm
    expected = embeddings + 12 * per_layer + h * h + h  # + pooler
    assert expected == 124_645_632
    g = graph("roberta_base", phase="prefill", batch=16, seq_len=128)
    assert dict(g.meta)["params"] == expected and g.layers[1].repeat == 12
    assert op(g, "attn_score").sizes == {"b": 16, "g": 12, "r": 1, "s": 128, "s2": 128, "d": 64}


def test_phi4_params_and_kv_cache_from_its_config():
    """microsoft/phi-4 config.json: hidden 5120, 40 layers, 40 heads of 128, 10 KV heads, FFN 17920, vocab
    100352, untied LM head, no biases: 14,659,507,200 parameters (the model card: "14B")."""
    h, f, layers, vocab, kv_width = 5120, 17920, 40, 100352, 10 * 128
    per_layer = h * (h + 2 * kv_width) + h * h + h * 2 * f + f * h + 2 * h  # qkv, o, gate_up, down, 2 RMSNorms
    expected = layers * per_layer + h + 2 * vocab * h  # + final norm, embedding, LM head
    assert expected == 14_659_507_200
    g = graph("phi4", batch=1, kv_len=128)
    assert dict(g.meta)["params"] == expected and g.layers[1].repeat == layers
    assert g.kv_cache_read_bytes == 2 * layers * 1 * 128 * kv_width * 2  # K and V, bf16

# --- issue 17 (2026-11-29, fifth session): the new validation points' model ----------------------------------------


def test_qwen3_8b_params_and_kv_cache_from_its_config():
    """Qwen/Qwen3-8B config.json: hidden 4096, 36 layers, 32 heads of 128, 8 KV heads, FFN 12288, vocab 151936,
    untied LM head, no biases, RMS-norm on q and k (128 weights each): 8,190,735,360 parameters, the checkpoint's
    index total_size 16,381,470,720 B / 2 B (bf16); the model card's 6.95B non-embedding."""
    h, f, layers, vocab, q_width, kv_width = 4096, 12288, 36, 151936, 32 * 128, 8 * 128
    per_layer = h * (q_width + 2 * kv_width) + q_width * h + 3 * h * f + 2 * h + 2 * 128  # + q/k norms
    assert layers * per_layer + h == 6_946_075_648  # non-embedding: the card's "6.95B"
    expected = layers * per_layer + h + 2 * vocab * h  # + final norm, embedding, LM head
    assert expected == 8_190_735_360 == 16_381_470_720 // 2
    g = graph("qwen3_8b", batch=1, kv_len=128)
    assert dict(g.meta)["params"] == expected and g.layers[1].repeat == layers
    assert g.kv_cache_read_bytes == 2 * layers * 1 * 128 * kv_width * 2  # K and V, bf16


# --- issue 17 (2026-11-29, sixth session): the new validation points' models ------------------------------------


def _llama_params(h, layers, heads, kv_heads, head_dim, f, vocab, tied):
    """A Llama-style checkpoint's tensors summed by hand: q/k/v/o, gate/up/down, two RMS-norms per layer, the
    final norm, the embedding and (untied) the LM head; no biases."""
    per_layer = h * heads * head_dim + 2 * h * kv_heads * head_dim + heads * head_dim * h + 3 * h * f + 2 * h
    return layers * per_layer + h + vocab * h * (1 if tied else 2)


@pytest.mark.parametrize("name, expected, published", [
    # tiiuae/Falcon3-1B-Instruct config.json: 18 layers, hidden 2048, 8 heads of 256, 4 KV heads, FFN 8192,
    # vocabulary 131072, untied: x 2 B = the 3.34 GB bf16 model.safetensors of Falcon3-1B-Base (same architecture).
    ("falcon3_1b", _llama_params(2048, 18, 8, 4, 256, 8192, 131072, tied=False), 1_669_408_768),
    # tiiuae/Falcon3-7B-Instruct config.json @ca6ceed0: 28 layers, hidden 3072, 12 heads of 256, 4 KV heads, FFN
    # 23040, vocabulary 131072, untied (7.46 billion).
    ("falcon3_7b", _llama_params(3072, 28, 12, 4, 256, 23040, 131072, tied=False), 7_455_550_464),
])
def test_falcon3_params_from_their_configs(name, expected, published):
    assert expected == published
    g = graph(name, batch=1, kv_len=128)
    assert dict(g.meta)["params"] == expected


def test_llama3_1_405b_params_from_its_config():
    """meta-llama/Llama-3.1-405B config.json: 126 layers, hidden 16384, 128 heads of 128, 8 KV heads, FFN 53248,
    vocabulary 128256, untied LM head: 405,853,388,800 parameters (the model card's "405B")."""
    expected = _llama_params(16384, 126, 128, 8, 128, 53248, 128256, tied=False)
    assert expected == 405_853_388_800
    g = graph("llama3_1_405b", batch=1, kv_len=128)
    assert dict(g.meta)["params"] == expected and g.layers[1].repeat == 126


def test_falcon_7b_and_40b_params_from_their_configs():
    """falcon-7b-instruct: multi-query (one K/V head of 64), fused QKV 4544 x 4672, one LayerNorm per layer,
    GELU MLP 4544 <-> 18176, tied 65024-row embedding: 6,921,720,704 (as tests/test_hf.py's hand count).
    falcon-40b-instruct (new decoder architecture): 128 query heads of 64 and 8 KV heads, fused QKV 8192 x
    (8192 + 2 x 8 x 64), two LayerNorms per layer, MLP 8192 <-> 32768, 60 layers, tied embedding: 41,303,293,952
    ("40B"; 41.3B by this count of the checkpoint's tensor shapes)."""
    h, f = 4544, 4 * 4544
    falcon7 = 65024 * h + 32 * (2 * h + h * (h + 2 * 64) + h * h + 2 * h * f) + 2 * h
    assert falcon7 == 6_921_720_704
    h, f = 8192, 4 * 8192
    falcon40 = 65024 * h + 60 * (4 * h + h * (h + 2 * 8 * 64) + h * h + 2 * h * f) + 2 * h
    assert falcon40 == 41_303_293_952
    for name, expected in (("falcon_7b", falcon7), ("falcon_40b", falcon40)):
        g = graph(name, batch=32, kv_len=128)
        assert dict(g.meta)["params"] == expected and g.layers[1].repeat == (32 if name == "falcon_7b" else 60)
    g = graph("falcon_40b", batch=1, kv_len=128)
    assert g.kv_cache_read_bytes == 2 * 60 * 128 * 8 * 64 * 2  # K and V of 8 KV heads, bf16


def test_vit_large_params_and_flops():
    h, f = 1024, 4096
    per_layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    expected = (768 * h + h) + h + 197 * h + 24 * per_layer + 2 * h + (h * 1000 + 1000)
    assert expected == 304_326_632
    g = graph("vit_large", phase="prefill", batch=1, seq_len=5)  # seq_len is ignored
    assert dict(g.meta)["params"] == expected
    assert expected == pytest.approx(304e6, rel=0.03)
    assert g.seq_len == 197
    # Published 61.6 GMACs per image (timm); non-matmul FLOPs add < 0.5%.
    assert g.flops / 2 == pytest.approx(61.6e9, rel=0.01)


def test_dit_xl_params_and_flops():
    g = graph("dit_xl", phase="prefill", batch=1)
    # DiT paper Table 4: 118.6 Gflop (multiply-adds) and 675M params for DiT-XL/2 at 256x256.
    assert g.flops / 2 == pytest.approx(118.6e9, rel=0.01)
    h, f = 1152, 4608
    # per block: q k v and proj, MLP, adaLN modulation (LayerNorms have no affine), all with biases
    per_block = 4 * (h * h + h) + (h * f + f + f * h + h) + (h * 6 * h + 6 * h)
    embed = (16 * h + h) + 256 * h + (256 * h + h + h * h + h) + 1001 * h  # patch, pos table, t-MLP, labels
    final = (h * 2 * h + 2 * h) + (h * 32 + 32)  # final adaLN and linear to 2x2x8 per token
    assert embed + 28 * per_block + final == 675_129_632  # facebookresearch/DiT parameter count
    assert dict(g.meta)["params"] == 675_129_632
    assert dict(g.meta)["params"] == pytest.approx(675e6, rel=0.01)
    assert op(g, "ada_modulation").sizes == {"t": 1, "h": 1152, "o": 6 * 1152}
    assert op(g, "attn_score").sizes["s"] == 256


# --- ResNet-50 ---------------------------------------------------------------------------------------------


def test_resnet50_macs_and_params():
    g = graph("resnet50", phase="prefill", batch=1)
    macs = sum(o.points * layer.repeat for layer in g.layers for o in layer.ops if o.uses_matrix_unit)
    assert macs == pytest.approx(4.1e9, rel=0.02)  # ~4.1 GMACs per 224x224 image (torchvision v1.5)
    assert g.flops == pytest.approx(8.2e9, rel=0.05)
    # torchvision's 25,557,032 include 2 BN parameters per channel; folding leaves 1 bias per channel.
    # stem, then per stage: blocks x (width + width + out) plus the projection shortcut's out channels
    stages = [(3, 64, 256), (4, 128, 512), (6, 256, 1024), (3, 512, 2048)]
    bn_channels = 64 + sum(n * (w + w + out) + out for n, w, out in stages)
    assert bn_channels == 26_560
    expected = 25_557_032 - bn_channels
    assert dict(g.meta)["params"] == expected == 25_530_472
    assert expected == pytest.approx(25.5e6, rel=0.02)
    assert [(layer.name, layer.repeat) for layer in g.layers[1:9]] == [
        ("stage1.first", 1), ("stage1", 2), ("stage2.first", 1), ("stage2", 3),
        ("stage3.first", 1), ("stage3", 5), ("stage4.first", 1), ("stage4", 2),
    ]  # fmt: skip
    conv_b = op(g, "stage2.first.conv_b")  # the strided 3x3 of stage 2: 56x56 -> 28x28
    assert conv_b.sizes == {"n": 1, "k": 128, "c": 128, "p": 28, "q": 28, "r": 3, "s": 3}
    assert conv_b.tensor_bytes(conv_b.inputs[0]) == 128 * 56 * 56 * 2  # the window is capped at the input


def test_resnet50_relu_runs_in_the_conv_epilogue():
    """As tt-metal's ResNet-50 runs it (ttnn.conv2d activation="relu"; the residual add with its ReLU as one
    op): no standalone ReLU operator. Hand count: 53 convs (stem, 16 blocks x 3, 4 projection shortcuts), 16
    add+ReLU, max- and average-pool, fc = 72 operator instances; the ReLUs' FLOPs stay counted (in the convs)."""
    g = graph("resnet50", phase="prefill", batch=2)
    kinds: dict[str, int] = {}
    for layer in g.layers:
        for o in layer.ops:
            kinds[o.kind] = kinds.get(o.kind, 0) + layer.repeat
    assert kinds == {"conv": 53, "elementwise": 16, "pool": 2, "matmul": 1}
    assert not any("relu" in o.name and o.kind != "elementwise" for layer in g.layers for o in layer.ops)
    assert [o.name for o in g.layers[0].ops] == ["conv1", "maxpool"]
    # The ReLU elements each fused conv writes: stem 64 x 112^2, and per block conv_a's and conv_b's outputs.
    stages = [(3, 64, 56, 56), (4, 128, 56, 28), (6, 256, 28, 14), (3, 512, 14, 7)]  # blocks, width, in, out size
    relu_elements = 64 * 112 * 112 + sum(w * a * a + w * b * b + (n - 1) * (w * b * b + w * b * b)
                                         for n, w, a, b in stages)
    macs = sum(o.points * layer.repeat for layer in g.layers for o in layer.ops if o.kind == "conv")
    conv_flops = sum(o.flops * layer.repeat for layer in g.layers for o in layer.ops if o.kind == "conv")
    assert conv_flops == pytest.approx(2 * macs + 2 * relu_elements, rel=1e-12)  # batch 2


def test_resnet50_tensors_carry_the_model_format_so_bfp8_convs_run_at_hifi2():
    """The ResNet builder names each tensor's format as the other builders do (Ops.for_config): a bfp8 conv
    runs at the Tensix matrix engine's bfp8 rate (format_speedup 2.0, HiFi2) and a bf16 one at the base rate,
    on the same bytes as before (bfloat8_b: 1.0625 B per element)."""
    import numpy as np

    from elk_dse.cost.core_models import core_model
    from elk_dse.hw.chip import chip_from_dict

    n150 = chip_from_dict(yaml.safe_load((Path(__file__).parents[1] / "conf/chip/wormhole_n150.yaml").read_text()))
    cycles = {}
    for dtype in ("bfp8", "bf16"):
        g = graph("resnet50", phase="prefill", batch=1, dtype=dtype)
        conv_b = op(g, "stage2.first.conv_b")
        assert set(conv_b.formats) == {dtype}
        sub = {d: np.array([float(n)]) for d, n in conv_b.dims}
        cycles[dtype] = float(core_model(n150.cores).cycles(conv_b, sub)[0])
        assert conv_b.tensor_bytes(conv_b.inputs[0]) == 128 * 56 * 56 * (1.0625 if dtype == "bfp8" else 2)
    # 1 x 128 x 128 x 28 x 28 x 9: m = 784 (25 tiles of 32 rows), n = 128 (4), k = 1152 (36); 64 cycles per
    # 32x32x32 tile at 512 MAC/cycle (HiFi4 base), halved by bfp8's speedup.
    assert cycles["bf16"] == 25 * 4 * 36 * 64
    assert cycles["bfp8"] == cycles["bf16"] / 2


# --- Mixtral-8x7B (mixture of experts) --------------------------------------------------------------------

MIX_H, MIX_F, MIX_E, MIX_L = 4096, 14336, 8, 32
MIX_EXPERT = 3 * MIX_H * MIX_F  # gate, up, down of one expert (elements)
MIX_ATTN = 2 * MIX_H * MIX_H + 2 * MIX_H * 8 * 128  # q, o; k, v with 8 KV heads of 128


def test_mixtral_parameter_count_matches_published():
    per_layer = MIX_ATTN + MIX_E * MIX_EXPERT + MIX_H * MIX_E + 2 * MIX_H  # + router, 2 RMSNorms
    assert MIX_L * per_layer + MIX_H + 2 * 32000 * MIX_H == 46_702_792_704
    g = graph("mixtral_8x7b")
    assert dict(g.meta)["params"] == 46_702_792_704 and g.parameter_bytes == 2 * 46_702_792_704


def mixtral_layer_weight_elements(loaded: float) -> float:
    return MIX_ATTN + loaded * MIX_EXPERT + MIX_H * MIX_E + 2 * MIX_H


@pytest.mark.parametrize(
    ("batch", "k", "loaded"),
    [
        (1, 2, 2.0),  # one token: exactly its 2 experts
        (4, 2, 8 * (1 - (6 / 8) ** 4)),  # 4 tokens: 8 x (1 - P(an expert is missed by all 4)) = 5.46875
        (64, 2, 8 * (1 - (6 / 8) ** 64)),  # practically all 8
        (1, 1, 1.0),  # model.active_experts=1
        (4, 8, 8.0),  # every expert active
    ],
)
def test_mixtral_decode_loads_the_expected_experts(batch, k, loaded):
    g = graph("mixtral_8x7b", batch=batch, kv_len=1024, active_experts=0 if k == 2 else k)
    # Layers, final norm, the LM head and the batch's embedding rows.
    expected = MIX_L * mixtral_layer_weight_elements(loaded) + MIX_H + 32000 * MIX_H + batch * MIX_H
    assert g.weight_bytes == pytest.approx(2 * expected, rel=1e-12)
    layer = g.layers[1]
    experts = {o.name: o for o in layer.ops if o.name.startswith("expert_")}
    # Every token runs through k experts: FLOPs of the expert matmuls are 2 x (batch x k) x h x f each.
    for name in ("expert_gate_proj", "expert_up_proj", "expert_down_proj"):
        assert experts[name].flops == 2 * batch * k * MIX_H * MIX_F
    # Router (2 h E per token + softmax 5 E) and the combine (2 per element and expert) are counted too.
    router = sum(o.flops for o in layer.ops if o.name.startswith("router"))
    assert router == batch * (2 * MIX_H * MIX_E + 5 * MIX_E)
    assert experts["expert_combine"].flops == 2 * batch * k * MIX_H


def test_active_experts_is_validated():
    with pytest.raises(ConfigError) as err:
        graph("llama2_7b", active_experts=2)
    assert err.value.field == "model.active_experts"
    with pytest.raises(ConfigError) as err:
        graph("mixtral_8x7b", active_experts=9)
    assert err.value.field == "model.active_experts" and "at most 8" in str(err.value)


# --- Every model, every phase ------------------------------------------------------------------------------


# The zoo (model=onnx and model=hf need a file: tests/test_onnx.py, tests/test_hf.py).
CASES = [(n, p) for n in sorted(MODELS) if n not in ("onnx", "hf") for p in MODELS[n].phases]


@pytest.mark.parametrize(("name", "phase"), CASES)
def test_every_op_is_well_formed(name, phase):
    g = graph(name, phase=phase, batch=2, seq_len=64, kv_len=96)
    assert (g.name, g.phase, g.batch) == (name, phase, 2)
    meta = dict(g.meta)
    assert meta["params"] > 0 and g.parameter_bytes == meta["params"] * 2
    assert g.flops > 0 and g.weight_bytes > 0
    for layer in g.layers:
        assert layer.repeat >= 1
        for o in layer.ops:
            assert o.flops >= 0
            assert all(n >= 1 for _, n in o.dims)
    if phase == "train":  # forward, loss, backward, optimizer (tests/test_training.py)
        assert [layer.name for layer in g.layers] == ["forward", "loss", "backward", "optimizer"]
        assert g.gradient_bytes > 0 and g.layers[-1].ops[-1].output.role == Role.OPTIMIZER_STATE
        return
    assert g.layers[-1].ops[-1].output.role == Role.OUTPUT
    if name in DECODERS + ENCODERS:
        body = g.layers[1]
        assert body.repeat == meta["num_layers"]
        # Op names of the repeated block are unique and carry no layer index ("layers.3.q_proj").
        names = [o.name for o in body.ops]
        assert len(set(names)) == len(names)
        assert not any(re.search(r"(^|[._])\d+($|[._])", n) for n in names)
        for key in ("hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab"):
            assert key in meta


def test_dtype_scales_bytes():
    fp16 = graph("llama2_7b", batch=4, kv_len=512)
    fp32 = graph("llama2_7b", batch=4, kv_len=512, dtype="fp32")
    int8 = graph("llama2_7b", batch=4, kv_len=512, dtype="int8")
    assert fp32.weight_bytes == 2 * fp16.weight_bytes == 4 * int8.weight_bytes
    assert fp32.kv_cache_bytes == 2 * fp16.kv_cache_bytes
    assert fp32.flops == fp16.flops


# --- Config errors and files -------------------------------------------------------------------------------


def test_bad_batch_names_the_field():
    with pytest.raises(ConfigError) as err:
        ModelConfig("llama2_7b", batch=0)
    assert err.value.field == "batch"
    with pytest.raises(ConfigError) as err:
        model_config_from_dict({"name": "llama2_7b", "batch": 0})
    assert err.value.field == "model.batch"


@pytest.mark.parametrize(
    ("kw", "field"), [({"phase": "training"}, "phase"), ({"dtype": "fp4"}, "dtype"), ({"kv_len": 0}, "kv_len")]
)
def test_bad_values_name_the_field(kw, field):
    with pytest.raises(ConfigError) as err:
        ModelConfig("llama2_7b", **kw)
    assert err.value.field == field


def test_unknown_model_suggests_nearest():
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig("llama2_13"))
    assert err.value.field == "model.name"
    assert "did you mean 'llama2_13b'" in str(err.value)


def test_unknown_key_is_rejected():
    with pytest.raises(UnknownKeyError, match="did you mean 'batch'"):
        model_config_from_dict({"name": "llama2_7b", "batchsize": 4})


def test_unsupported_phase_and_lengths():
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig("bert_large", phase="decode"))
    assert err.value.field == "model.phase"
    # Decoders may run past their learned positions (performance studies do, e.g. OPT-30B at KV 4096) ...
    assert build_model(ModelConfig("opt_30b", kv_len=4096)).kv_len == 4096
    # ... an encoder's sequence length is bounded by its position table (BERT: 512).
    with pytest.raises(ConfigError) as err:
        build_model({"name": "bert_large", "phase": "prefill", "seq_len": 1024})
    assert err.value.field == "model.seq_len"


def test_config_files_match_registry():
    files = {p.stem: p for p in CONF.glob("*.yaml")}
    assert sorted(files) == model_names()
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    for stem, path in files.items():
        data = yaml.safe_load(path.read_text())
        # Every file sets the sizes; only the ONNX importer's file sets its path and unsupported-op policy,
        # only an MoE model's its active experts.
        optional = {"path", "unsupported", "active_experts", "recompute", "fused_attention", "formats", "arch",
                    "weight_inputs", "split_projections",  # issue 17d: set by a stack, no model file sets it
                    "qkv_bias_add"}  # issue 17q (ninth session): set by a stack too
        assert fields - optional <= set(data) <= fields, path
        assert ("weight_inputs" in data) == (stem == "onnx")
        assert ("path" in data) == (stem in ("onnx", "hf"))
        assert ("active_experts" in data) == (stem in ("mixtral_8x7b", "hf"))
        # Every zoo model carries its architecture as Hugging Face config.json fields (models/zoo.py).
        assert ("arch" in data) == (stem != "onnx")
        assert ("recompute" in data) == (stem != "onnx")  # every zoo model trains
        assert ("fused_attention" in data) == (stem != "onnx" and not stem.startswith("resnet"))  # CNNs: no attention
        assert data["name"] == stem
        if stem == "onnx":
            assert data["path"] == "" and data["phase"] == "prefill"
            continue
        if stem == "hf":
            assert data["path"] == "" and all(v is None for v in data["arch"].values())
            continue
        g = build_model(model_config_from_dict(data))
        assert g.phase == data["phase"]
        assert g.phase == ("decode" if stem in DECODERS else "prefill")


# --- issue 17 (2026-11-29, seventh session): the new validation points' models -----------------------------------


def _opt_params(h, layers, f, vocab=50272, positions=2050):
    """An OPT checkpoint's tensors summed by hand: biased q/k/v/out and fc1/fc2, two LayerNorms per layer, the
    final LayerNorm, the tied token embedding (counted once) and the learned positions (2048 + 2 offset rows)."""
    per_layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    return layers * per_layer + 2 * h + vocab * h + positions * h


@pytest.mark.parametrize("name, h, layers, f, published", [
    # facebook/opt-13b config.json / OPT paper Table 1: 40 layers, d_model 5120, 40 heads, FFN 4 x 5120.
    ("opt_13b", 5120, 40, 20480, 12_853_473_280),
    # facebook/opt-66b config.json / OPT paper Table 1: 64 layers, d_model 9216, 72 heads, FFN 4 x 9216.
    ("opt_66b", 9216, 64, 36864, 65_719_701_504),
])
def test_opt_13b_and_66b_params_from_their_configs(name, h, layers, f, published):
    expected = _opt_params(h, layers, f)
    assert expected == published
    assert expected == pytest.approx(13e9 if name == "opt_13b" else 66e9, rel=0.02)  # "OPT-13B", "OPT-66B"
    g = graph(name, batch=1, kv_len=1024)
    assert dict(g.meta)["params"] == expected
    assert op(g, "lm_head").inputs[1].name == "embed_tokens"  # tied head

