"""The workload selection: which model, which phase and how big a batch/sequence, as a validated record.

A config file names the model and sizes (``conf/model/<name>.yaml``); the CLI overrides them as
``model.batch=32``. Sizes are in tokens (or images), element sizes come from ``dtype``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from elk_dse.errors import ConfigError
from elk_dse.ir.formats import FORMAT_BITS, format_bytes
from elk_dse.schema import at_least, build

# Bytes per element of each numeric format (ir/formats.py: fractional for block floating point).
DTYPE_BYTES: dict[str, float] = {name: format_bytes(name) for name in FORMAT_BITS}
PHASES = ("decode", "prefill", "train")
UNSUPPORTED = ("error", "passthrough")


@dataclass(frozen=True)
class TensorFormats:
    """Numeric format per tensor class; "" inherits: ``weights``, ``kv_cache`` and ``activations`` from
    ``model.dtype``, ``mlp_weights`` (MLP / expert matrices) and ``attention_weights`` (Q/K/V/O projections)
    from ``weights`` (which also covers the LM head, embeddings and norms). E.g. Tenstorrent's Llama
    "performance" recipe: mlp_weights=bfp4, attention_weights=bfp8, kv_cache=bfp8, activations=bf16."""

    weights: str = ""
    mlp_weights: str = ""
    attention_weights: str = ""
    kv_cache: str = ""
    activations: str = ""

    def __post_init__(self) -> None:
        for name in ("weights", "mlp_weights", "attention_weights", "kv_cache", "activations"):
            value = getattr(self, name)
            if value and value not in FORMAT_BITS:
                raise ConfigError(name, value, "one of " + ", ".join(FORMAT_BITS) + " (or empty: inherit)")

    def resolved(self, dtype: str) -> dict[str, str]:
        """Every class's format with the inheritance applied."""
        weights = self.weights or dtype
        return {"weights": weights, "mlp_weights": self.mlp_weights or weights,
                "attention_weights": self.attention_weights or weights, "kv_cache": self.kv_cache or dtype,
                "activations": self.activations or dtype}


@dataclass(frozen=True)
class ModelConfig:
    """Which workload to build.

    ``phase``: ``decode`` = one generation step of ``batch`` sequences, each attending over ``kv_len`` cached
    tokens (the new token included); ``prefill`` = one forward pass over ``batch`` sequences of ``seq_len``
    tokens (encoders and CNNs only have this phase). ``seq_len`` is the prompt length in tokens (encoders:
    tokens per sequence; ViT/DiT/ResNet derive their tokens from the image size and ignore it); ``train`` = one
    training step over the prefill's shapes (forward, loss, backward, Adam update; models/training.py), with
    ``recompute`` re-running each repeated block's forward before its backward instead of keeping its
    activations. ``fused_attention``: attention as one FlashAttention-style operator whose scores never leave
    the chip (decode and prefill; a training step's backward of it is not modelled).
    ``dtype`` sets the bytes per element (see :data:`DTYPE_BYTES`); ``formats`` overrides it per tensor class
    (:class:`TensorFormats`; the zoo's transformers honour it, other builders use ``dtype``).
    ``active_experts``: experts each token is routed to in a mixture-of-experts model (0 = the model's own
    top-k, e.g. 2 for Mixtral; other models reject a non-zero value).
    ``path``: the ONNX file of ``name=onnx`` (its symbolic dims named like batch / seq are bound to ``batch``
    and ``seq_len``); ``unsupported``: what an ONNX op without a model does — ``error`` (stop, naming the op
    type and node) or ``passthrough`` (count it as an element-wise op over its output, 1 FLOP per element).
    ``weight_inputs``: which ONNX graph inputs are weights (preloadable, read once) rather than activations:
    ``auto`` (inputs with only static dims consumed only as a matmul's or conv's weight operand), ``none``, or a
    comma-separated list of input names.
    ``arch``: Hugging Face config.json fields of a decoder (models/hf.py): the whole architecture of a zoo
    decoder (its conf/model file), or, for ``name=hf``, fields overriding those read from ``path`` (null: from
    the file). Stored as sorted (field, value) pairs so the record stays hashable.
    ``split_projections`` (issue 17d, eighth session): a decoder's fused ``qkv_proj`` / ``gate_up_proj`` (Phi-3,
    Falcon) built as the separate q/k/v and gate/up projections (the same FLOPs and weight bytes), as a runtime
    that splits the fused checkpoint tensors when it loads them runs them; the stack sets it
    (``StackProfile.split_fused_projections``, evaluate.stack_model).
    ``qkv_bias_add`` (issue 17q, ninth session): a decoder with q/k/v biases only (Qwen2) adds them in a separate
    elementwise operator after the projections (one per layer, over the fused q/k/v columns; decode reads a bias
    tensor expanded to the tile-padded rows) instead of folding them into the matmuls, as a runtime whose matmul
    kernel takes no bias runs them (tt-metal's tt_transformers); the stack sets it
    (``StackProfile.separate_qkv_bias``, evaluate.stack_model).
    """

    name: str
    phase: str = "decode"
    batch: int = 1
    seq_len: int = 2048
    kv_len: int = 2048
    dtype: str = "fp16"
    active_experts: int = 0
    recompute: bool = False
    fused_attention: bool = False
    path: str = ""
    unsupported: str = "error"
    weight_inputs: str = "auto"
    formats: TensorFormats = field(default_factory=TensorFormats)
    arch: Any = ()
    split_projections: bool = False  # issue 17d, eighth session (class doc)
    qkv_bias_add: bool = False  # issue 17q, ninth session (class doc)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", freeze_arch(self.arch))
        if self.phase not in PHASES:
            raise ConfigError("phase", self.phase, "one of " + ", ".join(PHASES))
        at_least("batch", self.batch, 1)
        at_least("seq_len", self.seq_len, 1, "tokens")
        at_least("kv_len", self.kv_len, 1, "tokens")
        if self.dtype not in DTYPE_BYTES:
            raise ConfigError("dtype", self.dtype, "one of " + ", ".join(DTYPE_BYTES))
        at_least("active_experts", self.active_experts, 0)
        if self.fused_attention and self.phase == "train":
            raise ConfigError("fused_attention", True, "fused attention is modelled for decode and prefill only")
        if self.unsupported not in UNSUPPORTED:
            raise ConfigError("unsupported", self.unsupported, "one of " + ", ".join(UNSUPPORTED))

    @property
    def bytes_per_element(self) -> float:
        """Bytes per element of ``dtype``."""
        return DTYPE_BYTES[self.dtype]

    @property
    def tensor_formats(self) -> dict[str, str]:
        """The format of each tensor class (``formats`` with inheritance from ``dtype`` applied)."""
        return self.formats.resolved(self.dtype)


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def freeze_arch(arch: Any) -> tuple[tuple[str, Any], ...]:
    """``model.arch`` as sorted (field, value) pairs, null fields dropped (mappings and lists inside frozen)."""
    if arch is None:
        return ()
    if isinstance(arch, Mapping):
        items = list(arch.items())
    elif isinstance(arch, tuple) and all(isinstance(i, tuple) and len(i) == 2 for i in arch):
        items = list(arch)
    else:
        raise ConfigError("arch", arch, "a mapping of Hugging Face config.json fields (e.g. num_hidden_layers: 4)")
    return tuple(sorted((str(k), _frozen(v)) for k, v in items if v is not None))


def model_config_from_dict(data: Any, path: str = "model") -> ModelConfig:
    """Build a :class:`ModelConfig` from a mapping (parsed YAML), rejecting unknown keys."""
    return build(ModelConfig, data, path)
