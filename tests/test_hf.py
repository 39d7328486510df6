"""Decoder LLMs from Hugging Face config.json files (models/hf.py, ``model=hf model.path=<config.json>``).

Each config below is written from the published config.json of the checkpoint (the fields our parser reads,
plus a few it must ignore); its parameter count must equal the checkpoint's exact published count. Sources:
the safetensors index ``metadata.total_size`` (bytes; / 2 for bf16) or the model card / library preset.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests_paths import ROOT

from elk_dse.errors import ConfigError
from elk_dse.ir.graph import Role
from elk_dse.models import ModelConfig, build_model
from elk_dse.models.hf import HF_TYPES

# name -> (config.json fields, published exact parameter count, where the count is published)
PUBLISHED: dict[str, tuple[dict, int, str]] = {
    "llama2_7b": (dict(model_type="llama", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=32, intermediate_size=11008, vocab_size=32000, hidden_act="silu",
                       tie_word_embeddings=False, rms_norm_eps=1e-5),
                  6_738_415_616, "Touvron et al. 2023; meta-llama/Llama-2-7b-hf index total_size 13,476,839,424 B"),
    "llama3_1_8b": (dict(model_type="llama", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, intermediate_size=14336, vocab_size=128256, hidden_act="silu",
                         tie_word_embeddings=False, rope_scaling={"factor": 8.0, "rope_type": "llama3"}),
                    8_030_261_248, "meta-llama/Llama-3.1-8B model card / index total_size 16,060,522,496 B"),
    "mistral_7b_v0_1": (dict(model_type="mistral", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                             num_key_value_heads=8, intermediate_size=14336, vocab_size=32000, hidden_act="silu",
                             sliding_window=4096, tie_word_embeddings=False),
                        7_241_732_096, "mistralai/Mistral-7B-v0.1 (issue #15's published count)"),
    "mixtral_8x7b": (dict(model_type="mixtral", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                          num_key_value_heads=8, intermediate_size=14336, vocab_size=32000, num_local_experts=8,
                          num_experts_per_tok=2, sliding_window=None),
                     46_702_792_704, "mistralai/Mixtral-8x7B-v0.1 (issue #15's published count)"),
    "qwen2_5_7b": (dict(model_type="qwen2", hidden_size=3584, num_hidden_layers=28, num_attention_heads=28,
                        num_key_value_heads=4, intermediate_size=18944, vocab_size=152064, tie_word_embeddings=False,
                        use_sliding_window=False, sliding_window=131072, max_window_layers=28),
                   7_615_616_512, "Qwen/Qwen2.5-7B index total_size 15,231,233,024 B (bf16); card: 7.61B"),
    "qwen1_5_moe_a2_7b": (dict(model_type="qwen2_moe", hidden_size=2048, num_hidden_layers=24, num_attention_heads=16,
                               num_key_value_heads=16, intermediate_size=5632, moe_intermediate_size=1408,
                               shared_expert_intermediate_size=5632, num_experts=60, num_experts_per_tok=4,
                               vocab_size=151936, tie_word_embeddings=False),
                          14_315_784_192, "Qwen/Qwen1.5-MoE-A2.7B index total_size 28,631,568,384 B (bf16)"),
    "qwen3_8b": (dict(model_type="qwen3", hidden_size=4096, num_hidden_layers=36, num_attention_heads=32,
                      num_key_value_heads=8, head_dim=128, intermediate_size=12288, vocab_size=151936,
                      tie_word_embeddings=False, attention_bias=False, use_sliding_window=False, sliding_window=None),
                 8_190_735_360, "Qwen/Qwen3-8B index total_size 16,381,470,720 B (bf16); card: 8.2B"),
    "gemma_7b": (dict(model_type="gemma", hidden_size=3072, num_hidden_layers=28, num_attention_heads=16,
                      num_key_value_heads=16, head_dim=256, intermediate_size=24576, vocab_size=256000,
                      hidden_act="gelu"),
                 8_537_680_896, "google/gemma-7b; keras-hub preset gemma_7b_en params 8,537,680,896"),
    "gemma2_9b": (dict(model_type="gemma2", hidden_size=3584, num_hidden_layers=42, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=256, intermediate_size=14336, vocab_size=256000,
                       hidden_activation="gelu_pytorch_tanh", sliding_window=4096, query_pre_attn_scalar=256),
                  9_241_705_984, "google/gemma-2-9b index total_size 18,483,411,968 B (bf16)"),
    "phi3_mini_4k": (dict(model_type="phi3", hidden_size=3072, num_hidden_layers=32, num_attention_heads=32,
                          num_key_value_heads=32, intermediate_size=8192, vocab_size=32064, sliding_window=2047,
                          tie_word_embeddings=False),
                     3_821_079_552, "microsoft/Phi-3-mini-4k-instruct index total_size 7,642,159,104 B (bf16)"),
    "gpt2": (dict(model_type="gpt2", n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257,
                  activation_function="gelu_new", n_inner=None),
             124_439_808, "openai-community/gpt2: GPT2LMHeadModel.num_parameters() = 124,439,808"),
    "pythia_160m": (dict(model_type="gpt_neox", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, vocab_size=50304, use_parallel_residual=True,
                         tie_word_embeddings=False, rotary_pct=0.25),
                    162_322_944, "EleutherAI/pythia-160m: Pythia suite table (Biderman et al. 2023), 162,322,944"),
    "opt_125m": (dict(model_type="opt", hidden_size=768, num_hidden_layers=12, num_attention_heads=12, ffn_dim=3072,
                      vocab_size=50272, max_position_embeddings=2048, do_layer_norm_before=True,
                      word_embed_proj_dim=768, activation_function="relu"),
                 125_239_296, "facebook/opt-125m: OPTForCausalLM.num_parameters() = 125,239,296"),
    "deepseek_v2_lite": (dict(model_type="deepseek_v2", hidden_size=2048, num_hidden_layers=27, num_attention_heads=16,
                              num_key_value_heads=16, intermediate_size=10944, moe_intermediate_size=1408,
                              n_routed_experts=64, n_shared_experts=2, num_experts_per_tok=6, first_k_dense_replace=1,
                              moe_layer_freq=1, q_lora_rank=None, kv_lora_rank=512, qk_nope_head_dim=128,
                              qk_rope_head_dim=64, v_head_dim=128, vocab_size=102400, tie_word_embeddings=False),
                         15_706_484_224, "deepseek-ai/DeepSeek-V2-Lite index total_size 31,412,968,448 B (bf16)"),
    "deepseek_v3": (dict(model_type="deepseek_v3", hidden_size=7168, num_hidden_layers=61, num_attention_heads=128,
                         num_key_value_heads=128, intermediate_size=18432, moe_intermediate_size=2048,
                         n_routed_experts=256, n_shared_experts=1, num_experts_per_tok=8, first_k_dense_replace=3,
                         moe_layer_freq=1, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
                         qk_rope_head_dim=64, v_head_dim=128, vocab_size=129280, tie_word_embeddings=False,
                         num_nextn_predict_layers=1),
                    671_026_419_200, "deepseek-ai/DeepSeek-V3: 671B main model (README_WEIGHTS.md), "
                                     "without the 14B multi-token-prediction module"),
}

# Falcon-7B: the checkpoint's tensor shapes summed by hand (word embeddings 65024 x 4544, tied; per layer one
# LayerNorm, fused qkv 4544 x 4672, dense 4544^2, MLP 2 x 4544 x 18176); no published exact count was found.
FALCON_7B = dict(model_type="falcon", hidden_size=4544, n_head=71, n_layer=32, vocab_size=65024, multi_query=True,
                 parallel_attn=True, bias=False, new_decoder_architecture=False, alibi=False)
FALCON_7B_PARAMS = 65024 * 4544 + 32 * (2 * 4544 + 4544 * 4672 + 4544 * 4544 + 2 * 4544 * 18176) + 2 * 4544


def write(tmp_path, fields: dict, name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"architectures": ["X"], "torch_dtype": "bfloat16", **fields}))
    return str(path)


def hf(tmp_path, fields: dict, **kw):
    return build_model(ModelConfig("hf", path=write(tmp_path, fields), **kw))


def test_at_least_twelve_published_models_cover_every_model_type():
    assert len(PUBLISHED) >= 12
    covered = {f["model_type"] for f, _, _ in PUBLISHED.values()} | {FALCON_7B["model_type"]}
    assert covered == set(HF_TYPES)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_equals_published(tmp_path, name):
    fields, published, _source = PUBLISHED[name]
    g = hf(tmp_path, fields, phase="decode", kv_len=16)
    assert dict(g.meta)["params"] == published
    assert g.parameter_bytes == published * 2  # bf16 (conf/model/hf.yaml's default)


def test_falcon_7b_parameter_count_hand(tmp_path):
    g = hf(tmp_path, FALCON_7B, kv_len=16)
    assert dict(g.meta)["params"] == FALCON_7B_PARAMS == 6_921_720_704


# --- decode bytes per step against hand counts ----------------------------------------------------------------

def test_gqa_decode_weight_and_kv_bytes(tmp_path):
    """Llama-3.1-8B, batch 1, 4096 cached tokens, bf16: every weight except the embedding table (one row
    gathered); K and V of 8 heads x 128 per layer and token."""
    fields, params, _ = PUBLISHED["llama3_1_8b"]
    g = hf(tmp_path, fields, phase="decode", batch=1, kv_len=4096)
    assert g.weight_bytes == (params - 128256 * 4096 + 4096) * 2
    assert g.kv_cache_read_bytes == 32 * 2 * 8 * 128 * 4096 * 2
    assert g.kv_cache_write_bytes == 32 * 2 * 8 * 128 * 2


def test_mqa_decode_kv_bytes(tmp_path):
    """Falcon-7B (multi-query): one K and one V head of 64 per layer, batch 3."""
    g = hf(tmp_path, FALCON_7B, phase="decode", batch=3, kv_len=1000)
    assert g.kv_cache_read_bytes == 3 * 32 * 2 * 64 * 1000 * 2
    assert g.kv_cache_write_bytes == 3 * 32 * 2 * 64 * 2
    # Tied: the LM head reads the whole table, the embedding gathers 3 rows of it.
    assert g.weight_bytes == (FALCON_7B_PARAMS + 3 * 4544) * 2


def test_mla_decode_reads_the_latent_cache(tmp_path):
    """DeepSeek-V2-Lite: the cache holds kv_lora_rank + qk_rope_head_dim = 576 values per token and layer;
    decode reads exactly that (not 16 heads x (128 + 128) per K/V)."""
    fields, params, _ = PUBLISHED["deepseek_v2_lite"]
    g = hf(tmp_path, fields, phase="decode", batch=2, kv_len=2048)
    assert g.kv_cache_read_bytes == 2 * 27 * (512 + 64) * 2048 * 2
    assert g.kv_cache_write_bytes == 2 * 27 * (512 + 64) * 2
    # Weights at batch 2: all but the embedding table and the routed experts, plus the expected distinct
    # experts two tokens routed to 6 of 64 touch: 64 (1 - (58/64)^2) per MoE layer.
    expert = 3 * 2048 * 1408
    loaded = 64 * (1 - (1 - 6 / 64) ** 2)
    dense = params - 102400 * 2048 - 26 * 64 * expert
    assert g.weight_bytes == pytest.approx((dense + 2 * 2048 + 26 * loaded * expert) * 2, rel=1e-12)


def test_moe_decode_reads_top_k_experts(tmp_path):
    """Mixtral-8x7B at batch 1 reads exactly 2 of 8 experts per layer (hand count of the rest)."""
    fields, _, _ = PUBLISHED["mixtral_8x7b"]
    g = hf(tmp_path, fields, phase="decode", batch=1, kv_len=512)
    attn = 2 * 4096 * 4096 + 2 * 4096 * 1024
    per_layer = attn + 4096 * 8 + 2 * 3 * 4096 * 14336 + 2 * 4096
    assert g.weight_bytes == (32 * per_layer + 32000 * 4096 + 4096 + 4096) * 2
    assert g.kv_cache_read_bytes == 32 * 2 * 8 * 128 * 512 * 2


def test_gemma2_sliding_window_caps_half_the_layers(tmp_path):
    """Gemma-2-9B at 8192 cached tokens: the 21 sliding-window layers read 4096 rows, the 21 global 8192."""
    fields, _, _ = PUBLISHED["gemma2_9b"]
    g = hf(tmp_path, fields, phase="decode", kv_len=8192)
    per_row = 2 * 8 * 256 * 2  # K and V of 8 heads x 256, bf16
    assert g.kv_cache_read_bytes == 21 * 4096 * per_row + 21 * 8192 * per_row
    assert [(la.name, la.repeat) for la in g.layers] == [("embed", 1), ("decoder_sliding", 21), ("decoder", 21),
                                                         ("head", 1)]
    short = hf(tmp_path, fields, phase="decode", kv_len=4096)  # within the window every layer is the same
    assert [la.name for la in short.layers] == ["embed", "decoder", "head"]


# --- structure, phases, overrides -------------------------------------------------------------------------

TINY = {
    "llama": dict(model_type="llama", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=128, vocab_size=100),
    "phi3": dict(model_type="phi3", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, vocab_size=100),
    "falcon": dict(model_type="falcon", hidden_size=64, n_layer=2, n_head=4, vocab_size=100),
    "gpt_neox": dict(model_type="gpt_neox", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=256, vocab_size=100),
    "qwen3": dict(model_type="qwen3", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=32, intermediate_size=128, vocab_size=100),
    "qwen2_moe": dict(model_type="qwen2_moe", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, moe_intermediate_size=32, shared_expert_intermediate_size=64,
                      num_experts=4, num_experts_per_tok=2, vocab_size=100),
    "deepseek_v3": dict(model_type="deepseek_v3", hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=128, moe_intermediate_size=32, n_routed_experts=4, n_shared_experts=1,
                        num_experts_per_tok=2, first_k_dense_replace=1, q_lora_rank=32, kv_lora_rank=16,
                        qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, vocab_size=100),
}


@pytest.mark.parametrize("kind", sorted(TINY))
@pytest.mark.parametrize("phase", ["decode", "prefill", "train"])
def test_every_phase_builds_with_the_same_parameters(tmp_path, kind, phase):
    g = hf(tmp_path, TINY[kind], phase=phase, batch=2, seq_len=16, kv_len=24)
    decode = hf(tmp_path, TINY[kind], phase="decode", batch=2, seq_len=16, kv_len=24)
    assert dict(g.meta)["params"] == dict(decode.meta)["params"] > 0
    assert g.flops > 0 and g.weight_bytes > 0
    if phase == "decode":
        assert g.kv_cache_read_bytes > 0 and g.kv_cache_write_bytes > 0
    if phase == "train":
        assert g.gradient_bytes > 0


def test_fused_projections_match_unfused_flops_and_weights(tmp_path):
    """Phi-3's fused qkv_proj / gate_up_proj do the same work as Llama's separate projections."""
    llama = dict(TINY["phi3"], model_type="llama")
    for phase in ("decode", "prefill"):
        a = hf(tmp_path, TINY["phi3"], phase=phase, seq_len=16, kv_len=24)
        b = hf(tmp_path, llama, phase=phase, seq_len=16, kv_len=24)
        assert (a.flops, a.weight_bytes, a.kv_cache_bytes) == (b.flops, b.weight_bytes, b.kv_cache_bytes)
        assert dict(a.meta)["params"] == dict(b.meta)["params"]


def test_arch_override_on_an_imported_file(tmp_path):
    path = write(tmp_path, PUBLISHED["llama2_7b"][0])
    full = build_model(ModelConfig("hf", path=path))
    half = build_model(ModelConfig("hf", path=path, arch={"num_hidden_layers": 16}))
    per_layer = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096
    assert dict(full.meta)["params"] - dict(half.meta)["params"] == 16 * per_layer
    nulls = build_model(ModelConfig("hf", path=path, arch={"num_hidden_layers": None}))  # null: from the file
    assert dict(nulls.meta)["params"] == dict(full.meta)["params"]


def test_zoo_arch_override_and_onnx_rejects_arch():
    base = build_model(ModelConfig("llama3_1_8b"))
    fewer_kv = build_model(ModelConfig("llama3_1_8b", arch={"num_key_value_heads": 4}))
    assert fewer_kv.kv_cache_read_bytes * 2 == base.kv_cache_read_bytes
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig("onnx", phase="prefill", path="m.onnx", arch={"num_hidden_layers": 2}))
    assert err.value.field == "model.arch"


# --- errors: one line naming the field -------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "field", "needle"), [
    ({"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 8,
      "vocab_size": 10}, "model.arch.hidden_size", "required for model_type llama"),
    ({"model_type": "lama", "hidden_size": 8}, "model.arch.model_type", "did you mean 'llama'"),
    ({"hidden_size": 8}, "model.arch.model_type", "required"),
    (dict(TINY["llama"], num_key_value_heads=3), "model.arch.num_key_value_heads", "divisor"),
    (dict(TINY["llama"], hidden_size="big"), "model.arch.hidden_size", "integer"),
    (dict(TINY["qwen3"], use_sliding_window=True), "model.arch.use_sliding_window", "not modelled"),
    (dict(TINY["qwen2_moe"], num_experts_per_tok=9), "model.arch.num_experts_per_tok", "1..4"),
])
def test_bad_config_is_one_line_naming_the_field(tmp_path, fields, field, needle):
    with pytest.raises(ConfigError) as err:
        hf(tmp_path, fields)
    assert err.value.field == field and needle in str(err.value)
    assert "\n" not in str(err.value) and "config.json" in str(err.value)


@pytest.mark.parametrize(("content", "needle"), [
    (None, "no such file"), ("{not json", "not a JSON config.json"), ("[1, 2]", "JSON object"),
])
def test_bad_file_is_one_line(tmp_path, content, needle):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig("hf", path=str(path)))
    assert err.value.field == "model.path" and needle in str(err.value)


def test_cli_evaluates_a_config_json(tmp_path):
    path = write(tmp_path, TINY["deepseek_v3"])
    cmd = [sys.executable, "-m", "elk_dse", "evaluate", "+chip=mesh64", "model=hf", f"model.path={path}",
           "model.arch.num_hidden_layers=2", "format=json"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["feasible"] and result["latency_s"] >= result["roofline_latency_s"] > 0
    assert result["model"]["model_type"] == "deepseek_v3" and result["model"]["num_layers"] == 2
    own = subprocess.run([*cmd[:-2], "format=json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert own.returncode == 0  # the file's own 3 layers
    missing = subprocess.run([*cmd[:6], "model.path=/nonexistent/config.json"], capture_output=True, text=True,
                             cwd=ROOT, timeout=300)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_mla_weights_are_attention_class_and_cache_is_kv_role(tmp_path):
    g = hf(tmp_path, TINY["deepseek_v3"], phase="decode", kv_len=24)
    ops = {op.name: op for layer in g.layers for op in layer.ops}
    assert ops["attention"].inputs[1].role == Role.KV_CACHE
    assert {ops["kv_a_proj_rope"].output.role, ops["kv_a_layernorm"].output.role} == {Role.KV_CACHE}


def test_sweep_over_architecture_fields_carries_them_to_rows_and_report(tmp_path):
    """sweeps/model_codesign.yaml: KV heads and MLP width are searched with SRAM and HBM bandwidth; the rows
    carry them as parameters, change what they should, and the report's Pareto table names them."""
    from elk_dse.cli import main
    from elk_dse.results.store import ResultStore

    out = tmp_path / "codesign"
    assert main(["sweep", "+chip=mesh64", "model=llama3_2_1b", "sweep=model_codesign", f"out={out}",
                 "search.n_trials=8", "search.batch_size=8", "search.workers=0", "progress=false"]) == 0
    df = ResultStore(out).read()
    assert (df["status"] == "COMPLETE").all() and len(df) == 8
    kv, ffn = df["param.model.arch.num_key_value_heads"], df["param.model.arch.intermediate_size"]
    assert kv.notna().all() and ffn.notna().all() and kv.nunique() > 1
    # KV bytes per step scale with the KV heads exactly: 16 layers x 2 x heads x 64 x (2048 read + 1 written) x 2 B.
    assert (df["metric.kv_cache_bytes"] == 16 * 2 * kv * 64 * 2049 * 2).all()
    html = (out / "report" / "report.html").read_text()
    assert "model.<wbr>arch.<wbr>num_key_value_heads" in html  # breaks after dots only


# --- encoders and CNNs as data (conf/model/<name>.yaml arch:) ----------------------------------------------

def test_resnet_depths_override_gives_resnet101():
    """microsoft/resnet-101 differs from resnet-50 only in depths [3, 4, 23, 3]: torchvision's 44,549,160
    parameters, minus one per batch-norm channel (52,672) as BN is folded into the convs' biases."""
    g = build_model(ModelConfig("resnet50", phase="prefill", arch={"depths": [3, 4, 23, 3]}))
    assert dict(g.meta)["params"] == 44_549_160 - 52_672
    assert dict(g.meta)["num_layers"] == 101


def test_encoder_arch_overrides():
    base = build_model(ModelConfig("bert_base", phase="prefill", seq_len=128))
    half = build_model(ModelConfig("bert_base", phase="prefill", seq_len=128, arch={"num_hidden_layers": 6}))
    per_layer = 4 * (768 * 768 + 768) + 2 * 768 * 3072 + 3072 + 768 + 4 * 768
    assert dict(base.meta)["params"] - dict(half.meta)["params"] == 6 * per_layer
    vit = build_model(ModelConfig("vit_large", phase="prefill", arch={"image_size": 384}))
    assert dict(vit.meta)["tokens"] == (384 // 16) ** 2 + 1


@pytest.mark.parametrize(("name", "arch", "field"), [
    ("resnet50", {"layer_type": "basic"}, "model.arch.layer_type"),
    ("resnet50", {"depths": [3, 4, 6]}, "model.arch.depths"),
    ("vit_large", {"patch_size": 15}, "model.arch.patch_size"),
    ("bert_base", {"model_type": "llama"}, "model.arch.model_type"),
    ("dit_xl", {"num_layers": 0}, "model.arch.num_layers"),
])
def test_encoder_arch_errors_name_the_field(name, arch, field):
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(name, phase="prefill", arch=arch))
    assert err.value.field == field and "\n" not in str(err.value)
