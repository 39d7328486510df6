"""Transformer blocks and the decoder-only LLM graph.

The decoders' architectures are data: ``conf/model/<name>.yaml`` (``arch:``) or a Hugging Face config.json
(``model=hf``), parsed into a :class:`TransformerSpec` by models/hf.py and registered by models/zoo.py.

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

from dataclasses import dataclass, replace

from elk_dse.errors import ConfigError
from elk_dse.ir.graph import Graph, Layer, Operator, Role, Tensor
from elk_dse.models.config import ModelConfig
from elk_dse.models.ops import (
    ADD_FLOPS,
    GATE_FLOPS,
    GELU_FLOPS,
    MATMUL_FLOPS,
    NORM_FLOPS,
    RELU_FLOPS,
    SIGMOID_FLOPS,
    SILU_FLOPS,
    SOFTMAX_FLOPS,
    Dims,
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
    # --- structure of imported decoders (models/hf.py); the defaults are the zoo's original structure ---
    qkv_bias: bool = False  # biases on q/k/v only (Qwen2)
    fused_qkv: bool = False  # one qkv_proj matmul (Phi-3, Falcon, GPT-2, GPT-NeoX)
    fused_gate_up: bool = False  # one gate_up_proj matmul (Phi-3)
    parallel: int = 0  # attention and MLP in parallel on the block input: 0 no, 1 one shared norm (Falcon), 2 two
    qk_norm: bool = False  # RMSNorm over head_dim of q and k (Qwen3)
    sliding_window: int = 0  # keys a sliding-window layer attends to (0: none)
    sliding_every: int = 0  # 1: every layer slides (Mistral v0.1), 2: layers 0, 2, 4, ... (Gemma-2)
    position_offset: int = 2  # extra rows of a learned position table (OPT 2, GPT-2 0)
    moe_ffn: int = 0  # width of one routed expert (0: ffn); ffn stays the dense layers' width
    shared_ffn: int = 0  # width of the always-on shared expert MLP of an MoE layer (0: none)
    shared_gate: bool = False  # a sigmoid gate (hidden -> 1) scales the shared expert (Qwen2-MoE)
    first_dense: int = 0  # leading layers with a dense MLP before the MoE layers (DeepSeek first_k_dense_replace)
    router_bias: bool = False  # a per-expert routing bias (DeepSeek-V3 e_score_correction_bias)
    q_lora_rank: int = 0  # MLA: low-rank query (0: a full q_proj)
    kv_lora_rank: int = 0  # MLA (multi-head latent attention) when > 0: the cached latent's width
    qk_rope_dim: int = 0  # MLA: rotary part of each query/key head (head_dim is the non-rotary part)
    v_head_dim: int = 0  # MLA: value head width
    model_type: str = ""
    # issue 17q (ninth session): the q/k/v biases (qkv_bias) added by one elementwise operator after the projections
    # (ModelConfig.qkv_bias_add; attention_ops, qkv_bias_op)
    qkv_bias_add: bool = False

    def __post_init__(self) -> None:
        if self.kv_heads < 1 or self.heads % self.kv_heads:
            raise ConfigError("num_key_value_heads", self.kv_heads,
                              f"a divisor of num_attention_heads={self.heads} (>= 1)")
        if self.experts and not 1 <= self.top_k <= self.experts:
            raise ConfigError("num_experts_per_tok", self.top_k, f"1..{self.experts} (the number of experts)")
        if self.first_dense > self.num_layers:
            raise ConfigError("first_k_dense_replace", self.first_dense,
                              f"at most num_hidden_layers={self.num_layers}")

    @property
    def expert_ffn(self) -> int:
        """Width of one routed expert."""
        return self.moe_ffn or self.ffn

    def meta(self) -> tuple[tuple[str, object], ...]:
        """The architecture facts a report shows."""
        return (
            *((("model_type", self.model_type),) if self.model_type else ()),
            ("num_layers", self.num_layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("ffn", self.ffn),
            ("vocab", self.vocab),
            *((("experts", self.experts), ("top_k", self.top_k)) if self.experts else ()),
            *((("kv_lora_rank", self.kv_lora_rank),) if self.kv_lora_rank else ()),
            *((("sliding_window", self.sliding_window),) if self.sliding_window else ()),
        )


def attention_ops(
    o: Ops, spec: TransformerSpec, b: int, s: int, kv_len: int, src: str, y: str, *, decode: bool, cache: bool
) -> list[Operator]:
    """Q/K/V projections of ``src``, attention and output projection to ``y`` for B sequences of s tokens.

    ``cache``: the K/V projections' outputs are KV-cache rows written to HBM; with ``decode`` attention reads
    the cache (``kv_len`` rows) instead of the fresh K/V. Prefill attends over ``kv_len`` keys per query
    (``s``, or the sliding window when shorter).
    """
    if spec.kv_lora_rank:
        return mla_ops(o, spec, b, s, kv_len, src, y, decode=decode, cache=cache)
    t, h, d = b * s, spec.hidden, spec.head_dim
    kv_role = Role.KV_CACHE if cache else Role.ACTIVATION
    # issue 17q: with qkv_bias_add the biases are not folded into the projections but added by qkv_bias_op
    qkv_bias = spec.bias or (spec.qkv_bias and not spec.qkv_bias_add)
    # With a per-head q/k norm (Qwen3) the projections write q_raw / k_raw and the norms write q / k.
    qn, kn = ("q_raw", "k_raw") if spec.qk_norm else ("q", "k")
    k_role = Role.ACTIVATION if spec.qk_norm else kv_role
    if spec.fused_qkv:
        # One matmul writes q, k and v side by side; zero-FLOP layout ops hand its column blocks on (k and v
        # to the cache), so FLOPs, weights and cache bytes equal the unfused projections'.
        width = (spec.heads + 2 * spec.kv_heads) * d
        ops = [o.linear("qkv_proj", t, h, width, x=src, y="qkv", bias=qkv_bias)]
        for name, heads, role in ((qn, spec.heads, Role.ACTIVATION), (kn, spec.kv_heads, k_role),
                                  ("v", spec.kv_heads, kv_role)):
            ops.append(o.op(f"{name}_split", "layout", (("t", t), ("o", heads * d)),
                            (o.act("qkv", "t", "o"),), o.act(name, "t", "o", role=role), 0.0))
    else:
        ops = [
            o.linear("q_proj", t, h, spec.heads * d, x=src, y=qn, bias=qkv_bias),
            o.linear("k_proj", t, h, spec.kv_heads * d, x=src, y=kn, bias=qkv_bias, out_role=k_role),
            o.linear("v_proj", t, h, spec.kv_heads * d, x=src, y="v", bias=qkv_bias, out_role=kv_role),
        ]
    if spec.qkv_bias_add:
        ops.append(qkv_bias_op(o, spec, t, decode=decode))
    if spec.qk_norm:  # per-head RMSNorm of q and k (Qwen3): one head_dim weight each
        for name, heads, role in (("q", spec.heads, Role.ACTIVATION), ("k", spec.kv_heads, kv_role)):
            dims = (("t", t * heads), ("d", d))
            ops.append(o.op(f"{name}_norm", "norm", dims,
                            (o.act(f"{name}_raw", "t", "d"), o.weight(f"{name}_norm.weight", "d")),
                            o.act(name, "t", "d", role=role), NORM_FLOPS["rms"]))
    g, r = spec.kv_heads, spec.heads // spec.kv_heads
    if decode:
        ops += o.attention(b, g, r, d, kv_len, kv_role=Role.KV_CACHE)
    else:
        ops += o.attention(b, g, r, d, kv_len, q_len=s)
    ops.append(o.linear("o_proj", t, spec.heads * d, h, x="ctx", y=y, bias=spec.bias))
    return ops


# issue 17q (ninth session): rows of one Tensix tile; tt-metal's decode bias tensor is expanded to whole tiles of rows
TILE_ROWS = 32
BIAS_BYTES = 2.0  # bfloat16: the dtype tt-metal stores the q/k/v bias in (attention.py, ttnn.as_tensor dtype)


def qkv_bias_op(o: Ops, spec: TransformerSpec, t: int, *, decode: bool) -> Operator:
    """Issue 17q (ninth session): the q/k/v biases added by one elementwise operator over the fused q/k/v columns
    (``(heads + 2 kv_heads) x head_dim``) of ``t`` tokens, as tt-metal's tt_transformers runs a Qwen2 decoder:
    attention.py ``forward_decode`` (``# FIXME: File bug against dram-sharded matmuls with bias``): ``xqkv_fused_sharded
    = xqkv_fused_sharded + self.wqkv_bias_decode[num_tiles - 1]``, whose bias is a bfloat16 tensor in DRAM
    expanded to ``num_tiles`` x 32 rows (``Broadcasting does not seem to be supported inside execute_trace``) and
    sharded over the devices with the fused QKV columns (``ShardTensorToMesh(dim=-1)``); prefill adds one broadcast
    row (``wqkv_bias_prefill``). 1 FLOP per element. The bias weight is one ``o``-indexed tensor (the model's
    parameters) whose bytes per element are scaled by the rows the kernel reads (decode: the tile-padded tokens).
    It reads the projections' output where they leave it (the tensor ``q``, at the operator's fused width: the
    vendor's one fused QKV output in L1) and writes ``qkv``; the attention reads the projections' tensors as before,
    so the operator adds its dispatch, its bias read and its element work, nothing else (docs/parallelism.md,
    "Per-model programs")."""
    width = (spec.heads + 2 * spec.kv_heads) * spec.head_dim
    rows = TILE_ROWS * -(-t // TILE_ROWS) if decode else 1
    bias = Tensor("qkv_proj.bias", ("o",), Role.WEIGHT, BIAS_BYTES * rows, "bf16")
    return o.elementwise("qkv_bias", (("t", t), ("o", width)), ("q", bias), "qkv", ADD_FLOPS)


def mla_ops(
    o: Ops, spec: TransformerSpec, b: int, s: int, kv_len: int, src: str, y: str, *, decode: bool, cache: bool
) -> list[Operator]:
    """Multi-head latent attention (DeepSeek-V2/V3) on B sequences of s tokens.

    Per token the KV cache holds the normalised latent (``kv_lora_rank``) and one shared rotary key
    (``qk_rope_dim``): ``kv_a_proj`` (hidden -> latent) and ``kv_a_proj_rope`` (hidden -> rope) are the two
    column blocks of DeepSeek's ``kv_a_proj_with_mqa``. ``kv_b_proj`` (latent -> heads x (nope + v)) is held as
    its key block ``kv_b_proj.k`` [heads, nope, latent] and value block ``kv_b_proj.v`` [heads, latent, v].

    - decode (weight absorption, as FlashMLA / vLLM run it): each query head's non-rotary part is mapped into
      the latent space through ``kv_b_proj.k``; one fused ``attention`` operator reads the cache once,
      ``kv_len`` rows of latent + rope, and yields each head's context in latent space (scores over latent +
      rope: 2 FLOPs per point, softmax 5 per key, values over the latent: 2 per point), which
      ``kv_b_proj.v`` maps to the value heads.
    - prefill / train: the latent is expanded to per-head keys and values through ``kv_b_proj`` and attention
      is ordinary multi-head attention with head width nope + rope for scores and ``v_head_dim`` for values.
    """
    t, h, nh = b * s, spec.hidden, spec.heads
    c, rope, nope, vd = spec.kv_lora_rank, spec.qk_rope_dim, spec.head_dim, spec.v_head_dim
    qk = nope + rope
    kv_role = Role.KV_CACHE if cache else Role.ACTIVATION
    ops: list[Operator] = []
    if spec.q_lora_rank:
        ops += [
            o.linear("q_a_proj", t, h, spec.q_lora_rank, x=src, y="q_a"),
            o.norm("q_a_layernorm", (("t", t), ("h", spec.q_lora_rank)), "q_a", "q_a_norm", "rms"),
            o.linear("q_b_proj", t, spec.q_lora_rank, nh * qk, x="q_a_norm", y="q"),
        ]
    else:
        ops.append(o.linear("q_proj", t, h, nh * qk, x=src, y="q"))
    ops += [
        o.linear("kv_a_proj", t, h, c, x=src, y="kv_a"),
        o.linear("kv_a_proj_rope", t, h, rope, x=src, y="k_pe", out_role=kv_role),
    ]
    latent = (("t", t), ("c", c))
    ops.append(o.op("kv_a_layernorm", "norm", latent,
                    (o.act("kv_a", "t", "c"), o.weight("kv_a_layernorm.weight", "c")),
                    o.act("kv_c", "t", "c", role=kv_role), NORM_FLOPS["rms"]))
    if decode:
        # q_nope [b, head, nope] x W_UK [head, nope, c] -> q in latent space [b, head, c]
        ops.append(o.op("q_absorb", "matmul", (("b", b), ("n", nh), ("d", nope), ("c", c)),
                        (o.act("q", "b", "n", "d"), o.weight("kv_b_proj.k", "n", "d", "c")),
                        o.act("q_latent", "b", "n", "c"), MATMUL_FLOPS))
        w = c + rope  # one cached row: latent + rotary key
        cache_t = o.act("kv_cache", "b", "l", "w", role=Role.KV_CACHE)
        dims: Dims = (("b", b), ("n", nh), ("l", kv_len), ("w", w))
        # Per (head, key, cache element): score 2 over all w elements, value 2 over the c latent ones, softmax 5
        # per (head, key).
        per_point = MATMUL_FLOPS + MATMUL_FLOPS * c / w + SOFTMAX_FLOPS / w
        ops.append(o.op("attention", "matmul", dims, (o.act("q_latent", "b", "n", "w"), cache_t),
                        o.act("ctx_latent", "b", "n", "w"), per_point))
        ops.append(o.op("v_absorb", "matmul", (("b", b), ("n", nh), ("c", c), ("v", vd)),
                        (o.act("ctx_latent", "b", "n", "c"), o.weight("kv_b_proj.v", "n", "c", "v")),
                        o.act("ctx", "b", "n", "v"), MATMUL_FLOPS))
    else:
        ops += [
            o.op("kv_b_proj_k", "matmul", (("t", t), ("n", nh), ("c", c), ("d", nope)),
                 (o.act("kv_c", "t", "c"), o.weight("kv_b_proj.k", "n", "d", "c")), o.act("k_nope", "t", "n", "d"),
                 MATMUL_FLOPS),
            o.op("kv_b_proj_v", "matmul", (("t", t), ("n", nh), ("c", c), ("v", vd)),
                 (o.act("kv_c", "t", "c"), o.weight("kv_b_proj.v", "n", "c", "v")), o.act("v", "t", "n", "v"),
                 MATMUL_FLOPS),
        ]
        score = (("b", b), ("n", nh), ("s", s), ("s2", kv_len))
        q = o.act("q", "b", "n", "s", "d")
        k = o.act("k", "b", "n", "s2", "d")
        v = o.act("v", "b", "n", "s2", "e")
        if o.fused_attention:
            dims = (*score, ("d", qk))
            ops.append(o.op("attention", "matmul", dims, (q, k, v), o.act("ctx", "b", "n", "s", "d"),
                            MATMUL_FLOPS + (MATMUL_FLOPS * vd + SOFTMAX_FLOPS) / qk))
        else:
            ops += [
                o.op("attn_score", "matmul", (*score, ("d", qk)), (q, k), o.act("scores", "b", "n", "s", "s2"),
                     MATMUL_FLOPS),
                o.op("attn_softmax", "softmax", score, (o.act("scores", "b", "n", "s", "s2"),),
                     o.act("probs", "b", "n", "s", "s2"), SOFTMAX_FLOPS),
                o.op("attn_value", "matmul", (*score, ("e", vd)), (o.act("probs", "b", "n", "s", "s2"), v),
                     o.act("ctx", "b", "n", "s", "e"), MATMUL_FLOPS),
            ]
    ops.append(o.linear("o_proj", t, nh * vd, h, x="ctx", y=y))
    return ops


def expected_experts(experts: int, top_k: int, tokens: int) -> float:
    """Expected distinct experts that ``tokens`` tokens touch, each routed uniformly to ``top_k`` of ``experts``:
    an expert is missed by one token with probability 1 - k/E, by all T independent tokens with (1 - k/E)^T."""
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def moe_ops(o: Ops, spec: TransformerSpec, t: int, src: str, y: str, top_k: int) -> list[Operator]:
    """A mixture-of-experts SwiGLU MLP on t tokens, each routed to ``top_k`` experts (see module docstring),
    plus the always-on shared expert MLP of DeepSeek / Qwen2-MoE when ``spec.shared_ffn``."""
    h, f, e, k = spec.hidden, spec.expert_ffn, spec.experts, top_k
    pairs = t * k  # token-expert pairs: each token's row goes through k experts
    loaded = expected_experts(e, k, t)

    def expert(name: str, d_in: int, d_out: int, x: str, out: str) -> Operator:
        # The loaded experts' matrices, stacked: ``loaded`` x d_in x d_out elements, as d_in x d_out elements
        # of ``loaded`` x bpe bytes.
        w = o.weight(f"experts.{name}", "h", "o", scale=loaded)
        dims = (("t", pairs), ("h", d_in), ("o", d_out))
        return o.op(f"expert_{name}", "matmul", dims, (o.act(x, "t", "h"), w), o.act(out, "t", "o"), MATMUL_FLOPS)

    router_in = [o.act("router_logits", "t", "e")]
    if spec.router_bias:
        router_in.append(o.weight("router.bias", "e"))
    routed = "routed_out" if spec.shared_ffn else y
    ops = [
        o.linear("router", t, h, e, x=src, y="router_logits"),
        o.op("router_softmax", "softmax", (("t", t), ("e", e)), tuple(router_in),
             o.act("router_probs", "t", "e"), SOFTMAX_FLOPS),
        expert("gate_proj", h, f, src, "gate"),
        expert("up_proj", h, f, src, "up"),
        o.elementwise("swiglu", (("t", pairs), ("f", f)), ("gate", "up"), "mlp_act", ACT_FLOPS["swiglu"]),
        expert("down_proj", f, h, "mlp_act", "expert_out"),
        # y[t] = sum over the k chosen experts of router weight x expert output: a multiply-add each.
        o.op("expert_combine", "elementwise", (("t", t), ("k", k), ("h", h)),
             (o.act("expert_out", "t", "k", "h"), o.act("router_probs", "t", "k")), o.act(routed, "t", "h"), 2.0),
    ]
    if spec.shared_ffn:
        sf, hd = spec.shared_ffn, (("t", t), ("h", h))
        ops += [
            o.linear("shared_gate_proj", t, h, sf, x=src, y="shared_gate", weight="shared_experts.gate_proj.weight"),
            o.linear("shared_up_proj", t, h, sf, x=src, y="shared_up", weight="shared_experts.up_proj.weight"),
            o.elementwise("shared_swiglu", (("t", t), ("f", sf)), ("shared_gate", "shared_up"), "shared_act",
                          ACT_FLOPS["swiglu"]),
            o.linear("shared_down_proj", t, sf, h, x="shared_act", y="shared_out",
                     weight="shared_experts.down_proj.weight"),
        ]
        inputs: tuple[str | Tensor, ...] = ("routed_out", "shared_out")
        flops = ADD_FLOPS
        if spec.shared_gate:  # y = routed + sigmoid(x . w) * shared: a multiply-add per element
            ops += [
                o.linear("shared_expert_gate", t, h, 1, x=src, y="shared_gate_logit"),
                o.elementwise("shared_gate_sigmoid", (("t", t), ("o", 1)), ("shared_gate_logit",),
                              "shared_scale", SIGMOID_FLOPS),
            ]
            inputs, flops = (*inputs, o.act("shared_scale", "t")), ADD_FLOPS + GATE_FLOPS
        ops.append(o.elementwise("shared_combine", hd, inputs, y, flops))
    return ops


def mlp_ops(o: Ops, spec: TransformerSpec, t: int, src: str, y: str, top_k: int = 0, dense: bool = False
            ) -> list[Operator]:
    """The feed-forward block on t tokens: gated (gate, up, act, down), plain (fc1, act, fc2), or a mixture
    of experts when ``spec.experts`` and not ``dense`` (``top_k``: experts per token, 0 = ``spec.top_k``)."""
    if spec.experts and not dense:
        return moe_ops(o, spec, t, src, y, top_k or spec.top_k)
    h, f, ew = spec.hidden, spec.ffn, (("t", t), ("f", spec.ffn))
    if spec.mlp in ("swiglu", "geglu"):
        if spec.fused_gate_up:  # one matmul writes gate and up side by side; layout ops hand the halves on
            up = [o.linear("gate_up_proj", t, h, 2 * f, x=src, y="gate_up", bias=spec.bias)]
            up += [o.op(f"{n}_split", "layout", ew, (o.act("gate_up", "t", "f"),), o.act(n, "t", "f"), 0.0)
                   for n in ("gate", "up")]
        else:
            up = [
                o.linear("gate_proj", t, h, f, x=src, y="gate", bias=spec.bias),
                o.linear("up_proj", t, h, f, x=src, y="up", bias=spec.bias),
            ]
        return [
            *up,
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
    dense: bool = False,
) -> tuple[Operator, ...]:
    """One transformer layer on B sequences of s tokens: input ``x``, output ``x`` (pre-LN, or post-LN for
    BERT; attention and MLP side by side on the block input with ``spec.parallel``). ``kv_len``: keys each
    query attends to; ``dense``: a dense MLP even in an MoE model (DeepSeek's first layers)."""
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
    if spec.parallel:  # x + attn(norm(x)) + mlp(norm'(x)): Falcon shares one norm, GPT-NeoX has two
        mlp_in = "x_norm"
        if spec.parallel == 2:
            norm("mlp_norm", "x", "h_norm")
            mlp_in = "h_norm"
        ops += mlp_ops(o, spec, t, mlp_in, "mlp_out", top_k, dense)
        residual("attn_residual", "x", "attn_out", "h")
        residual("mlp_residual", "h", "mlp_out", "x")
        return tuple(ops)
    attn = "attn_out"
    if spec.sandwich_norm:
        norm("post_attn_norm", attn, "attn_out_norm")
        attn = "attn_out_norm"
    residual("attn_residual", "x", attn, "h")
    norm("mlp_norm", "h", "h_norm")
    ops += mlp_ops(o, spec, t, "h_norm", "mlp_out", top_k, dense)
    mlp = "mlp_out"
    if spec.sandwich_norm:
        norm("post_mlp_norm", mlp, "mlp_out_norm")
        mlp = "mlp_out_norm"
    residual("mlp_residual", "h", mlp, "x")
    return tuple(ops)


def layer_groups(spec: TransformerSpec, kv_len: int) -> list[tuple[str, int, bool, int]]:
    """The decoder's distinct layers as (layer name, keys attended, dense MLP, count), in model order.

    Layers differ when an MoE model starts with dense layers (``first_dense``: ``decoder_dense``) or when a
    sliding window caps the keys of some layers below ``kv_len`` (``decoder_sliding``: Gemma-2's even layers,
    all of Mistral v0.1's); otherwise there is one group, ``decoder``, of every layer.
    """
    window = spec.sliding_window if spec.sliding_every and 0 < spec.sliding_window < kv_len else 0
    counts: dict[tuple[bool, bool], int] = {}
    for i in range(spec.num_layers):
        dense = bool(spec.experts) and i < spec.first_dense
        sliding = bool(window) and i % spec.sliding_every == 0
        counts[(dense, sliding)] = counts.get((dense, sliding), 0) + 1
    out = []
    for (dense, sliding), count in sorted(counts.items(), key=lambda kv: (not kv[0][0], not kv[0][1])):
        name = ("decoder_dense" if dense else "decoder") + ("_sliding" if sliding else "")
        out.append((name, window if sliding else kv_len, dense, count))
    return out


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
    if cfg.split_projections:  # issue 17d (eighth session): the fused checkpoint tensors split at load
        spec = replace(spec, fused_qkv=False, fused_gate_up=False)
    if cfg.qkv_bias_add and spec.qkv_bias and not spec.bias:  # issue 17q (ninth session): a separate bias add
        spec = replace(spec, qkv_bias_add=True)
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
        tables["embed_positions"] = (spec.max_positions + spec.position_offset) * h
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
    groups = layer_groups(spec, kv_len)
    if len(groups) == 1:  # one kind of layer (every zoo model): the layer is "decoder"
        _, keys, dense, _ = groups[0]
        block = block_ops(o, spec, b, s, keys, decode=decode, cache=not train, top_k=top_k, dense=dense)
        layers = stack(embed, "decoder", block, spec.num_layers, head)
    else:
        body = tuple(Layer(name, block_ops(o, spec, b, s, keys, decode=decode, cache=not train, top_k=top_k,
                                           dense=dense), count)
                     for name, keys, dense, count in groups)
        layers = (Layer("embed", tuple(embed)), *body, Layer("head", head))
    if spec.experts:  # every expert is stored, whichever a step loads
        f = spec.expert_ffn
        moe_layers = sum(count for _, _, dense, count in groups if not dense)
        for name, size in (("gate_proj", h * f), ("up_proj", h * f), ("down_proj", f * h)):
            tables[f"experts.{name}"] = spec.experts * size * moe_layers
    params = count_params(layers, tables)
    # Stored bytes: every tensor in its format; the tables (embedding, stacked experts) in theirs.
    stored = count_param_bytes(layers, {n: (size, o.weight(n).bytes_per_element) for n, size in tables.items()})
    return make_graph(cfg, layers, params, spec.meta(), batch=b, seq_len=s, kv_len=kv_len, parameter_bytes=stored)
