"""Numeric formats per tensor class and the Llama-3.x / Mistral models (issue 10): bytes per token against
hand counts written here, formats reaching every tensor, and bad formats rejected in one line."""

from __future__ import annotations

import pytest

from elk_dse.cli import main
from elk_dse.errors import ConfigError
from elk_dse.ir.formats import FORMAT_BITS
from elk_dse.ir.graph import Role
from elk_dse.models import build_model, model_config_from_dict

PERF = {"weights": "bfp8", "mlp_weights": "bfp4", "attention_weights": "bfp8", "kv_cache": "bfp8",
        "activations": "bf16"}
BFP8, BFP4 = 8.5 / 8, 4.5 / 8  # bytes per value: 8 / 4 bits + one 8-bit exponent shared by 16 values

# (layers, hidden, heads, kv_heads, head_dim, ffn, vocab): the published config.json of each checkpoint.
SPECS = {
    "llama3_1_8b": (32, 4096, 32, 8, 128, 14336, 128256),
    "llama3_1_70b": (80, 8192, 64, 8, 128, 28672, 128256),
    "llama3_2_1b": (16, 2048, 32, 8, 64, 8192, 128256),
    "llama3_2_3b": (28, 3072, 24, 8, 128, 8192, 128256),
    "mistral_7b": (32, 4096, 32, 8, 128, 14336, 32768),
}
PARAMS = {"llama3_1_8b": 8_030_261_248, "llama3_1_70b": 70_553_706_496, "llama3_2_1b": 1_235_814_400,
          "llama3_2_3b": 3_212_749_824, "mistral_7b": 7_248_023_552}
TIED = {"llama3_2_1b", "llama3_2_3b"}


def hand_counts(name: str) -> dict[str, int]:
    """Parameters by class: Q and O are h x (heads d), K and V h x (kv_heads d); SwiGLU has 3 h x ffn
    matrices; two RMSNorms per layer plus the final one; the LM head h x vocab."""
    n, h, q, kv, d, f, v = SPECS[name]
    return {"attention": n * (2 * h * q * d + 2 * h * kv * d), "mlp": n * 3 * h * f, "lm_head": h * v,
            "norms": n * 2 * h + h}


def test_format_bits():
    assert FORMAT_BITS["bfp8"] == 8.5 and FORMAT_BITS["bfp4"] == 4.5 and FORMAT_BITS["bf16"] == 16


def test_llama31_8b_hand_counts_of_the_issue():
    c = hand_counts("llama3_1_8b")
    assert c["attention"] == 1_342_177_280 and round(c["attention"] / 1e9, 3) == 1.342
    assert c["mlp"] == 5_637_144_576 and round(c["mlp"] / 1e9, 3) == 5.637
    assert c["lm_head"] == 525_336_576 and round(c["lm_head"] / 1e9, 3) == 0.525


@pytest.mark.parametrize("name", sorted(SPECS))
def test_bytes_per_token_match_hand_counts(name):
    n, h, _, kv, d, _, v = SPECS[name]
    c = hand_counts(name)
    # Untied models store an embedding table besides the LM head; tied ones share it.
    assert build_model({"name": name}).meta[-1] == ("params", PARAMS[name])
    assert PARAMS[name] == sum(c.values()) + (0 if name in TIED else h * v)
    b, kv_len = 1, 128
    g = build_model(model_config_from_dict({"name": name, "batch": b, "kv_len": kv_len, "formats": PERF}))
    # One decode step reads every matrix once, the norms, and one embedding row per token.
    weights = c["attention"] * BFP8 + c["mlp"] * BFP4 + (c["lm_head"] + c["norms"] + b * h) * BFP8
    assert g.weight_bytes == pytest.approx(weights, rel=1e-12)
    # KV cache: K and V of kv_len rows read, one row appended, per layer, in bfp8.
    rows = 2 * n * b * kv * d
    assert g.kv_cache_read_bytes == pytest.approx(rows * kv_len * BFP8, rel=1e-12)
    assert g.kv_cache_write_bytes == pytest.approx(rows * BFP8, rel=1e-12)
    # Stored parameters in their formats (the embedding table is a "weights"-class bfp8 tensor).
    stored = c["attention"] * BFP8 + c["mlp"] * BFP4 + (c["lm_head"] + c["norms"]) * BFP8
    assert g.parameter_bytes == pytest.approx(stored + (0 if name in TIED else h * v * BFP8), rel=1e-12)


def test_formats_reach_every_tensor_class():
    g = build_model(model_config_from_dict({"name": "llama3_2_1b", "batch": 2, "kv_len": 64, "formats": PERF}))
    seen = {}
    for layer in g.layers:
        for op in layer.ops:
            for t in (*op.inputs, op.output):
                seen.setdefault((op.name, t.name), (t.role, t.fmt))
    assert seen[("gate_proj", "gate_proj.weight")] == (Role.WEIGHT, "bfp4")
    assert seen[("down_proj", "down_proj.weight")] == (Role.WEIGHT, "bfp4")
    assert seen[("q_proj", "q_proj.weight")] == (Role.WEIGHT, "bfp8")
    assert seen[("attn_score", "k_cache")] == (Role.KV_CACHE, "bfp8")
    assert seen[("k_proj", "k")] == (Role.KV_CACHE, "bfp8")  # the appended row
    assert seen[("attn_softmax", "scores")] == (Role.ACTIVATION, "bf16")
    assert seen[("final_norm", "final_norm.weight")] == (Role.WEIGHT, "bfp8")


def test_default_formats_follow_dtype_and_keep_old_bytes():
    fp16 = build_model({"name": "llama2_7b", "batch": 1, "kv_len": 128})
    same = build_model(model_config_from_dict({"name": "llama2_7b", "batch": 1, "kv_len": 128,
                                               "formats": {"weights": "fp16"}}))
    assert fp16.weight_bytes == same.weight_bytes and fp16.parameter_bytes == 2 * 6_738_415_616
    mixed = build_model(model_config_from_dict({"name": "llama2_7b", "batch": 1, "kv_len": 128,
                                                "formats": {"mlp_weights": "int8"}}))
    assert mixed.weight_bytes < fp16.weight_bytes and mixed.kv_cache_bytes == fp16.kv_cache_bytes


def test_bad_format_is_rejected_naming_the_field(capsys):
    with pytest.raises(ConfigError) as err:
        model_config_from_dict({"name": "llama3_1_8b", "formats": {"mlp_weights": "bfp5"}})
    assert str(err.value).startswith("model.formats.mlp_weights='bfp5'")
    assert main(["evaluate", "+chip=mesh64", "model=llama3_2_1b", "model.formats.kv_cache=fp4"]) == 2
    out = capsys.readouterr().err.strip()
    assert "\n" not in out and "model.formats.kv_cache" in out
