"""Shared pieces of the model builders: operator factories, the registry entry and parameter counting.

FLOPs per iteration point, counting a multiply-add as 2 and a transcendental (exp, tanh, rsqrt) as 1:

- matmul / conv: 2 (one multiply-accumulate per point).
- residual add: 1; ReLU: 1; tanh: 1; gating multiply of a GLU: 1.
- SiLU ``x * sigmoid(x)``: 4 (exp, +1, reciprocal, x *); sigmoid alone: 3.
- GELU (tanh form, also used for the erf form): 8 (x^3: 2, FMA with 0.044715: 2, * sqrt(2/pi): 1, tanh: 1,
  +1: 1, * x/2: 1).
- softmax: 5 (max, subtract, exp, sum, divide); the 1/sqrt(head_dim) scale is folded into it.
- RMSNorm: 4 (square, sum, * rsqrt, * gamma); LayerNorm: 7 (sum, square-sum as FMA: 2, subtract,
  * rsqrt, * gamma, + beta); LayerNorm without affine (DiT): 5.

Biases are fused into the matmul epilogue: their bytes count as weights, their ``t*o`` adds are not counted
(under 1/d_in of the matmul's FLOPs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from elk_dse.ir.formats import format_bytes
from elk_dse.ir.graph import Axis, Graph, Layer, Operator, Role, Tensor
from elk_dse.models.config import ModelConfig

MATMUL_FLOPS = 2.0
ADD_FLOPS = 1.0
RELU_FLOPS = 1.0
TANH_FLOPS = 1.0
GATE_FLOPS = 1.0
SILU_FLOPS = 4.0
SIGMOID_FLOPS = SILU_FLOPS - GATE_FLOPS  # the sigmoid without the final multiply
GELU_FLOPS = 8.0
SOFTMAX_FLOPS = 5.0
NORM_FLOPS = {"rms": 4.0, "layer": 7.0, "plain": 5.0}
NORM_WEIGHTS = {"rms": ("weight",), "layer": ("weight", "bias"), "plain": ()}
ID_BYTES = 4  # token / class ids are int32 whatever the model dtype

Dims = Sequence[tuple[str, int]]

# Weight tensors by class (their name before the first dot): the MLP's and experts' matrices, and the
# attention projections. Everything else (embeddings, norms, LM head, pooler) is class ``weights``.
MLP_WEIGHTS = frozenset({"gate_proj", "up_proj", "down_proj", "fc1", "fc2", "experts",
                         # imported decoders (models/hf.py): fused gate/up, shared experts
                         "gate_up_proj", "shared_experts", "shared_expert_gate"})
ATTENTION_WEIGHTS = frozenset({"q_proj", "k_proj", "v_proj", "o_proj",
                               # imported decoders: fused qkv, multi-head latent attention's projections
                               "qkv_proj", "q_a_proj", "q_b_proj", "kv_a_proj", "kv_a_proj_rope", "kv_b_proj"})


def weight_class(name: str) -> str:
    """The tensor class (a :class:`~elk_dse.models.config.TensorFormats` field) of weight ``name``."""
    base = name.split(".", 1)[0]
    if base in MLP_WEIGHTS:
        return "mlp_weights"
    return "attention_weights" if base in ATTENTION_WEIGHTS else "weights"


@dataclass(frozen=True)
class Ops:
    """Operator factory for one element size ``bpe`` (bytes per element of weights and activations), or per
    tensor class when ``formats`` is given (class -> format name, see :meth:`for_config`);
    ``fused_attention``: attention as one FlashAttention-style operator (see :meth:`attention`)."""

    bpe: float
    fused_attention: bool = False
    formats: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_config(cls, cfg: ModelConfig) -> Ops:
        """The factory for ``cfg``: per-class formats from ``cfg.formats`` (inheriting ``cfg.dtype``)."""
        return cls(cfg.bytes_per_element, cfg.fused_attention, tuple(sorted(cfg.tensor_formats.items())))

    def format_of(self, tensor_class: str) -> tuple[str, float]:
        """(format name, bytes per element) of a tensor class; ("", bpe) without per-class formats."""
        fmt = dict(self.formats).get(tensor_class, "")
        return (fmt, format_bytes(fmt)) if fmt else ("", self.bpe)

    def act(self, name: str, *axes: Axis, role: Role = Role.ACTIVATION) -> Tensor:
        """A non-weight tensor (activation by default) in the activations' format (the KV cache's for
        role kv_cache)."""
        fmt, bpe = self.format_of("kv_cache" if role == Role.KV_CACHE else "activations")
        return Tensor(name, tuple(axes), role, bpe, fmt)

    def weight(self, name: str, *axes: Axis, scale: float = 1.0) -> Tensor:
        """A weight tensor in its class's format (:func:`weight_class`); ``scale`` multiplies the bytes per
        element (stacked expert matrices)."""
        fmt, bpe = self.format_of(weight_class(name))
        return Tensor(name, tuple(axes), Role.WEIGHT, bpe * scale, fmt)

    @staticmethod
    def op(
        name: str, kind: str, dims: Dims, inputs: Iterable[Tensor], output: Tensor, flops: float
    ) -> Operator:
        """An Operator with dims as (name, length) pairs and ``flops`` FLOPs per iteration point."""
        return Operator(name, kind, tuple((d, int(n)) for d, n in dims), tuple(inputs), output, flops)

    def linear(
        self,
        name: str,
        tokens: int,
        d_in: int,
        d_out: int,
        *,
        x: str,
        y: str,
        bias: bool = False,
        weight: str | None = None,
        out_role: Role = Role.ACTIVATION,
    ) -> Operator:
        """``y[t,o] = x[t,h] @ W[h,o] (+ b[o])``: tokens * d_in * d_out MACs at 2 FLOPs each.

        ``weight`` names the weight tensor (default ``<name>.weight``); a tied LM head passes the embedding
        table's name so that parameter counting sees one table.
        """
        inputs = [self.act(x, "t", "h"), self.weight(weight or f"{name}.weight", "h", "o")]
        if bias:
            inputs.append(self.weight(f"{name}.bias", "o"))
        dims = (("t", tokens), ("h", d_in), ("o", d_out))
        return self.op(name, "matmul", dims, inputs, self.act(y, "t", "o", role=out_role), MATMUL_FLOPS)

    def norm(self, name: str, dims: Dims, x: str, y: str, style: str) -> Operator:
        """Normalisation over the last of ``dims``; style rms (gamma), layer (gamma, beta) or plain (none)."""
        names = tuple(d for d, _ in dims)
        weights = (self.weight(f"{name}.{w}", names[-1]) for w in NORM_WEIGHTS[style])
        out = self.act(y, *names)
        return self.op(name, "norm", dims, (self.act(x, *names), *weights), out, NORM_FLOPS[style])

    def elementwise(
        self,
        name: str,
        dims: Dims,
        inputs: Sequence[str | Tensor],
        y: str,
        flops: float,
        out_role: Role = Role.ACTIVATION,
    ) -> Operator:
        """Pointwise op over all ``dims``; a str input is an activation spanning all dims (a Tensor may
        broadcast, e.g. a per-channel shift)."""
        names = tuple(d for d, _ in dims)
        tensors = [self.act(t, *names) if isinstance(t, str) else t for t in inputs]
        return self.op(name, "elementwise", dims, tensors, self.act(y, *names, role=out_role), flops)

    def gather(self, name: str, rows: Dims, width: int, table: str, y: str) -> Operator:
        """Embedding lookup of ``prod(rows)`` rows of ``width`` elements from weight ``table``.

        The weight tensor covers only the gathered rows (a step does not read the whole table); the full
        table is counted in the graph's parameter bytes by :func:`count_params`. 0 FLOPs.
        """
        names = tuple(d for d, _ in rows)
        ids = Tensor(f"{name}.ids", names, Role.ACTIVATION, ID_BYTES)
        dims = (*rows, ("h", width))
        out = self.act(y, *names, "h")
        return self.op(name, "embedding", dims, (ids, self.weight(table, *names, "h")), out, 0.0)

    def attention(
        self,
        b: int,
        g: int,
        r: int,
        d: int,
        kv_len: int,
        *,
        q_len: int | None = None,
        kv_role: Role = Role.ACTIVATION,
    ) -> tuple[Operator, ...]:
        """Scaled dot-product attention as score matmul, softmax and attention-value matmul.

        Dims: b batch, g KV heads, r query heads per KV head, d head dim, and the key positions ``l``
        (decode, ``q_len=None``: one query per sequence) or queries ``s`` x keys ``s2`` (prefill/encoder).
        All ``s x s2`` scores are computed: causal masking is not halved, as dense kernels compute them too.
        K and V have role ``kv_role`` (KV_CACHE in decode: read from HBM).

        With ``fused_attention`` it is one operator ``attention`` (FlashAttention-style): the scores and
        probabilities live only in on-chip tiles, never as tensors; the operator reads q, K, V and writes the
        context. Its FLOPs are exactly the three operators': 2 + 2 per (query, key, d) point and the softmax's
        5 per (query, key), i.e. 4 + 5/d per point — all counted at the matrix unit's rate (the softmax is
        under 4% of them for d >= 128).
        """
        decode = q_len is None
        key = "l" if decode else "s2"
        qa: tuple[str, ...] = () if decode else ("s",)
        queries = () if q_len is None else (("s", q_len),)
        dims = (("b", b), ("g", g), ("r", r), *queries, (key, kv_len), ("d", d))
        kname, vname = ("k_cache", "v_cache") if decode else ("k", "v")
        k = self.act(kname, "b", "g", key, "d", role=kv_role)
        v = self.act(vname, "b", "g", key, "d", role=kv_role)
        scores = self.act("scores", "b", "g", "r", *qa, key)
        probs = self.act("probs", "b", "g", "r", *qa, key)
        q = self.act("q", "b", "g", "r", *qa, "d")
        ctx = self.act("ctx", "b", "g", "r", *qa, "d")
        if self.fused_attention:
            return (self.op("attention", "matmul", dims, (q, k, v), ctx, 2 * MATMUL_FLOPS + SOFTMAX_FLOPS / d),)
        return (
            self.op("attn_score", "matmul", dims, (q, k), scores, MATMUL_FLOPS),
            self.op("attn_softmax", "softmax", dims[:-1], (scores,), probs, SOFTMAX_FLOPS),
            self.op("attn_value", "matmul", dims, (probs, v), ctx, MATMUL_FLOPS),
        )


@dataclass(frozen=True)
class Builder:
    """A registered model: a function from config to graph, and the phases the model has; ``takes_arch``: it
    reads ``model.arch`` (the decoders of models/zoo.py)."""

    fn: Callable[[ModelConfig], Graph]
    phases: tuple[str, ...]
    description: str = ""
    takes_arch: bool = False

    def __call__(self, cfg: ModelConfig) -> Graph:
        return self.fn(cfg)


def count_params(layers: Iterable[Layer], tables: Mapping[str, int]) -> int:
    """Parameters (elements) of a model: every weight tensor of every op times its layer's repeat, except
    the tensors named in ``tables`` (gathered or tied tables, read partly or twice), which count once at
    their full size ``tables[name]``."""
    total = sum(tables.values())
    for layer in layers:
        for op in layer.ops:
            for t in op.inputs:
                if t.role == Role.WEIGHT and t.name not in tables:
                    total += int(t.elements(op.sizes)) * layer.repeat
    return total


def count_param_bytes(layers: Iterable[Layer], tables: Mapping[str, tuple[int, float]]) -> float:
    """Bytes of the parameters :func:`count_params` counts: each weight tensor at its own bytes per element,
    each of the ``tables`` (name -> (elements, bytes per element)) once at its full size."""
    total = sum(n * bpe for n, bpe in tables.values())
    for layer in layers:
        for op in layer.ops:
            for t in op.inputs:
                if t.role == Role.WEIGHT and t.name not in tables:
                    total += float(t.nbytes(op.sizes)) * layer.repeat
    return float(total)


def stack(
    embed: Sequence[Operator], body_name: str, body: Sequence[Operator], repeat: int, head: Sequence[Operator]
) -> tuple[Layer, ...]:
    """The three layers of a transformer graph: ``embed``, ``body`` repeated ``repeat`` times, ``head``."""
    return Layer("embed", tuple(embed)), Layer(body_name, tuple(body), repeat), Layer("head", tuple(head))


def make_graph(
    cfg: ModelConfig,
    layers: Sequence[Layer],
    params: int,
    meta: Sequence[tuple[str, object]],
    *,
    batch: int,
    seq_len: int,
    kv_len: int,
    parameter_bytes: float | None = None,
) -> Graph:
    """A Graph with parameter bytes = ``parameter_bytes`` (default ``params`` x bytes per element) and
    ``params`` appended to meta."""
    return Graph(
        name=cfg.name,
        phase=cfg.phase,
        layers=tuple(layers),
        parameter_bytes=float(params * cfg.bytes_per_element if parameter_bytes is None else parameter_bytes),
        batch=batch,
        seq_len=seq_len,
        kv_len=kv_len,
        meta=(*meta, ("params", params)),
    )
