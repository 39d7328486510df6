"""Encoder-only transformers: BERT-large and -base, ViT-L/16 and DiT-XL/2, one forward pass (phase ``prefill`` only).

Each graph is ``embed`` (repeat 1), ``encoder`` (repeat = num_layers) and ``head``. There is no KV cache: K
and V are on-chip activations, and the graph's ``kv_len`` is 0. ViT and DiT take their token count from the
image size and ignore ``seq_len``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from elk_dse.ir.graph import Graph, Operator, Role, Tensor
from elk_dse.models.config import ModelConfig
from elk_dse.models.hf import Arch, plain_activation
from elk_dse.models.ops import (
    ADD_FLOPS,
    SILU_FLOPS,
    TANH_FLOPS,
    Ops,
    count_params,
    make_graph,
    stack,
)
from elk_dse.models.transformer import TransformerSpec, attention_ops, block_ops, check_positions, mlp_ops

# google-bert/bert-large-uncased config.json; Devlin et al. 2019: post-LN, GELU, biases, 512 learned
# positions, 2 token types (335,141,888 params with the pooler, without the MLM head).
BERT_LARGE = TransformerSpec(24, 1024, 16, 16, 64, 4096, 30522, "gelu", "layer", bias=True, post_ln=True)
# google-bert/bert-base-uncased config.json: the same architecture at 12 layers, hidden 768, 12 heads
# (109,482,240 params with the pooler).
BERT_BASE = TransformerSpec(12, 768, 12, 12, 64, 3072, 30522, "gelu", "layer", bias=True, post_ln=True)
BERT_POSITIONS = 512
BERT_TOKEN_TYPES = 2

# ViT-L/16 at 224x224 (Dosovitskiy et al. 2021; timm vit_large_patch16_224, 304,326,632 params): pre-LN,
# GELU, biases; 196 patches of 16x16x3 plus a class token; 1000-class head on the class token.
VIT_LARGE = TransformerSpec(24, 1024, 16, 16, 64, 4096, 0, "gelu", "layer", bias=True)
VIT_IMAGE, VIT_PATCH, VIT_CHANNELS, VIT_CLASSES = 224, 16, 3, 1000

# DiT-XL/2 on 256x256 images (Peebles & Xie 2023, facebookresearch/DiT models.py, 675,129,632 params incl. the
# fixed sin-cos position table): a 32x32x4 VAE latent in 2x2 patches = 256 tokens; LayerNorm without affine
# modulated by adaLN-Zero (per-layer matmul hidden -> 6*hidden from the conditioning vector); GELU (tanh);
# output 2x2x8 values per token (noise and learned variance).
DIT_XL = TransformerSpec(28, 1152, 16, 16, 72, 4608, 0, "gelu", "plain", bias=True)
DIT_LATENT, DIT_LATENT_CH, DIT_PATCH, DIT_OUT_CH, DIT_CLASSES, DIT_FREQ = 32, 4, 2, 8, 1000, 256


def cls_select(o: Ops, b: int, h: int) -> tuple[Operator, ...]:
    """Training only: the class token of each sequence as an operator (a layout copy of b rows of x), so that
    the head's gradient flows back into the encoder. Inference reads ``cls`` straight from x's rows (no op)."""
    return (o.op("cls_select", "layout", (("t", b), ("h", h)), (o.act("x", "t", "h"),), o.act("cls", "t", "h"), 0.0),)


def bert_graph(cfg: ModelConfig, spec: TransformerSpec = BERT_LARGE, positions: int = BERT_POSITIONS,
               token_types: int = BERT_TOKEN_TYPES) -> Graph:
    """One BERT encoder forward (BERT-large unless ``spec`` says otherwise) of B sequences of ``seq_len``
    (<= ``positions``) tokens, with the pooler."""
    o, b, s = Ops.for_config(cfg), cfg.batch, cfg.seq_len
    check_positions(cfg, positions, "seq_len")
    h, t, bsh = spec.hidden, b * s, ("b", "s", "h")
    # Position rows are shared by the batch; every token uses token type 0, so one type row is read.
    pos_type = (
        o.act("tok", *bsh),
        o.weight("position_embeddings", "s", "h"),
        o.weight("token_type_embeddings", "h"),
    )
    embed = (
        o.gather("word_embeddings", (("t", t),), h, "word_embeddings", "tok"),
        o.op(
            "position_type_embeddings",
            "embedding",
            (("b", b), ("s", s), ("h", h)),
            pos_type,
            o.act("emb", *bsh),
            2 * ADD_FLOPS,
        ),
        o.norm("embed_norm", (("t", t), ("h", h)), "emb", "x", "layer"),
    )
    tables = {
        "word_embeddings": spec.vocab * h,
        "position_embeddings": positions * h,
        "token_type_embeddings": token_types * h,
    }
    head = (  # pooler: dense + tanh on each sequence's [CLS] token
        *(cls_select(o, b, h) if cfg.phase == "train" else ()),
        o.linear("pooler", b, h, h, x="cls", y="pooler_pre", bias=True),
        o.elementwise(
            "pooler_tanh", (("t", b), ("o", h)), ("pooler_pre",), "pooled", TANH_FLOPS, Role.OUTPUT
        ),
    )
    layers = stack(embed, "encoder", block_ops(o, spec, b, s, s), spec.num_layers, head)
    return make_graph(cfg, layers, count_params(layers, tables), spec.meta(), batch=b, seq_len=s, kv_len=0)


def vit_graph(cfg: ModelConfig, spec: TransformerSpec = VIT_LARGE, image: int = VIT_IMAGE, patch: int = VIT_PATCH,
              channels: int = VIT_CHANNELS, classes: int = VIT_CLASSES) -> Graph:
    """ViT classification (ViT-L/16 unless told otherwise) of B images of ``image`` x ``image`` pixels
    ((image / patch)^2 + 1 tokens each; ``seq_len`` is ignored)."""
    o, b = Ops.for_config(cfg), cfg.batch
    h, patches = spec.hidden, (image // patch) ** 2
    s = patches + 1  # + class token
    embed = (
        # The 16x16 stride-16 patch conv is a matmul over flattened, non-overlapping patches.
        o.linear(
            "patch_embed", b * patches, channels * patch**2, h, x="patches", y="patch_tok", bias=True
        ),
        o.elementwise(
            "cls_pos_embed",
            (("b", b), ("s", s), ("h", h)),
            ("patch_tok", o.weight("cls_token", "h"), o.weight("pos_embed", "s", "h")),
            "x",
            ADD_FLOPS,
        ),
    )
    # timm normalises every token; only the class token feeds the head, so only it is normalised here.
    head = (
        *(cls_select(o, b, h) if cfg.phase == "train" else ()),
        o.norm("final_norm", (("t", b), ("h", h)), "cls", "cls_norm", spec.norm),
        o.linear("classifier", b, h, classes, x="cls_norm", y="logits", bias=True, out_role=Role.OUTPUT),
    )
    layers = stack(embed, "encoder", block_ops(o, spec, b, s, s), spec.num_layers, head)
    extra = (("tokens", s), ("image_size", image), ("patch", patch), ("classes", classes))
    meta = (*spec.meta(), *extra)
    return make_graph(cfg, layers, count_params(layers, {}), meta, batch=b, seq_len=s, kv_len=0)


def _modulate(o: Ops, name: str, dims, x: str, y: str, shift: str, scale: str) -> Operator:
    """adaLN modulation ``x * (1 + scale[b]) + shift[b]``: 2 FLOPs per point (one multiply-add)."""
    per_b = tuple(o.act(n, "b", "h") for n in (shift, scale))
    return o.elementwise(name, dims, (x, *per_b), y, 2.0)


def _dit_block(o: Ops, spec: TransformerSpec, b: int, s: int) -> tuple[Operator, ...]:
    """One DiT block with adaLN-Zero: input and output ``x`` [b, s, h], conditioning ``c`` [b, h]."""
    h = spec.hidden
    bsh, bh = (("b", b), ("s", s), ("h", h)), (("t", b), ("h", h))
    gate = 2.0  # x + gate[b] * y: one multiply-add per point
    return (
        o.elementwise("ada_silu", bh, ("c",), "c_act", SILU_FLOPS),
        o.linear("ada_modulation", b, h, 6 * h, x="c_act", y="modulation", bias=True),
        o.norm("attn_norm", bsh, "x", "x_norm", spec.norm),
        _modulate(o, "attn_modulate", bsh, "x_norm", "x_mod", "shift_msa", "scale_msa"),
        *attention_ops(o, spec, b, s, s, "x_mod", "attn_out", decode=False, cache=False),
        o.elementwise("attn_gate_residual", bsh, ("x", "attn_out", o.act("gate_msa", "b", "h")), "h", gate),
        o.norm("mlp_norm", bsh, "h", "h_norm", spec.norm),
        _modulate(o, "mlp_modulate", bsh, "h_norm", "h_mod", "shift_mlp", "scale_mlp"),
        *mlp_ops(o, spec, b * s, "h_mod", "mlp_out"),
        o.elementwise("mlp_gate_residual", bsh, ("h", "mlp_out", o.act("gate_mlp", "b", "h")), "x", gate),
    )


def dit_graph(cfg: ModelConfig, spec: TransformerSpec = DIT_XL, latent: int = DIT_LATENT,
              latent_ch: int = DIT_LATENT_CH, patch: int = DIT_PATCH, out_ch: int = DIT_OUT_CH,
              classes: int = DIT_CLASSES) -> Graph:
    """One DiT denoising step (DiT-XL/2 of 256x256 images unless told otherwise: 256 latent tokens each;
    ``seq_len`` is ignored), conditioned on timestep and class."""
    o, b = Ops.for_config(cfg), cfg.batch
    h, s = spec.hidden, (latent // patch) ** 2
    bsh, bh = (("b", b), ("s", s), ("h", h)), (("t", b), ("h", h))
    embed = (
        o.linear(
            "patch_embed",
            b * s,
            latent_ch * patch**2,
            h,
            x="latent_patches",
            y="patch_tok",
            bias=True,
        ),
        o.elementwise("pos_embed", bsh, ("patch_tok", o.weight("pos_embed", "s", "h")), "x", ADD_FLOPS),
        # Timestep: sinusoidal features (a multiply and a sin/cos per feature), then a 2-layer SiLU MLP.
        o.elementwise(
            "t_freq",
            (("t", b), ("f", DIT_FREQ)),
            (Tensor("timesteps", ("t",), Role.ACTIVATION, 4),),
            "t_freq",
            2.0,
        ),
        o.linear("t_mlp1", b, DIT_FREQ, h, x="t_freq", y="t_hidden", bias=True),
        o.elementwise("t_silu", bh, ("t_hidden",), "t_act", SILU_FLOPS),
        o.linear("t_mlp2", b, h, h, x="t_act", y="t_emb", bias=True),
        o.gather("y_embed", (("t", b),), h, "y_embedder", "y_emb"),
        o.elementwise("condition", bh, ("t_emb", "y_emb"), "c", ADD_FLOPS),
    )
    out = patch**2 * out_ch
    head = (
        o.elementwise("final_silu", bh, ("c",), "c_act", SILU_FLOPS),
        o.linear("final_modulation", b, h, 2 * h, x="c_act", y="final_mod", bias=True),
        o.norm("final_norm", bsh, "x", "x_norm", spec.norm),
        _modulate(o, "final_modulate", bsh, "x_norm", "x_mod", "shift_final", "scale_final"),
        o.linear("final_linear", b * s, h, out, x="x_mod", y="out_patches", bias=True, out_role=Role.OUTPUT),
    )
    layers = stack(embed, "encoder", _dit_block(o, spec, b, s), spec.num_layers, head)
    tables = {"y_embedder": (classes + 1) * h}  # + the null class of classifier-free guidance
    meta = (*spec.meta(), ("tokens", s), ("image_size", latent * 8), ("patch", patch))
    return make_graph(cfg, layers, count_params(layers, tables), meta, batch=b, seq_len=s, kv_len=0)


def _classes(a: Arch) -> int:
    """Classes of a classification head: len(id2label) as in transformers, else num_labels (default 2)."""
    labels = a.data.get("id2label")
    return len(labels) if labels else a.integer("num_labels", 2)


def bert_arch(arch: Mapping[str, Any], cfg: ModelConfig) -> Graph:
    """A BERT encoder from Hugging Face ``bert`` config.json fields (post-LN, biases, learned positions and
    token types, pooler)."""
    a = Arch(arch, "model.arch", "bert")
    hidden, heads = a.integer("hidden_size"), a.integer("num_attention_heads")
    spec = TransformerSpec(a.integer("num_hidden_layers"), hidden, heads, heads, hidden // heads,
                           a.integer("intermediate_size"), a.integer("vocab_size"), plain_activation(a, "hidden_act", "gelu"),
                           "layer", bias=True, post_ln=True)
    return bert_graph(cfg, spec, a.integer("max_position_embeddings", 512), a.integer("type_vocab_size", 2))


def vit_arch(arch: Mapping[str, Any], cfg: ModelConfig) -> Graph:
    """A ViT classifier from Hugging Face ``vit`` config.json fields (pre-LN, biases, class token)."""
    a = Arch(arch, "model.arch", "vit")
    hidden, heads = a.integer("hidden_size"), a.integer("num_attention_heads")
    spec = TransformerSpec(a.integer("num_hidden_layers"), hidden, heads, heads, hidden // heads,
                           a.integer("intermediate_size"), 0, plain_activation(a, "hidden_act", "gelu"), "layer", bias=True)
    image, patch = a.integer("image_size", 224), a.integer("patch_size", 16)
    if image % patch:
        raise a.reject("patch_size", patch, f"a divisor of image_size={image}")
    return vit_graph(cfg, spec, image, patch, a.integer("num_channels", 3), _classes(a))


def dit_arch(arch: Mapping[str, Any], cfg: ModelConfig) -> Graph:
    """A DiT from diffusers ``DiTTransformer2DModel`` config fields (model_type ``dit`` here: diffusers
    configs name the class, not a type): adaLN-Zero blocks, GELU, 4x MLP."""
    a = Arch(arch, "model.arch", "dit")
    heads, head_dim = a.integer("num_attention_heads"), a.integer("attention_head_dim")
    hidden = heads * head_dim
    spec = TransformerSpec(a.integer("num_layers"), hidden, heads, heads, head_dim, 4 * hidden, 0, "gelu", "plain",
                           bias=True)
    latent, patch = a.integer("sample_size"), a.integer("patch_size")
    if latent % patch:
        raise a.reject("patch_size", patch, f"a divisor of sample_size={latent}")
    return dit_graph(cfg, spec, latent, a.integer("in_channels"), patch, a.integer("out_channels"),
                     a.integer("num_embeds_ada_norm"))


ENCODER_TYPES: dict[str, tuple[Callable[[Mapping[str, Any], ModelConfig], Graph], str]] = {
    "bert": (bert_arch, "BERT encoder (+ pooler)"),
    "vit": (vit_arch, "ViT image classification"),
    "dit": (dit_arch, "DiT class-conditional denoising step"),
}
