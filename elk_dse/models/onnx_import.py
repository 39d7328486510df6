"""Import an ONNX model as a workload graph (``model=onnx model.path=<file.onnx>``, phase ``prefill``).

The file is loaded and checked with the ``onnx`` package (onnx_load.py); symbolic input dims are bound from
the config (a dim named like ``batch``/``N`` takes ``model.batch``, one named like ``seq``/``sequence``/
``tokens`` takes ``model.seq_len``); ONNX shape inference then gives every tensor a static shape. Each node becomes an
operator of the IR (one Layer, repeat 1), with the FLOP conventions of :mod:`elk_dse.models.ops`:

- MatMul / Gemm: kind ``matmul``, 2 FLOPs per multiply-accumulate, broadcast batch dims; Conv (any spatial
  rank, groups, strides, padding, dilation): kind ``conv``, input indexed by sliding :class:`Window` axes.
- Element-wise ops: FLOPs per output element from :data:`ELEMENTWISE_FLOPS`; Softmax 5; reductions 1 per
  input element; MaxPool / AveragePool / global pools: kind ``pool``, 1 per window tap.
- LayerNormalization, RMSNormalization and the decomposed RMSNorm / LayerNorm patterns of exported models
  (Pow -> ReduceMean -> Add -> Sqrt -> Div/Reciprocal-Mul [-> Mul gamma], and the mean-subtracting variant
  [-> Add beta]) become one ``norm`` op (4 / 7 FLOPs per element, as the zoo counts them).
- A multiply/divide by a scalar constant whose only consumer is a Softmax is folded into it (the zoo's
  convention for the 1/sqrt(head_dim) scale).
- Layout: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Cast and Dropout are free address remaps (their
  output is another name for the same bytes: no operator). Transpose, Concat, Split, Slice, Gather (of an
  activation), Expand, Pad and Tile become ``layout`` operators with 0 FLOPs that read what they copy; the
  compiler keeps them on chip (see ``compiler/traffic.py``). Gather from an initializer is an ``embedding``
  lookup that reads only the gathered rows.
- Nodes that only compute shapes (from Shape, Constant or integer initializers) are dropped.

Initializers with more than one element that feed float ops are weights (bytes per element from
``model.dtype``, like the zoo); single-element constants are immediates. Integer tensors keep their own size.
Anything malformed — an unreadable or truncated file, a failed check or shape inference, a dim that cannot
be bound, an op without a model — raises a one-line :class:`ConfigError` naming ``model.path`` (and the node).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from elk_dse.errors import ConfigError, nearest
from elk_dse.ir.graph import Axis, Graph, Layer, Operator, Role, Tensor, Window
from elk_dse.models.config import ModelConfig
from elk_dse.models.onnx_load import load_onnx_bound, onnx_error
from elk_dse.models.ops import (
    ADD_FLOPS,
    GELU_FLOPS,
    MATMUL_FLOPS,
    NORM_FLOPS,
    RELU_FLOPS,
    SIGMOID_FLOPS,
    SILU_FLOPS,
    SOFTMAX_FLOPS,
    TANH_FLOPS,
    Builder,
    make_graph,
)

# FLOPs per output element of element-wise ONNX ops (multiply-add = 2, transcendental = 1, see ops.py).
ELEMENTWISE_FLOPS: dict[str, float] = {
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow", "Neg", "Abs"), ADD_FLOPS),
    **dict.fromkeys(("Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Sin", "Cos", "Floor", "Ceil", "Round"), 1.0),
    **dict.fromkeys(("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or"), 1.0),
    **dict.fromkeys(("Where", "Clip", "Sign"), 1.0),
    "Relu": RELU_FLOPS,
    "Tanh": TANH_FLOPS,
    "Sigmoid": SIGMOID_FLOPS,
    "Gelu": GELU_FLOPS,
    "Silu": SILU_FLOPS,  # not a standard ONNX op; Stream's SwiGLU workloads use it (com.example domain)
    "Swish": SILU_FLOPS,  # ONNX opset 24's x * sigmoid(alpha x)
    "Mish": 6.0,  # x * tanh(softplus(x)): exp, log, tanh, +1 and the product
    "LeakyRelu": 2.0,  # compare, multiply
    "PRelu": 2.0,
    "HardSigmoid": 2.0,  # multiply-add, clip folded
    "HardSwish": 3.0,  # hard sigmoid (2) and the product
    "Softplus": 2.0,  # exp, log (+1 folded)
    "Elu": 2.0,
}
ALIASES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast", "Dropout"})
LAYOUT = frozenset({"Transpose", "Concat", "Split", "Slice", "Gather", "Expand", "Pad", "Tile"})
REDUCE = frozenset({"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2"})
SHAPE_SOURCES = frozenset({"Shape", "Constant", "ConstantOfShape", "Size", "Range"})
PASSTHROUGH_FLOPS = 1.0  # model.unsupported=passthrough: one operation per output element
# ONNX TensorProto element types that are floating point (FLOAT, FLOAT16, DOUBLE, BFLOAT16, the FLOAT8
# variants, FLOAT4E2M1): tensors of these types take model.dtype's element size; integer tensors keep theirs.
FLOAT_TYPES = frozenset({1, 10, 11, 16, 17, 18, 19, 20, 23})
ELEMENT_BYTES = {16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 23: 1}  # bf16, fp8 x4, fp4 (stored one per byte)
COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "ConvInteger", "MatMulInteger"})
# The input position of each op's weight operand (the weight-inputs rule of _Importer._weight_inputs).
WEIGHT_OPERAND = {"MatMul": 1, "Gemm": 1, "Conv": 1}
_SCALE_FOLD = frozenset({"Mul", "Div"})

class _Importer:
    """One pass over the nodes of a shape-inferred ModelProto, producing IR operators."""

    def __init__(self, model: Any, cfg: ModelConfig, bound_inputs: frozenset[str] = frozenset()):
        from onnx import helper, numpy_helper

        self.cfg, self.path, self.bpe = cfg, cfg.path, float(cfg.bytes_per_element)
        self.bound_inputs = bound_inputs
        g = model.graph
        self.nodes = list(g.node)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.float: dict[str, bool] = {}
        self.itemsize: dict[str, int] = {}
        self.static_unknown: set[str] = set()
        for vi in (*g.input, *g.value_info, *g.output):
            tt = vi.type.tensor_type
            if not tt.HasField("shape"):
                continue
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
            self.shapes[vi.name] = dims
            self._set_type(vi.name, tt.elem_type, helper)
        self.consts: dict[str, np.ndarray] = {}
        self.weights: dict[str, tuple[int, ...]] = {}
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for name in n.input:
                if name:
                    self.consumers.setdefault(name, []).append(i)
        for t in g.initializer:
            shape = tuple(int(d) for d in t.dims)
            if any(d < 0 for d in shape):
                raise onnx_error(self.path, f"initializer '{t.name}' has a negative dim: {shape}")
            self.shapes[t.name] = shape
            self._set_type(t.name, t.data_type, helper)
            if math.prod(shape) > 1 and (self.float[t.name] or self._feeds_compute(t.name)):
                self.weights[t.name] = shape  # only its shape matters: the data is never decoded
            elif _has_data(t):
                self.consts[t.name] = numpy_helper.to_array(t)
            else:  # a shape-only integer constant: its value is unknown, it only feeds shape arithmetic
                self.static_unknown.add(t.name)
        for name in self._weight_inputs(g, cfg):
            self.weights[name] = self.shapes[name]
        self.outputs = {vi.name for vi in g.output}
        self.producer = {out: n for n in self.nodes for out in n.output if out}
        self.alias: dict[str, str] = {}
        self.static: set[str] = set(self.consts) | self.static_unknown  # shape-computation values (dropped)
        self.used_weights: set[str] = set()
        self.ops: list[Operator] = []
        self.names: set[str] = set()

    def _set_type(self, name: str, elem_type: int, helper: Any) -> None:
        # By ONNX element type, not numpy kind: ml_dtypes' bfloat16 and float8 types have kind 'V'.
        self.float[name] = elem_type in FLOAT_TYPES
        self.itemsize[name] = ELEMENT_BYTES.get(elem_type) or np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize

    def _feeds_compute(self, name: str) -> bool:
        """An integer tensor that is a data operand of a compute op (an int8 conv's weights), not shape
        arithmetic."""
        for i in self.consumers.get(name, []):
            node = self.nodes[i]
            if node.op_type in COMPUTE_OPS or (node.op_type == "Gather" and node.input[0] == name):
                return True
        return False

    def _weight_inputs(self, g: Any, cfg: ModelConfig) -> list[str]:
        """Graph inputs that are weights (``model.weight_inputs``): ``auto`` takes every input that is not an
        initializer, has only static dims (no batch or sequence dim the config binds) and is consumed only as
        the weight operand of a matmul or conv (MatMul's and Gemm's B, Conv's W); ``none`` takes none; else a
        comma-separated list of input names."""
        inits = {t.name for t in g.initializer}
        inputs = {vi.name: vi for vi in g.input if vi.name not in inits}
        rule = cfg.weight_inputs.strip()
        if rule == "none":
            return []
        if rule != "auto":
            names = [n.strip() for n in rule.split(",") if n.strip()]
            for n in names:
                if n not in inputs:
                    raise ConfigError("model.weight_inputs", cfg.weight_inputs,
                                      "auto, none, or graph input names of the file, among: " + ", ".join(inputs)
                                      + nearest(n, inputs))
            return names
        out = []
        for name, vi in inputs.items():
            dims = vi.type.tensor_type.shape.dim if vi.type.HasField("tensor_type") else []
            if any(not d.HasField("dim_value") for d in dims) or name in self.bound_inputs:
                continue
            uses = [(self.nodes[i], list(self.nodes[i].input).index(name)) for i in self.consumers.get(name, [])]
            if uses and all(n.op_type in WEIGHT_OPERAND and k == WEIGHT_OPERAND[n.op_type] for n, k in uses):
                out.append(name)
        return out

    # --- helpers -----------------------------------------------------------------------------------------

    def shape(self, name: str, node: Any) -> tuple[int, ...]:
        # A remapped value has its own shape (a reshape's output) but the bytes of the tensor it aliases.
        shape = self.shapes.get(name)
        if shape is None:
            shape = self.shapes.get(self.alias.get(name, name))
        if shape is None:
            shape = self._elementwise_shape(name)
        if shape is None or any(d < 1 for d in shape):
            raise onnx_error(self.path, f"node '{node.name}' ({node.op_type}): tensor '{name}' has no static shape "
                                  f"after shape inference ({shape})")
        return shape

    def _elementwise_shape(self, name: str) -> tuple[int, ...] | None:
        """The shape of an element-wise op's output that shape inference left unknown (an op without a schema
        in the file's opset, e.g. Stream's custom Silu, Gelu before opset 20): its inputs broadcast."""
        producer = self.producer.get(name)
        if producer is None or producer.op_type not in ELEMENTWISE_FLOPS or producer.op_type == "LRN":
            return None
        shapes = [self.shape(n, producer) for n in producer.input if n and n not in self.consts]
        try:
            shape = tuple(int(d) for d in np.broadcast_shapes(*shapes)) if shapes else None
        except ValueError:
            return None
        if shape is not None:
            self.shapes[name] = shape
        return shape

    def tensor(self, name: str, axes: Sequence[Axis], node: Any, elem_scale: float = 1.0) -> Tensor | None:
        """The IR tensor of ONNX value ``name`` indexed by ``axes``; None for an immediate constant."""
        name = self.alias.get(name, name)
        if name in self.consts:
            return None
        if name in self.weights:
            self.used_weights.add(name)
            bpe = self.bpe if self.float.get(name, True) else float(self.itemsize.get(name, 1))
            return Tensor(name, tuple(axes), Role.WEIGHT, bpe * elem_scale)
        bpe = self.bpe if self.float.get(name, True) else float(self.itemsize.get(name, 8))
        return Tensor(name, tuple(axes), Role.ACTIVATION, bpe * elem_scale)

    def out_tensor(self, name: str, axes: Sequence[Axis]) -> Tensor:
        role = Role.OUTPUT if name in self.outputs else Role.ACTIVATION
        bpe = self.bpe if self.float.get(name, True) else float(self.itemsize.get(name, 8))
        return Tensor(name, tuple(axes), role, bpe)

    def attr(self, node: Any, key: str, default: Any = None) -> Any:
        from onnx import helper

        for a in node.attribute:
            if a.name == key:
                return helper.get_attribute_value(a)
        return default

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(self.alias.get(name, name))

    def op_name(self, node: Any, index: int) -> str:
        base = node.name or f"{node.op_type}_{index}"
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def emit(self, name: str, kind: str, dims: Sequence[tuple[str, int]], inputs: Sequence[Tensor | None],
             output: Tensor, flops: float) -> None:
        # Drop size-1 dims no tensor uses (e.g. a broadcast axis); keep the rest as the iteration space.
        ins = tuple(t for t in inputs if t is not None)
        self.ops.append(Operator(name, kind, tuple((d, int(n)) for d, n in dims), ins, output, flops))

    def single_consumer(self, name: str, op_type: str | tuple[str, ...]) -> Any | None:
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs:
            return None
        node = self.nodes[users[0]]
        return node if node.op_type in ((op_type,) if isinstance(op_type, str) else op_type) else None

    def scalar_const(self, name: str) -> bool:
        c = self.const(name)
        return c is not None and c.size <= 1

    # --- patterns ----------------------------------------------------------------------------------------

    def match_norm(self, node: Any) -> tuple[str, str, list[str], list[Any]] | None:
        """A decomposed RMSNorm (from Pow/Mul) or LayerNorm (from ReduceMean) starting at ``node``:
        (style, input, weight names, nodes) or None."""
        chain: list[Any] = []
        if node.op_type == "ReduceMean":  # LayerNorm: mean, x - mean, then the RMS chain on the difference
            x = node.input[0]
            sub = self.single_consumer(node.output[0], "Sub")
            if sub is None or list(sub.input) != [x, node.output[0]]:
                return None
            d = sub.output[0]
            users = [self.nodes[i] for i in self.consumers.get(d, [])]
            sq = next((u for u in users if u.op_type in ("Pow", "Mul")), None)
            if len(users) != 2 or sq is None:
                return None
            tail = self._rms_tail(sq, d)
            if tail is None:
                return None
            style, chain = "layer", [node, sub, *tail]
        elif node.op_type in ("Pow", "Mul"):
            x = node.input[0]
            tail = self._rms_tail(node, x)
            if tail is None:
                return None
            style, chain = "rms", tail
        else:
            return None
        weights: list[str] = []
        out = chain[-1].output[0]
        gamma = self.single_consumer(out, "Mul")
        if gamma is not None:
            w = next((n for n in gamma.input if n != out), "")
            if w in self.weights:
                weights.append(w)
                chain.append(gamma)
                out = gamma.output[0]
                beta = self.single_consumer(out, "Add") if style == "layer" else None
                b = next((n for n in beta.input if n != out), "") if beta is not None else ""
                if b in self.weights:
                    weights.append(b)
                    chain.append(beta)
        return style, x, weights, chain

    def _rms_tail(self, sq: Any, x: str) -> list[Any] | None:
        """sq(x) -> ReduceMean -> Add(eps) -> Sqrt -> Div(x, .) | Reciprocal -> Mul(x, .)."""
        if sq.op_type == "Pow":
            e = self.const(sq.input[1])
            if sq.input[0] != x or e is None or float(np.asarray(e).reshape(-1)[0]) != 2.0:
                return None
        elif list(sq.input) != [x, x]:
            return None
        mean = self.single_consumer(sq.output[0], "ReduceMean")
        add = mean and self.single_consumer(mean.output[0], "Add")
        if add is None or not any(self.scalar_const(n) for n in add.input):
            return None
        sqrt = self.single_consumer(add.output[0], "Sqrt")
        if sqrt is None:
            return None
        div = self.single_consumer(sqrt.output[0], ("Div", "Reciprocal"))
        if div is None:
            return None
        if div.op_type == "Div":
            return [sq, mean, add, sqrt, div] if list(div.input) == [x, sqrt.output[0]] else None
        mul = self.single_consumer(div.output[0], "Mul")
        if mul is None or set(mul.input) != {x, div.output[0]}:
            return None
        return [sq, mean, add, sqrt, div, mul]

    # --- the pass ----------------------------------------------------------------------------------------

    def run(self) -> list[Operator]:
        fused: dict[int, tuple[str, str, list[str], Any]] = {}  # index of a pattern's last node -> pattern
        skip: set[int] = set()
        index = {id(n): i for i, n in enumerate(self.nodes)}
        for i, node in enumerate(self.nodes):
            if i in skip:
                continue
            m = self.match_norm(node)
            if m is not None:
                style, x, weights, chain = m
                ids = [index[id(n)] for n in chain]
                skip.update(ids)
                fused[max(ids)] = (style, x, weights, chain[-1])
        for i, node in enumerate(self.nodes):
            if i in fused:
                style, x, weights, last = fused[i]
                self.norm(self.op_name(last, i), style, x, weights, last.output[0], last, 0)
            elif i not in skip:
                self.node(i, node)
        return self.ops

    def node(self, i: int, node: Any) -> None:
        t = node.op_type
        ins = [n for n in node.input if n]
        if t in SHAPE_SOURCES or (ins and all(self.alias.get(n, n) in self.static for n in ins)):
            self.static.update(node.output)  # shape arithmetic, folded by the exporter's runtime
            if t == "Constant":
                val = self.attr(node, "value")
                if val is not None:
                    from onnx import numpy_helper

                    self.consts[node.output[0]] = numpy_helper.to_array(val)
            return
        name = self.op_name(node, i)
        if t in ALIASES:
            self.alias[node.output[0]] = self.alias.get(node.input[0], node.input[0])
        elif t in _SCALE_FOLD and self.folds_into_softmax(node):
            data = next(n for n in node.input if not self.scalar_const(n))
            self.alias[node.output[0]] = self.alias.get(data, data)
        elif t in ("MatMul", "Gemm"):
            (self.matmul if t == "MatMul" else self.gemm)(name, node)
        elif t in ("Conv", "MaxPool", "AveragePool"):
            self.window_op(name, node)
        elif t in ("GlobalAveragePool", "GlobalMaxPool") or t in REDUCE:
            self.reduce(name, node)
        elif t == "Softmax":
            y = node.output[0]
            dims = self.out_dims(y, node)
            axes = [d for d, _ in dims]
            self.emit(name, "softmax", dims, [self.tensor(node.input[0], axes, node)],
                      self.out_tensor(y, axes), SOFTMAX_FLOPS)
        elif t == "Attention" and node.domain == "com.microsoft":
            self.ms_attention(name, node)
        elif t in ("LayerNormalization", "RMSNormalization", "SimplifiedLayerNormalization"):
            style = "layer" if t == "LayerNormalization" else "rms"
            self.norm(name, style, node.input[0], [n for n in node.input[1:] if n], node.output[0], node, 0)
        elif t in ELEMENTWISE_FLOPS:
            self.elementwise(name, node, ELEMENTWISE_FLOPS[t], "elementwise")
        elif t == "BatchNormalization":  # inference: a per-channel multiply-add (scale and shift folded)
            y = node.output[0]
            dims = self.out_dims(y, node)
            axes = [d for d, _ in dims]
            params = [self.tensor(n, axes[1:2], node) for n in node.input[1:] if n]  # [C] on axis 1
            self.emit(name, "elementwise", dims, [self.tensor(node.input[0], axes, node), *params],
                      self.out_tensor(y, axes), 2.0)
        elif t == "LRN":  # x / (bias + alpha/size * sum of size squares)^beta: square-sum 2 per tap, 4 more
            self.elementwise(name, node, 2.0 * int(self.attr(node, "size", 5)) + 4.0, "elementwise")
        elif t == "Gather" and self.alias.get(node.input[0], node.input[0]) in self.weights:
            self.embedding(name, node)
        elif t in LAYOUT:
            self.layout(name, node)
        elif self.cfg.unsupported == "passthrough":
            self.layout(name, node, kind="elementwise", flops=PASSTHROUGH_FLOPS)
        else:
            raise onnx_error(self.path, f"node '{node.name or i}' has op type {t}, which elk_dse does not model; set "
                                  "model.unsupported=passthrough to count it as an element-wise op of its "
                                  "output size")

    def folds_into_softmax(self, node: Any) -> bool:
        """A multiply/divide of an activation by a scalar constant feeding only a Softmax (the attention
        scale, counted inside the softmax's FLOPs as the zoo does)."""
        scalars = [self.scalar_const(n) for n in node.input]
        ok = scalars == [False, True] if node.op_type == "Div" else sorted(scalars) == [False, True]
        return ok and self.single_consumer(node.output[0], "Softmax") is not None

    def out_dims(self, y: str, node: Any, prefix: str = "d") -> list[tuple[str, int]]:
        return [(f"{prefix}{k}", n) for k, n in enumerate(self.shape(y, node))]

    def broadcast_axes(self, name: str, dims: Sequence[tuple[str, int]], node: Any) -> list[str]:
        """Axes of input ``name`` broadcast (numpy rules, right-aligned) against ``dims``."""
        shape = self.shape(name, node)
        off = len(dims) - len(shape)
        return [dims[off + j][0] for j, n in enumerate(shape) if not (n == 1 and dims[off + j][1] != 1)]

    def elementwise(self, name: str, node: Any, flops: float, kind: str) -> None:
        y = node.output[0]
        dims = self.out_dims(y, node)
        ins = [self.tensor(n, self.broadcast_axes(n, dims, node), node) for n in node.input if n]
        self.emit(name, kind, dims, ins, self.out_tensor(y, [d for d, _ in dims]), flops)

    def norm(self, name: str, style: str, x: str, weights: list[str], y: str, node: Any, _: int) -> None:
        dims = self.out_dims(y, node)
        axes = [d for d, _ in dims]
        ws = [self.tensor(w, self.broadcast_axes(w, dims, node), node) for w in weights]
        # LayerNorm without beta saves the + beta (1 FLOP per element).
        flops = NORM_FLOPS[style] - (1.0 if style == "layer" and len(weights) < 2 else 0.0)
        self.emit(name, "norm", dims, [self.tensor(x, axes, node), *ws], self.out_tensor(y, axes), flops)

    def matmul(self, name: str, node: Any) -> None:
        a, b, y = node.input[0], node.input[1], node.output[0]
        sa, sb, sy = self.shape(a, node), self.shape(b, node), self.shape(y, node)
        k_len = sa[-1]
        m = [("m", sa[-2])] if len(sa) > 1 else []
        n = [("n", sb[-1])] if len(sb) > 1 else []
        batch = [(f"b{k}", v) for k, v in enumerate(sy[: len(sy) - len(m) - len(n)])]
        dims = [*batch, *m, *n, ("k", k_len)]

        def axes(shape: tuple[int, ...], tail: list[str]) -> list[str]:
            lead = shape[: len(shape) - len(tail)]
            off = len(batch) - len(lead)
            return [batch[off + j][0] for j, v in enumerate(lead) if not (v == 1 and batch[off + j][1] != 1)] + tail

        ta = self.tensor(a, axes(sa, ["m", "k"] if m else ["k"]), node)
        tb = self.tensor(b, axes(sb, ["k", "n"] if n else ["k"]), node)
        out = self.out_tensor(y, [d for d, _ in batch] + [d for d, _ in m] + [d for d, _ in n])
        self.emit(name, "matmul", dims, [ta, tb], out, MATMUL_FLOPS)

    def gemm(self, name: str, node: Any) -> None:
        a, b, y = node.input[0], node.input[1], node.output[0]
        sa, sy = self.shape(a, node), self.shape(y, node)
        trans_a, trans_b = int(self.attr(node, "transA", 0)), int(self.attr(node, "transB", 0))
        m_len, n_len = sy
        k_len = sa[0] if trans_a else sa[1]
        dims = [("m", m_len), ("n", n_len), ("k", k_len)]
        ins = [self.tensor(a, ["k", "m"] if trans_a else ["m", "k"], node),
               self.tensor(b, ["n", "k"] if trans_b else ["k", "n"], node)]
        if len(node.input) > 2 and node.input[2]:
            ins.append(self.tensor(node.input[2], self.broadcast_axes(node.input[2], dims[:2], node), node))
        self.emit(name, "matmul", dims, ins, self.out_tensor(y, ["m", "n"]), MATMUL_FLOPS)

    def window_op(self, name: str, node: Any) -> None:
        """Conv / MaxPool / AveragePool over N x C x spatial inputs (padding: the window is capped at the input)."""
        x, y = node.input[0], node.output[0]
        sx, sy = self.shape(x, node), self.shape(y, node)
        spatial = len(sx) - 2
        conv = node.op_type == "Conv"
        if conv:
            kernel = self.shape(node.input[1], node)[2:]
        else:
            kernel = tuple(self.attr(node, "kernel_shape"))
        strides = tuple(self.attr(node, "strides", None) or (1,) * spatial)
        dilations = tuple(self.attr(node, "dilations", None) or (1,) * spatial)
        outs = [(f"p{j}", sy[2 + j]) for j in range(spatial)]
        taps = [(f"r{j}", kernel[j]) for j in range(spatial)]
        windows = [Window(f"p{j}", f"r{j}", strides[j], dilations[j], sx[2 + j]) for j in range(spatial)]
        if not conv:  # pooling: one operation per window tap
            dims = [("n", sx[0]), ("c", sx[1]), *outs, *taps]
            ins = [self.tensor(x, ["n", "c", *windows], node)]
            out = self.out_tensor(y, ["n", "c", *(d for d, _ in outs)])
            self.emit(name, "pool", dims, ins, out, 1.0)
            return
        groups = int(self.attr(node, "group", 1))
        grp = [("g", groups)] if groups > 1 else []
        g = [d for d, _ in grp]
        dims = [("n", sx[0]), *grp, ("k", sy[1] // groups), ("c", sx[1] // groups), *outs, *taps]
        ins = [self.tensor(x, ["n", *g, "c", *windows], node),
               self.tensor(node.input[1], [*g, "k", "c", *(d for d, _ in taps)], node)]
        if len(node.input) > 2 and node.input[2]:
            ins.append(self.tensor(node.input[2], [*g, "k"], node))
        out = self.out_tensor(y, ["n", *g, "k", *(d for d, _ in outs)])
        self.emit(name, "conv", dims, ins, out, MATMUL_FLOPS)

    def reduce(self, name: str, node: Any) -> None:
        """Reductions and global pools: 1 FLOP per input element; the output keeps the non-reduced axes."""
        x, y = node.input[0], node.output[0]
        sx = self.shape(x, node)
        dims = [(f"d{k}", n) for k, n in enumerate(sx)]
        if node.op_type.startswith("Global"):
            reduced = set(range(2, len(sx)))
        else:
            axes = self.attr(node, "axes", None)
            if axes is None and len(node.input) > 1 and node.input[1]:
                c = self.const(node.input[1])
                axes = None if c is None else [int(v) for v in np.asarray(c).reshape(-1)]
            reduced = set(range(len(sx))) if not axes else {a % len(sx) for a in axes}
        kind = "pool" if node.op_type.startswith("Global") else "reduce"
        out = self.out_tensor(y, [d for k, (d, _) in enumerate(dims) if k not in reduced])
        self.emit(name, kind, dims, [self.tensor(x, [d for d, _ in dims], node)], out, 1.0)

    def embedding(self, name: str, node: Any) -> None:
        """Gather rows of an initializer table: the weight read is the gathered rows only (0 FLOPs)."""
        table, ids, y = self.alias.get(node.input[0], node.input[0]), node.input[1], node.output[0]
        axis = int(self.attr(node, "axis", 0))
        st, si = self.shape(table, node), self.shape(ids, node) if self.const(ids) is None else \
            tuple(np.asarray(self.const(ids)).shape)
        if axis != 0:
            self.layout(name, node)
            return
        rows = [(f"i{k}", n) for k, n in enumerate(si)]
        width = [(f"w{k}", n) for k, n in enumerate(st[1:])]
        axes = [d for d, _ in (*rows, *width)]
        ins = [self.tensor(ids, [d for d, _ in rows], node), self.tensor(table, axes, node)]
        self.emit(name, "embedding", [*rows, *width], ins, self.out_tensor(y, axes), 0.0)

    def layout(self, name: str, node: Any, kind: str = "layout", flops: float = 0.0) -> None:
        """A copy that moves data without arithmetic, over its output elements (a flat dim ``e``).

        Transpose keeps its axes (the input is indexed by the permuted output dims). Otherwise each input is a
        flat tensor whose bytes are what the op reads: a Concat, Pad, Expand, Tile or pass-through reads whole
        inputs, a Slice, Split or Gather only the selected elements (as many as it writes).
        """
        if node.op_type == "Transpose":
            y = node.output[0]
            dims = self.out_dims(y, node)
            perm = self.attr(node, "perm", None) or list(range(len(dims)))[::-1]
            axes = [dims[list(perm).index(j)][0] for j in range(len(dims))]
            self.emit(name, kind, dims, [self.tensor(node.input[0], axes, node)],
                      self.out_tensor(y, [d for d, _ in dims]), flops)
            return
        whole = kind != "layout" or node.op_type in ("Concat", "Pad", "Expand", "Tile")
        data = [n for n in (node.input if whole else node.input[:1]) if n]
        for k, y in enumerate(o for o in node.output if o):
            out_elems = math.prod(self.shape(y, node))
            ins = [self.tensor(n, ["e"], node, math.prod(self.shape(n, node)) / out_elems if whole else 1.0)
                   for n in data]
            self.emit(name if k == 0 else f"{name}.{k}", kind, [("e", out_elems)], ins,
                      self.out_tensor(y, ["e"]), flops)

    def ms_attention(self, name: str, node: Any) -> None:
        """onnxruntime's fused ``com.microsoft.Attention`` (what its transformers optimizer writes for BERT-style
        encoders; contrib op spec, docs/ContribOperators.md): input [B, S, H_in] x weights [H_in, Q + K + V]
        (+ bias), ``num_heads`` heads, output [B, S, V]. Counted as the unfused graph an exporter writes: the
        QKV projection, its bias add, zero-FLOP layout ops handing the Q / K / V column blocks on (as the zoo's
        fused projections), scores, softmax (the scale folded in, as the zoo's), context. The mask is added
        inside the kernel and not counted (1 FLOP per score). A ``past`` KV input (decode) is not
        modelled: one line."""
        ins = list(node.input) + [""] * 7
        x, w, bias, past = ins[0], ins[1], ins[2], ins[4]
        if past:
            raise onnx_error(self.path, f"node '{node.name}' (com.microsoft Attention) has a past KV input "
                             "(decode): not modelled; import the encoder / prefill graph (phase prefill)")
        heads = int(self.attr(node, "num_heads", 0))
        sx, sw = self.shape(x, node), self.shape(w, node)
        if heads < 1 or len(sx) != 3 or len(sw) != 2 or sw[0] != sx[2]:
            raise onnx_error(self.path, f"node '{node.name}' (com.microsoft Attention): expected input [B, S, H], "
                             f"weights [H, Q+K+V] and num_heads >= 1, got {sx}, {sw}, num_heads={heads}")
        sizes = [int(v) for v in (self.attr(node, "qkv_hidden_sizes", None) or [sw[1] // 3] * 3)]
        if len(sizes) != 3 or sum(sizes) != sw[1] or sizes[0] != sizes[1] or any(v % heads for v in sizes):
            raise onnx_error(self.path, f"node '{node.name}' (com.microsoft Attention): qkv_hidden_sizes {sizes} "
                             f"must sum to the weights' {sw[1]} columns, Q and K equal, each divisible by "
                             f"num_heads={heads}")
        b, seq, hin = sx
        y = node.output[0]
        qkv = f"{y}.qkv"
        self.emit(f"{name}.qkv", "matmul", [("b0", b), ("m", seq), ("n", sw[1]), ("k", hin)],
                  [self.tensor(x, ["b0", "m", "k"], node), self.tensor(w, ["k", "n"], node)],
                  Tensor(qkv, ("b0", "m", "n"), Role.ACTIVATION, self.bpe), MATMUL_FLOPS)
        if bias:
            self.emit(f"{name}.bias", "elementwise", [("b0", b), ("m", seq), ("n", sw[1])],
                      [Tensor(qkv, ("b0", "m", "n"), Role.ACTIVATION, self.bpe), self.tensor(bias, ["n"], node)],
                      Tensor(qkv + "b", ("b0", "m", "n"), Role.ACTIVATION, self.bpe), ELEMENTWISE_FLOPS["Add"])
            qkv += "b"
        parts = {}
        for part, width in zip("qkv", sizes, strict=True):
            parts[part] = f"{y}.{part}"
            self.emit(f"{name}.{part}", "layout", [("e", b * seq * width)],
                      [Tensor(qkv, ("e",), Role.ACTIVATION, self.bpe)],
                      Tensor(parts[part], ("e",), Role.ACTIVATION, self.bpe), 0.0)
        dq, dv = sizes[0] // heads, sizes[2] // heads
        scores, probs = f"{y}.scores", f"{y}.probs"
        self.emit(f"{name}.scores", "matmul", [("b0", b), ("b1", heads), ("m", seq), ("n", seq), ("k", dq)],
                  [Tensor(parts["q"], ("b0", "b1", "m", "k"), Role.ACTIVATION, self.bpe),
                   Tensor(parts["k"], ("b0", "b1", "n", "k"), Role.ACTIVATION, self.bpe)],
                  Tensor(scores, ("b0", "b1", "m", "n"), Role.ACTIVATION, self.bpe), MATMUL_FLOPS)
        self.emit(f"{name}.softmax", "softmax", [("b0", b), ("b1", heads), ("m", seq), ("n", seq)],
                  [Tensor(scores, ("b0", "b1", "m", "n"), Role.ACTIVATION, self.bpe)],
                  Tensor(probs, ("b0", "b1", "m", "n"), Role.ACTIVATION, self.bpe), SOFTMAX_FLOPS)
        self.emit(name, "matmul", [("b0", b), ("b1", heads), ("m", seq), ("n", dv), ("k", seq)],
                  [Tensor(probs, ("b0", "b1", "m", "k"), Role.ACTIVATION, self.bpe),
                   Tensor(parts["v"], ("b0", "b1", "k", "n"), Role.ACTIVATION, self.bpe)],
                  self.out_tensor(y, ["b0", "m", "b1", "n"]), MATMUL_FLOPS)

    def parameters(self) -> int:
        """Elements of every weight initializer (each counted once, at its full size)."""
        return sum(math.prod(s) for s in self.weights.values())


def _has_data(t: Any) -> bool:
    """Whether an initializer carries its values in the file (not shape-only, not in external data)."""
    if t.data_location == 1 or t.external_data:  # TensorProto.EXTERNAL: never read
        return False
    fields = ("raw_data", "float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")
    return math.prod(int(d) for d in t.dims) == 0 or any(len(getattr(t, f)) for f in fields)


def onnx_graph(cfg: ModelConfig) -> Graph:
    """The workload graph of the ONNX file ``cfg.path`` (one Layer, ``batch`` and seq dims bound from cfg)."""
    model, bound = load_onnx_bound(cfg)
    try:
        imp = _Importer(model, cfg, bound)
        ops = imp.run()
    except (ValueError, KeyError, IndexError, TypeError) as err:
        # Content the checker let through but the IR cannot express (an odd shape, dtype or attribute).
        raise onnx_error(cfg.path, f"cannot import: {type(err).__name__}: {err}") from None
    if not ops:
        raise onnx_error(cfg.path, "no operator with work found in the ONNX graph")
    layers = (Layer("onnx", tuple(ops)),)
    meta = (("source", Path(cfg.path).name), ("onnx_nodes", len(imp.nodes)))
    return make_graph(cfg, layers, imp.parameters(), meta, batch=cfg.batch, seq_len=cfg.seq_len, kv_len=0)


ONNX_MODELS: dict[str, Builder] = {
    # phase train: one training step of the imported forward graph (models/training.py).
    "onnx": Builder(onnx_graph, ("prefill", "train"), "an ONNX file (model.path), shapes from model.batch/seq_len"),
}
