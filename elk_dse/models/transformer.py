"""Transformer blocks and the decoder-only LLMs (Llama-2, OPT, Gemma-2).

A decoder graph is three layers: ``embed`` (repeat 1), ``decoder`` (repeat = num_layers; op names carry no
layer index, so the block compiles once) and ``head`` (final norm + LM head).

- decode: one step of B sequences, B tokens. Attention reads K and V caches of ``kv_len`` rows (role
  KV_CACHE, the new token's row included); the K/V projections' outputs are the new rows, role KV_CACHE
  (appended to HBM). The LM head computes B rows of logits.
- prefill: B sequences of S tokens, B*S tokens. Attention is S x S, counted in full (no causal halving: dense
  kernels compute the masked half too). The K/V projections' outputs (role KV_CACHE) are written to HBM;
  attention reads K and V as on-chip activations. Only the last token of each sequence gets logits.

Mixture of experts (Mixtral): the MLP is a router (linear hidden -> experts, softmax with the top-k choice
folded in, 5 FLOPs per logit) and ``top_k`` SwiGLU experts per token, whose outputs are combined with the
router weights (a multiply-add per element and expert). The experts' matmuls run over the B*top_k
token-expert pairs (exact FLOPs); their weight tensors hold the *expected number of distinct experts* the
step touches, E * (1 - (1 - k/E)^T) for T tokens routed uniformly and independently (each token picks k of
E), times one expert's matrix: decode at batch 1 reads exactly k experts per layer, large batches approach
all E. That count is folded into the weight tensor's bytes per element, so the planner sees the stacked
weights of the loaded experts as one matrix (a grouped GEMM).

Rotary embeddings (Llama, Gemma: ~3 FLOPs per q/k element, < 0.1% of a layer) are folded into the
projections and not modelled separately; so are Gemma-2's logit soft-capping and embedding scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

from elk_dse.errors import ConfigError
from elk_dse.ir.graph import Graph, Operator, Role
from elk_dse.models.config import ModelConfig
from elk_dse.models.ops import (
    ADD_FLOPS,
    GATE_FLOPS,
    GELU_FLOPS,
    MATMUL_FLOPS,
    RELU_FLOPS,
    SILU_FLOPS,
    SOFTMAX_FLOPS,
    Builder,
    Ops,
    count_param_bytes,
    count_params,
    make_graph,
    stack,
)

ACT_FLOPS = {
    "relu": RELU_FLOPS,
    "gelu": GELU_FLOPS,
    "swiglu": SILU_FLOPS + GATE_FLOPS,
    "geglu": GELU_FLOPS + GATE_FLOPS,
}


@dataclass(frozen=True)
class TransformerSpec:
    """Architecture of a transformer (sizes in elements).

    ``mlp``: swiglu / geglu (gate, up, down) or relu / gelu (fc1, fc2); ``norm``: rms or layer (or plain:
    LayerNorm without affine, DiT); ``bias``: every projection has a bias; ``tied``: the LM head reuses the
    embedding table; ``max_positions``: rows of a learned positional embedding (0: none / rotary);
    ``sandwich_norm``: Gemma-2's extra norms on the attention and MLP outputs; ``post_ln``: BERT's norm after
    each residual add instead of before each sub-block; ``experts`` / ``top_k``: a mixture-of-experts MLP
    with ``experts`` SwiGLU experts of width ``ffn``, each token routed to ``top_k`` (0: a dense MLP).
    """

    num_layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    mlp: str
    norm: str
    bias: bool = False
    tied: bool = False
    max_positions: int = 0
    sandwich_norm: bool = False
    post_ln: bool = False
    experts: int = 0
    top_k: int = 0

    def meta(self) -> tuple[tuple[str, object], ...]:
        """The architecture facts a report shows."""
        return (
            ("num_layers", self.num_layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("ffn", self.ffn),
            ("vocab", self.vocab),
            *((("experts", self.experts), ("top_k", self.top_k)) if self.experts else ()),
        )


def attention_ops(
    o: Ops, spec: TransformerSpec, b: int, s: int, kv_len: int, src: str, y: str, *, decode: bool, cache: bool
) -> list[Operator]:
    """Q/K/V projections of ``src``, attention and output projection to ``y`` for B sequences of s tokens.

    ``cache``: the K/V projections' outputs are KV-cache rows written to HBM; with ``decode`` attention reads
    the cache (``kv_len`` rows) instead of the fresh K/V.
    """
    t, h, d = b * s, spec.hidden, spec.head_dim
    kv_role = Role.KV_CACHE if cache else Role.ACTIVATION
    ops = [
        o.linear("q_proj", t, h, spec.heads * d, x=src, y="q", bias=spec.bias),
        o.linear("k_proj", t, h, spec.kv_heads * d, x=src, y="k", bias=spec.bias, out_role=kv_role),
        o.linear("v_proj", t, h, spec.kv_heads * d, x=src, y="v", bias=spec.bias, out_role=kv_role),
    ]
    g, r = spec.kv_heads, spec.heads // spec.kv_heads
    if decode:
        ops += o.attention(b, g, r, d, kv_len, kv_role=Role.KV_CACHE)
    else:
        ops += o.attention(b, g, r, d, s, q_len=s)
    ops.append(o.linear("o_proj", t, spec.heads * d, h, x="ctx", y=y, bias=spec.bias))
    return ops


def expected_experts(experts: int, top_k: int, tokens: int) -> float:
    """Expected distinct experts that ``tokens`` tokens touch, each routed uniformly to ``top_k`` of ``experts``:
    an expert is missed by one token with probability 1 - k/E, by all T independent tokens with (1 - k/E)^T."""
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def moe_ops(o: Ops, spec: TransformerSpec, t: int, src: str, y: str, top_k: int) -> list[Operator]:
    """A mixture-of-experts SwiGLU MLP on t tokens, each routed to ``top_k`` experts (see module docstring)."""
    h, f, e, k = spec.hidden, spec.ffn, spec.experts, top_k
    pairs = t * k  # token-expert pairs: each token's row goes through k experts
    loaded = expected_experts(e, k, t)

    def expert(name: str, d_in: int, d_out: int, x: str, out: str) -> Operator:
        # The loaded experts' matrices, stacked: ``loaded`` x d_in x d_out elements, as d_in x d_out elements
        # of ``loaded`` x bpe bytes.
        w = o.weight(f"experts.{name}", "h", "o", scale=loaded)
        dims = (("t", pairs), ("h", d_in), ("o", d_out))
        return o.op(f"expert_{name}", "matmul", dims, (o.act(x, "t", "h"), w), o.act(out, "t", "o"), MATMUL_FLOPS)

    return [
        o.linear("router", t, h, e, x=src, y="router_logits"),
        o.op("router_softmax", "softmax", (("t", t), ("e", e)), (o.act("router_logits", "t", "e"),),
             o.act("router_probs", "t", "e"), SOFTMAX_FLOPS),
        expert("gate_proj", h, f, src, "gate"),
        expert("up_proj", h, f, src, "up"),
        o.elementwise("swiglu", (("t", pairs), ("f", f)), ("gate", "up"), "mlp_act", ACT_FLOPS["swiglu"]),
        expert("down_proj", f, h, "mlp_act", "expert_out"),
        # y[t] = sum over the k chosen experts of router weight x expert output: a multiply-add each.
        o.op("expert_combine", "elementwise", (("t", t), ("k", k), ("h", h)),
             (o.act("expert_out", "t", "k", "h"), o.act("router_probs", "t", "k")), o.act(y, "t", "h"), 2.0),
    ]


def mlp_ops(o: Ops, spec: TransformerSpec, t: int, src: str, y: str, top_k: int = 0) -> list[Operator]:
    """The feed-forward block on t tokens: gated (gate, up, act, down), plain (fc1, act, fc2), or a mixture
    of experts when ``spec.experts`` (``top_k``: experts per token, 0 = ``spec.top_k``)."""
    if spec.experts:
        return moe_ops(o, spec, t, src, y, top_k or spec.top_k)
    h, f, ew = spec.hidden, spec.ffn, (("t", t), ("f", spec.ffn))
    if spec.mlp in ("swiglu", "geglu"):
        return [
            o.linear("gate_proj", t, h, f, x=src, y="gate", bias=spec.bias),
            o.linear("up_proj", t, h, f, x=src, y="up", bias=spec.bias),
            o.elementwise(f"{spec.mlp}", ew, ("gate", "up"), "mlp_act", ACT_FLOPS[spec.mlp]),
            o.linear("down_proj", t, f, h, x="mlp_act", y=y, bias=spec.bias),
        ]
    return [
        o.linear("fc1", t, h, f, x=src, y="fc1", bias=spec.bias),
        o.elementwise(spec.mlp, ew, ("fc1",), "mlp_act", ACT_FLOPS[spec.mlp]),
        o.linear("fc2", t, f, h, x="mlp_act", y=y, bias=spec.bias),
    ]


def block_ops(
    o: Ops,
    spec: TransformerSpec,
    b: int,
    s: int,
    kv_len: int,
    *,
    decode: bool = False,
    cache: bool = False,
    top_k: int = 0,
) -> tuple[Operator, ...]:
    """One transformer layer on B sequences of s tokens: input ``x``, output ``x`` (pre-LN, or post-LN for
    BERT)."""
    t, hd = b * s, (("t", b * s), ("h", spec.hidden))
    ops: list[Operator] = []

    def residual(name: str, a: str, c: str, y: str) -> None:
        ops.append(o.elementwise(name, hd, (a, c), y, ADD_FLOPS))

    def norm(name: str, x: str, y: str) -> None:
        ops.append(o.norm(name, hd, x, y, spec.norm))

    if spec.post_ln:
        ops += attention_ops(o, spec, b, s, kv_len, "x", "attn_out", decode=decode, cache=cache)
        residual("attn_residual", "x", "attn_out", "h")
        norm("attn_norm", "h", "h_norm")
        ops += mlp_ops(o, spec, t, "h_norm", "mlp_out")
        residual("mlp_residual", "h_norm", "mlp_out", "h2")
        norm("mlp_norm", "h2", "x")
        return tuple(ops)
    norm("attn_norm", "x", "x_norm")
    ops += attention_ops(o, spec, b, s, kv_len, "x_norm", "attn_out", decode=decode, cache=cache)
    attn = "attn_out"
    if spec.sandwich_norm:
        norm("post_attn_norm", attn, "attn_out_norm")
        attn = "attn_out_norm"
    residual("attn_residual", "x", attn, "h")
    norm("mlp_norm", "h", "h_norm")
    ops += mlp_ops(o, spec, t, "h_norm", "mlp_out", top_k)
    mlp = "mlp_out"
    if spec.sandwich_norm:
        norm("post_mlp_norm", mlp, "mlp_out_norm")
        mlp = "mlp_out_norm"
    residual("mlp_residual", "h", mlp, "x")
    return tuple(ops)


def check_positions(cfg: ModelConfig, limit: int, *fields: str) -> None:
    """A learned positional embedding has ``limit`` rows: longer sequences do not exist for the model."""
    for name in fields:
        value = getattr(cfg, name)
        if limit and value > limit:
            allowed = f"must be <= {limit} for {cfg.name} (learned positions)"
            raise ConfigError(f"model.{name}", value, allowed)


def decoder_graph(spec: TransformerSpec, cfg: ModelConfig) -> Graph:
    """One decode step (B tokens, KV length ``kv_len``) or one prefill (B x ``seq_len`` tokens) of a decoder
    LLM; see the module docstring for what each phase reads and writes."""
    decode, train = cfg.phase == "decode", cfg.phase == "train"
    # Decoders may run past their learned position table (the Elk study runs OPT-30B at KV 4096): the shapes
    # are what a performance study needs; the table keeps its published size in parameter_bytes.
    o, b, h = Ops.for_config(cfg), cfg.batch, spec.hidden
    s = 1 if decode else cfg.seq_len
    kv_len = cfg.kv_len if decode else cfg.seq_len
    tok = "tok" if spec.max_positions else "x"
    embed = [o.gather("embed_tokens", (("t", b * s),), h, "embed_tokens", tok)]
    tables = {"embed_tokens": spec.vocab * h}
    if spec.max_positions:
        # OPT: one learned row per position, shared by the batch (decode reads the single row of the new
        # position). The table has 2 extra rows (HF OPTLearnedPositionalEmbedding offset).
        dims = (("b", b), ("s", s), ("h", h))
        pos = o.weight("embed_positions", "s", "h")
        embed.append(
            o.op(
                "embed_positions",
                "embedding",
                dims,
                (o.act("tok", "b", "s", "h"), pos),
                o.act("x", "b", "s", "h"),
                ADD_FLOPS,
            )
        )
        tables["embed_positions"] = (spec.max_positions + 2) * h
    # The head sees one token per sequence: the decoded token, or the last prompt token in prefill; in
    # training every token predicts its next one.
    head_t = b * s if train else b
    head = (
        o.norm("final_norm", (("t", head_t), ("h", h)), "x", "x_norm", spec.norm),
        o.linear(
            "lm_head",
            head_t,
            h,
            spec.vocab,
            x="x_norm",
            y="logits",
            out_role=Role.OUTPUT,
            weight="embed_tokens" if spec.tied else None,
        ),
    )
    top_k = cfg.active_experts or spec.top_k
    if cfg.active_experts and not spec.experts:
        raise ConfigError("model.active_experts", cfg.active_experts, f"{cfg.name} has no experts (use 0)")
    if top_k > spec.experts:
        raise ConfigError("model.active_experts", cfg.active_experts, f"at most {spec.experts} for {cfg.name}")
    block = block_ops(o, spec, b, s, kv_len, decode=decode, cache=not train, top_k=top_k)
    layers = stack(embed, "decoder", block, spec.num_layers, head)
    if spec.experts:  # every expert is stored, whichever a step loads
        for name, size in (("gate_proj", h * spec.ffn), ("up_proj", h * spec.ffn), ("down_proj", spec.ffn * h)):
            tables[f"experts.{name}"] = spec.experts * size * spec.num_layers
    params = count_params(layers, tables)
    # Stored bytes: every tensor in its format; the tables (embedding, stacked experts) in theirs.
    stored = count_param_bytes(layers, {n: (size, o.weight(n).bytes_per_element) for n, size in tables.items()})
    return make_graph(cfg, layers, params, spec.meta(), batch=b, seq_len=s, kv_len=kv_len, parameter_bytes=stored)


# Published configurations (Hugging Face config.json of each checkpoint).
DECODER_SPECS: dict[str, TransformerSpec] = {
    # meta-llama/Llama-2-7b-hf config.json; Touvron et al. 2023, "Llama 2" (6,738,415,616 params).
    "llama2_7b": TransformerSpec(32, 4096, 32, 32, 128, 11008, 32000, "swiglu", "rms"),
    # meta-llama/Llama-2-13b-hf config.json (13,015,864,320 params).
    "llama2_13b": TransformerSpec(40, 5120, 40, 40, 128, 13824, 32000, "swiglu", "rms"),
    # meta-llama/Llama-2-70b-hf config.json: GQA with 8 KV heads (68,976,648,192 params).
    "llama2_70b": TransformerSpec(80, 8192, 64, 8, 128, 28672, 32000, "swiglu", "rms"),
    # facebook/opt-30b config.json; Zhang et al. 2022, "OPT". Pre-LN, ReLU, biases everywhere, learned
    # positions (2048 + 2 offset rows); the HF checkpoint ties lm_head to embed_tokens.
    "opt_30b": TransformerSpec(
        48, 7168, 56, 56, 128, 28672, 50272, "relu", "layer", bias=True, tied=True, max_positions=2048
    ),
    # google/gemma-2-27b config.json; Gemma Team 2024, "Gemma 2". GeGLU (gelu_pytorch_tanh), tied embeddings,
    # RMSNorm before and after each sub-block. Every other layer uses a 4096-token sliding window in the real
    # model; all layers are modelled as global attention (identical layers, and equal up to kv_len 4096).
    "gemma2_27b": TransformerSpec(
        46, 4608, 32, 16, 128, 36864, 256000, "geglu", "rms", tied=True, sandwich_norm=True
    ),
    # meta-llama/Llama-3.1-8B config.json: GQA with 8 KV heads, 128,256-token vocabulary, untied LM head
    # (8,030,261,248 params).
    "llama3_1_8b": TransformerSpec(32, 4096, 32, 8, 128, 14336, 128256, "swiglu", "rms"),
    # meta-llama/Llama-3.1-70B config.json (70,553,706,496 params).
    "llama3_1_70b": TransformerSpec(80, 8192, 64, 8, 128, 28672, 128256, "swiglu", "rms"),
    # meta-llama/Llama-3.2-1B config.json: head_dim 64, tied embeddings (1,235,814,400 params).
    "llama3_2_1b": TransformerSpec(16, 2048, 32, 8, 64, 8192, 128256, "swiglu", "rms", tied=True),
    # meta-llama/Llama-3.2-3B config.json: 24 heads of 128, tied embeddings (3,212,749,824 params).
    "llama3_2_3b": TransformerSpec(28, 3072, 24, 8, 128, 8192, 128256, "swiglu", "rms", tied=True),
    # mistralai/Mistral-7B-Instruct-v0.3 config.json (the checkpoint tt-metal's tt_transformers runs):
    # GQA with 8 KV heads, 32,768-token vocabulary (7,248,023,552 params). Its sliding window is off (null).
    "mistral_7b": TransformerSpec(32, 4096, 32, 8, 128, 14336, 32768, "swiglu", "rms"),
    # mistralai/Mixtral-8x7B-v0.1 config.json; Jiang et al. 2024, "Mixtral of Experts": 8 SwiGLU experts per
    # layer, 2 per token, GQA with 8 KV heads (46,702,792,704 params).
    "mixtral_8x7b": TransformerSpec(32, 4096, 32, 8, 128, 14336, 32000, "swiglu", "rms", experts=8, top_k=2),
}


def _decoder_builder(spec: TransformerSpec) -> Builder:
    return Builder(lambda cfg: decoder_graph(spec, cfg), ("decode", "prefill", "train"), "decoder-only LLM")


DECODERS: dict[str, Builder] = {name: _decoder_builder(spec) for name, spec in DECODER_SPECS.items()}
