"""Decoder LLMs from a Hugging Face ``config.json`` (architecture only: no weights, no network).

``model=hf model.path=<config.json>`` reads the file; the zoo's decoders carry the same fields inline in
``conf/model/<name>.yaml`` under ``arch:``; either way ``model.arch.<field>=`` overrides a field (a sweep can
search it). :func:`arch_spec` turns the merged mapping into a :class:`TransformerSpec` that
:func:`~elk_dse.models.transformer.decoder_graph` builds for every phase.

Defaults. ``transformers`` is not a dependency (it is large, and its configuration classes would only give
defaults): each supported ``model_type`` has a parser below that reads the fields its HF modelling code reads,
by the names (and aliases) its configuration class accepts. Sizes (hidden, layers, heads, MLP width,
vocabulary, ...) are required: a file without one is an error naming the field, never a silent Llama-7B-sized
default. Behaviour flags (biases, tied embeddings, parallel blocks, sliding windows) default to what the
configuration class of ``transformers`` 4.5x defaults them to, as ``save_pretrained`` omits defaults.
Structure a type can switch on that is not modelled (e.g. Qwen2's per-layer ``use_sliding_window``) is an
error naming the field, not an approximation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elk_dse.errors import ConfigError, nearest
from elk_dse.models.transformer import TransformerSpec

_MISSING = object()
MAX_CONFIG_BYTES = 4 << 20  # a config.json is a few KiB; refuse to parse something that is not one


class Arch:
    """Typed access to one architecture mapping; errors name ``<where>.<field>``."""

    def __init__(self, data: Mapping[str, Any], where: str, model_type: str):
        self.data, self.where, self.model_type = data, where, model_type

    def _raw(self, key: str, aliases: tuple[str, ...]) -> Any:
        for k in (key, *aliases):
            if self.data.get(k) is not None:
                return self.data[k]
        return _MISSING

    def integer(self, key: str, default: Any = _MISSING, *, aliases: tuple[str, ...] = (), low: int = 1) -> int:
        value = self._raw(key, aliases)
        if value is _MISSING:
            if default is _MISSING:
                raise ConfigError(f"{self.where}.{key}", None,
                                  f"required for model_type {self.model_type} (an integer >= {low})")
            return int(default)
        if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
            raise ConfigError(f"{self.where}.{key}", value, f"an integer >= {low}")
        if int(value) < low:
            raise ConfigError(f"{self.where}.{key}", value, f"an integer >= {low}")
        return int(value)

    def opt_int(self, key: str, *, aliases: tuple[str, ...] = ()) -> int:
        """An optional size: 0 when absent or null."""
        return 0 if self._raw(key, aliases) is _MISSING else self.integer(key, aliases=aliases, low=0)

    def flag(self, key: str, default: bool, *, aliases: tuple[str, ...] = ()) -> bool:
        value = self._raw(key, aliases)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where}.{key}", value, "true or false")
        return value

    def text(self, key: str, default: str) -> str:
        value = self._raw(key, ())
        return default if value is _MISSING else str(value)

    def reject(self, key: str, value: Any, why: str) -> ConfigError:
        return ConfigError(f"{self.where}.{key}", value, why)


def _gated(a: Arch, key: str = "hidden_act", default: str = "silu") -> str:
    """swiglu or geglu from a gated MLP's activation name."""
    act = a.text(key, default)
    if act in ("silu", "swish"):
        return "swiglu"
    if act.startswith("gelu"):
        return "geglu"
    raise a.reject(key, act, "silu or gelu* (the gated MLP's activation)")


def plain_activation(a: Arch, key: str, default: str) -> str:
    act = a.text(key, default)
    if act == "relu":
        return "relu"
    if act.startswith("gelu"):
        return "gelu"
    raise a.reject(key, act, "relu or gelu*")


def _heads(a: Arch) -> tuple[int, int, int, int]:
    """(hidden, heads, kv_heads, head_dim) of a Llama-style config; head_dim given or hidden / heads."""
    hidden = a.integer("hidden_size")
    heads = a.integer("num_attention_heads")
    kv = a.integer("num_key_value_heads", heads)
    head_dim = a.integer("head_dim", 0, low=0) or hidden // heads
    if not a.data.get("head_dim") and hidden % heads:
        raise a.reject("num_attention_heads", heads, f"a divisor of hidden_size={hidden} (or give head_dim)")
    return hidden, heads, kv, head_dim


def _no_bias(a: Arch, *keys: str) -> None:
    for key in keys:
        if a.flag(key, False):
            raise a.reject(key, True, "biases on every projection are not modelled for model_type "
                           f"{a.model_type}; use false")


def _window(a: Arch, default: int | None) -> int:
    """The sliding window in tokens (0: none); a null in the file turns a type's default window off."""
    if "sliding_window" in a.data:
        return a.opt_int("sliding_window")
    return default or 0


def _qwen_window(a: Arch) -> None:
    if a.flag("use_sliding_window", False):
        raise a.reject("use_sliding_window", True, "Qwen's per-layer sliding window (max_window_layers) is not "
                       "modelled; use false")


def _llama(a: Arch, **kw: Any) -> TransformerSpec:
    hidden, heads, kv, d = _heads(a)
    return TransformerSpec(a.integer("num_hidden_layers"), hidden, heads, kv, d, a.integer("intermediate_size"),
                           a.integer("vocab_size"), kw.pop("mlp", None) or _gated(a), "rms",
                           tied=a.flag("tie_word_embeddings", kw.pop("tied", False)), model_type=a.model_type, **kw)


def llama(a: Arch) -> TransformerSpec:
    _no_bias(a, "attention_bias", "mlp_bias")
    return _llama(a)


def mistral(a: Arch) -> TransformerSpec:
    window = _window(a, 4096)  # MistralConfig's default; v0.2+ files set null
    return _llama(a, sliding_window=window, sliding_every=1 if window else 0)


def mixtral(a: Arch) -> TransformerSpec:
    window = _window(a, None)
    experts = a.integer("num_local_experts")
    return _llama(a, sliding_window=window, sliding_every=1 if window else 0, experts=experts,
                  top_k=a.integer("num_experts_per_tok", 2))


def qwen2(a: Arch) -> TransformerSpec:
    _qwen_window(a)
    return _llama(a, qkv_bias=True)


def qwen3(a: Arch) -> TransformerSpec:
    _qwen_window(a)
    _no_bias(a, "attention_bias")
    return _llama(a, qk_norm=True)


def qwen2_moe(a: Arch) -> TransformerSpec:
    _qwen_window(a)
    if a.integer("decoder_sparse_step", 1) != 1 or a.data.get("mlp_only_layers"):
        raise a.reject("decoder_sparse_step", a.data.get("decoder_sparse_step"),
                       "1 with mlp_only_layers empty (an MoE MLP in every layer) is what is modelled")
    return _llama(a, qkv_bias=True, experts=a.integer("num_experts"), top_k=a.integer("num_experts_per_tok", 4),
                  moe_ffn=a.integer("moe_intermediate_size"), shared_ffn=a.opt_int("shared_expert_intermediate_size"),
                  shared_gate=bool(a.opt_int("shared_expert_intermediate_size")))


def gemma(a: Arch) -> TransformerSpec:
    return _llama(a, mlp=_gated(a, "hidden_activation" if "hidden_activation" in a.data else "hidden_act",
                                "gelu_pytorch_tanh"), tied=True)


def gemma2(a: Arch) -> TransformerSpec:
    window = _window(a, 4096)
    return _llama(a, mlp=_gated(a, "hidden_activation", "gelu_pytorch_tanh"), tied=True, sandwich_norm=True,
                  sliding_window=window, sliding_every=2 if window else 0)


def phi3(a: Arch) -> TransformerSpec:
    window = _window(a, None)
    return _llama(a, fused_qkv=True, fused_gate_up=True, sliding_window=window, sliding_every=1 if window else 0)


def falcon(a: Arch) -> TransformerSpec:
    hidden = a.integer("hidden_size")
    heads = a.integer("num_attention_heads", aliases=("n_head",))
    layers = a.integer("num_hidden_layers", aliases=("n_layer",))
    new_arch = a.flag("new_decoder_architecture", False)
    if a.flag("alibi", False):
        raise a.reject("alibi", True, "ALiBi Falcon variants are not modelled; use false")
    if new_arch:
        kv, parallel = a.integer("num_kv_heads", heads), 2 if a.integer("num_ln_in_parallel_attn", 2) == 2 else 1
    else:
        kv = 1 if a.flag("multi_query", True) else heads
        parallel = 1 if a.flag("parallel_attn", True) else 0
    return TransformerSpec(layers, hidden, heads, kv, hidden // heads, a.integer("ffn_hidden_size", 4 * hidden),
                           a.integer("vocab_size"), "gelu", "layer", bias=a.flag("bias", False),
                           tied=a.flag("tie_word_embeddings", True), fused_qkv=True, parallel=parallel,
                           model_type=a.model_type)


def gpt2(a: Arch) -> TransformerSpec:
    hidden = a.integer("n_embd", aliases=("hidden_size",))
    heads = a.integer("n_head", aliases=("num_attention_heads",))
    return TransformerSpec(a.integer("n_layer", aliases=("num_hidden_layers",)), hidden, heads, heads, hidden // heads,
                           a.integer("n_inner", 4 * hidden), a.integer("vocab_size"),
                           plain_activation(a, "activation_function", "gelu_new"), "layer", bias=True,
                           tied=a.flag("tie_word_embeddings", True), max_positions=a.integer("n_positions", 1024,
                           aliases=("max_position_embeddings",)), position_offset=0, fused_qkv=True,
                           model_type=a.model_type)


def gpt_neox(a: Arch) -> TransformerSpec:
    hidden, heads = a.integer("hidden_size"), a.integer("num_attention_heads")
    if not a.flag("attention_bias", True):
        raise a.reject("attention_bias", False, "GPT-NeoX without attention biases is not modelled; use true")
    return TransformerSpec(a.integer("num_hidden_layers"), hidden, heads, heads, hidden // heads,
                           a.integer("intermediate_size"), a.integer("vocab_size"), plain_activation(a, "hidden_act", "gelu"), "layer",
                           bias=True, tied=a.flag("tie_word_embeddings", False), fused_qkv=True,
                           parallel=2 if a.flag("use_parallel_residual", True) else 0, model_type=a.model_type)


def opt(a: Arch) -> TransformerSpec:
    hidden, heads = a.integer("hidden_size"), a.integer("num_attention_heads")
    if not a.flag("do_layer_norm_before", True):
        raise a.reject("do_layer_norm_before", False, "post-LN OPT (opt-350m) is not modelled; use true")
    if a.integer("word_embed_proj_dim", hidden) != hidden:
        raise a.reject("word_embed_proj_dim", a.data.get("word_embed_proj_dim"),
                       f"equal to hidden_size={hidden} (OPT's project_in/out is not modelled)")
    return TransformerSpec(a.integer("num_hidden_layers"), hidden, heads, heads, hidden // heads, a.integer("ffn_dim"),
                           a.integer("vocab_size"), plain_activation(a, "activation_function", "relu"), "layer",
                           bias=a.flag("enable_bias", True), tied=a.flag("tie_word_embeddings", True),
                           max_positions=a.integer("max_position_embeddings", 2048), model_type=a.model_type)


def deepseek(a: Arch) -> TransformerSpec:
    hidden, heads = a.integer("hidden_size"), a.integer("num_attention_heads")
    _no_bias(a, "attention_bias")
    experts = a.opt_int("n_routed_experts")
    if experts and a.integer("moe_layer_freq", 1) != 1:
        raise a.reject("moe_layer_freq", a.data.get("moe_layer_freq"), "1 (an MoE MLP in every layer after the "
                       "first_k_dense_replace dense ones) is what is modelled")
    moe_ffn = a.integer("moe_intermediate_size") if experts else 0
    return TransformerSpec(
        a.integer("num_hidden_layers"), hidden, heads, heads, a.integer("qk_nope_head_dim"), a.integer("intermediate_size"),
        a.integer("vocab_size"), _gated(a), "rms", tied=a.flag("tie_word_embeddings", False), experts=experts,
        top_k=a.integer("num_experts_per_tok") if experts else 0, moe_ffn=moe_ffn,
        shared_ffn=moe_ffn * a.opt_int("n_shared_experts"), first_dense=a.opt_int("first_k_dense_replace"),
        router_bias=a.model_type == "deepseek_v3" and bool(experts), q_lora_rank=a.opt_int("q_lora_rank"),
        kv_lora_rank=a.integer("kv_lora_rank"), qk_rope_dim=a.integer("qk_rope_head_dim"), v_head_dim=a.integer("v_head_dim"),
        model_type=a.model_type)


@dataclass(frozen=True)
class HFType:
    """A supported ``model_type``: its parser, and a small config of the type (a few layers, narrow) that
    the conformance suite (:mod:`elk_dse.testing.models`) builds in every phase."""

    parse: Callable[[Arch], TransformerSpec]
    example: Mapping[str, Any]


# model_type -> HFType. A new type is one module calling register_hf_type (and a row in docs/workloads.md);
# elk_dse.testing.models checks every registered type without being edited.
HF_TYPES: dict[str, HFType] = {}


def register_hf_type(model_type: str, example: Mapping[str, Any]
                     ) -> Callable[[Callable[[Arch], TransformerSpec]], Callable[[Arch], TransformerSpec]]:
    """Register the parser of ``model_type`` (a decorator); ``example``: a small config.json mapping of it."""
    def add(parse: Callable[[Arch], TransformerSpec]) -> Callable[[Arch], TransformerSpec]:
        HF_TYPES[model_type] = HFType(parse, {**example, "model_type": model_type})
        return parse
    return add


_SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=96)
_MOE = dict(moe_intermediate_size=32, num_experts_per_tok=2)
_MLA = dict(_SMALL, num_hidden_layers=3, n_routed_experts=4, n_shared_experts=1, first_k_dense_replace=1,
            kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, **_MOE)
for _name, _parse, _example in (
    ("llama", llama, dict(_SMALL, num_key_value_heads=2)),
    ("mistral", mistral, dict(_SMALL, num_key_value_heads=2, sliding_window=16)),
    ("mixtral", mixtral, dict(_SMALL, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2)),
    ("qwen2", qwen2, dict(_SMALL, num_key_value_heads=2)),
    ("qwen2_moe", qwen2_moe, dict(_SMALL, num_experts=4, shared_expert_intermediate_size=64, **_MOE)),
    ("qwen3", qwen3, dict(_SMALL, num_key_value_heads=2, head_dim=32)),
    ("gemma", gemma, dict(_SMALL, num_key_value_heads=1, head_dim=32)),
    ("gemma2", gemma2, dict(_SMALL, num_key_value_heads=2, head_dim=32, sliding_window=16)),
    ("phi3", phi3, dict(_SMALL, sliding_window=16)),
    ("falcon", falcon, dict(hidden_size=64, n_layer=2, n_head=4, vocab_size=96)),
    ("gpt2", gpt2, dict(n_embd=64, n_layer=2, n_head=4, vocab_size=96, n_positions=64)),
    ("gpt_neox", gpt_neox, dict(_SMALL)),
    ("opt", opt, dict(_SMALL, ffn_dim=128, max_position_embeddings=64)),
    ("deepseek_v2", deepseek, dict(_MLA)),
    ("deepseek_v3", deepseek, dict(_MLA, q_lora_rank=32)),
):
    register_hf_type(_name, _example)(_parse)


def arch_spec(arch: Mapping[str, Any], where: str = "model.arch") -> TransformerSpec:
    """The TransformerSpec of an HF-style architecture mapping (a config.json's fields); ConfigError naming
    ``<where>.<field>`` for a missing or bad field or an unknown ``model_type``."""
    model_type = arch.get("model_type")
    if model_type is None:
        raise ConfigError(f"{where}.model_type", None, "required: one of " + ", ".join(sorted(HF_TYPES)))
    if model_type not in HF_TYPES:
        raise ConfigError(f"{where}.model_type", model_type, "one of " + ", ".join(sorted(HF_TYPES))
                          + nearest(str(model_type), HF_TYPES))
    try:
        return HF_TYPES[model_type].parse(Arch(arch, where, str(model_type)))
    except ConfigError as err:
        if err.field.startswith(where):
            raise
        # TransformerSpec's own checks name the HF field without the prefix.
        raise ConfigError(f"{where}.{err.field}", err.value, err.allowed) from None


def read_hf_config(path: str) -> dict[str, Any]:
    """The mapping in an HF config.json; one-line ConfigError naming ``model.path`` for a missing, oversized,
    non-JSON or non-mapping file."""
    if not path:
        raise ConfigError("model.path", path, "the config.json to import: model=hf model.path=<config.json>")
    p = Path(path)
    if not p.is_file():
        raise ConfigError("model.path", path, "no such file")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError("model.path", path, f"larger than {MAX_CONFIG_BYTES >> 20} MiB: not a config.json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError("model.path", path, f"not a JSON config.json ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError("model.path", path, "a config.json holds a JSON object")
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"model.path:{key}", value, "a finite number")
    return data
