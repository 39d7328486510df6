"""Folding an ONNX file's shape arithmetic into constants, where ONNX's own shape inference does not.

Exporters write ``x.view(x.size(0), -1)`` as ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``. ONNX shape
inference (``data_prop=True``) follows such chains only from opset 14 on (onnx 1.23: at opset 11-13 a Reshape
fed by a Shape chain gets no output shape), and opset 11-13 files are what torch.onnx wrote by default up to
torch 1.12 and tf2onnx up to 1.14, and what many published model zoos hold. Once the importer has bound the
input dims, every such chain has a known value: this module computes it (integer tensors only, from static
shapes, integer initializers with data and Constant nodes) and hands it to the consumer as an initializer, so
that shape inference can run on. Weights and activations are never read or computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Integer values larger than this are not shape arithmetic (an index table, say): not folded.
MAX_FOLD_ELEMENTS = 4096
FOLDED_SUFFIX = "__elk_folded"
# Ops whose value this module computes from known integer inputs.
FOLDABLE = frozenset({"Shape", "Size", "Constant", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
                      "Identity", "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Min", "Max", "Range", "Equal",
                      "Where", "ConstantOfShape", "ReduceProd", "Reshape"})


def _static_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    g = model.graph
    out: dict[str, tuple[int, ...]] = {}
    for vi in (*g.input, *g.value_info, *g.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") and d.dim_value > 0 for d in tt.shape.dim):
            out[vi.name] = tuple(int(d.dim_value) for d in tt.shape.dim)
    for t in g.initializer:
        out[t.name] = tuple(int(d) for d in t.dims)
    return out


def unshaped_outputs(model: Any) -> bool:
    """Whether some node output has no static shape after shape inference."""
    shapes = _static_shapes(model)
    return any(name and name not in shapes for n in model.graph.node for name in n.output)


def _int_array(t: Any) -> np.ndarray | None:
    from onnx import numpy_helper

    if t.data_location == 1 or t.external_data:
        return None
    try:
        arr = numpy_helper.to_array(t)
    except Exception:  # shape-only (no data) or a type numpy cannot hold
        return None
    if arr.dtype.kind not in "iub" or arr.size > MAX_FOLD_ELEMENTS:
        return None
    return arr.astype(np.int64)


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _value(node: Any, ins: list[np.ndarray], shapes: dict[str, tuple[int, ...]]) -> np.ndarray | None:
    """The integer value of ``node``'s first output, or None when it is not known; ``ins``: the values of its
    (non-empty) inputs, all known (Shape, Size and Constant read none)."""
    t = node.op_type
    if t == "Constant":
        val = _attr(node, "value")
        if val is not None:
            return _int_array(val)
        for key in ("value_int", "value_ints"):
            v = _attr(node, key)
            if v is not None:
                return np.asarray(v, dtype=np.int64)
        return None
    if t in ("Shape", "Size"):
        shape = shapes.get(node.input[0])
        if shape is None:
            return None
        if t == "Size":
            return np.asarray(int(np.prod(shape)), dtype=np.int64)
        dims = np.asarray(shape, dtype=np.int64)
        start, end = _attr(node, "start", 0), _attr(node, "end", None)
        return dims[start:end] if end is not None else dims[start:]
    if not ins:
        return None
    a = ins[0]
    if t in ("Identity", "Cast"):
        return a
    if t == "Gather":
        return np.take(a, ins[1], axis=_attr(node, "axis", 0))
    if t in ("Unsqueeze", "Squeeze"):
        axes = _attr(node, "axes") if len(ins) < 2 else ins[1]
        if t == "Squeeze":
            return np.squeeze(a, axis=None if axes is None else tuple(int(x) for x in np.ravel(axes)))
        out = a
        rank = a.ndim + len(np.ravel(axes))
        for ax in sorted(int(x) % rank for x in np.ravel(axes)):
            out = np.expand_dims(out, ax)
        return out
    if t == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in ins], axis=_attr(node, "axis", 0))
    if t == "Slice":
        if len(ins) >= 3:
            starts, ends = ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 else np.arange(len(starts))
            steps = ins[4] if len(ins) > 4 else np.ones(len(starts), dtype=np.int64)
        else:
            starts, ends = np.asarray(_attr(node, "starts")), np.asarray(_attr(node, "ends"))
            axes = np.asarray(_attr(node, "axes", list(range(len(starts)))))
            steps = np.ones(len(starts), dtype=np.int64)
        idx = [slice(None)] * a.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
            idx[int(ax)] = slice(int(s), int(e), int(st))
        return a[tuple(idx)]
    if t in ("Add", "Sub", "Mul", "Div", "Min", "Max", "Equal") and len(ins) == 2:
        b = ins[1]
        if t == "Div":
            return np.trunc(a / np.where(b == 0, 1, b)).astype(np.int64) if not (b == 0).any() else None
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Min": np.minimum, "Max": np.maximum,
              "Equal": np.equal}[t]
        return np.asarray(fn(a, b), dtype=np.int64)
    if t == "Neg":
        return -a
    if t == "Abs":
        return np.abs(a)
    if t == "Where" and len(ins) == 3:
        return np.where(a.astype(bool), ins[1], ins[2])
    if t == "Range" and len(ins) == 3:
        if int(ins[2]) == 0:
            return None
        return np.arange(int(a), int(ins[1]), int(ins[2]), dtype=np.int64)
    if t == "ReduceProd" and len(ins) == 1 and _attr(node, "axes") is None:
        keep = _attr(node, "keepdims", 1)
        return np.asarray(np.prod(a, keepdims=bool(keep)), dtype=np.int64)
    if t == "ConstantOfShape":
        val = _attr(node, "value")
        fill = _int_array(val) if val is not None else np.zeros(1, dtype=np.int64)
        if fill is None or int(np.prod(a)) > MAX_FOLD_ELEMENTS:
            return None
        return np.full(tuple(int(x) for x in a), int(np.ravel(fill)[0]), dtype=np.int64)
    if t == "Reshape" and len(ins) == 2:
        target = [int(x) for x in ins[1]]
        target = [a.shape[i] if x == 0 and i < a.ndim else x for i, x in enumerate(target)]
        try:
            return a.reshape(target)
        except ValueError:
            return None
    return None


def fold_shape_values(model: Any) -> bool:
    """Replace, in place, each input of a node that is not itself shape arithmetic (a Reshape's shape, an
    Expand's, ...) by an initializer holding its value, where the value is computed here from static shapes and
    integer constants. True when anything was replaced (shape inference should then run again)."""
    from onnx import TensorProto, numpy_helper

    g = model.graph
    shapes = _static_shapes(model)
    known: dict[str, np.ndarray] = {}
    int_types = {TensorProto.INT64, TensorProto.INT32, TensorProto.INT16, TensorProto.INT8, TensorProto.UINT8,
                 TensorProto.BOOL}
    for t in g.initializer:
        if t.data_type in int_types:
            arr = _int_array(t)
            if arr is not None:
                known[t.name] = arr
    produced: set[str] = set()
    for node in g.node:
        if node.op_type not in FOLDABLE or node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Constant":
            val = _attr(node, "value")
            if val is not None and val.data_type not in int_types:
                continue
        if node.op_type == "Cast" and _attr(node, "to") not in int_types:
            continue
        names = list(node.input)
        while names and not names[-1]:
            names.pop()  # trailing optional inputs left out
        sources = node.op_type in ("Shape", "Size", "Constant")  # read shapes or attributes, not values
        if not sources and not all(n in known for n in names):
            continue  # an input unknown, or an optional one left out before a given one
        try:
            with np.errstate(all="ignore"):
                val = _value(node, [] if sources else [known[n] for n in names], shapes)
        except (ValueError, IndexError, TypeError, OverflowError):
            val = None
        if val is not None and val.size <= MAX_FOLD_ELEMENTS and node.output and node.output[0]:
            known[node.output[0]] = np.asarray(val, dtype=np.int64)
            produced.add(node.output[0])
    existing = {t.name for t in g.initializer}
    changed = False
    for node in g.node:
        if node.output and node.output[0] in produced:
            continue  # shape arithmetic itself: the importer drops it
        for k, name in enumerate(node.input):
            if name not in produced:
                continue
            new = name + FOLDED_SUFFIX
            if new not in existing:
                g.initializer.append(numpy_helper.from_array(known[name], new))
                existing.add(new)
            node.input[k] = new
            changed = True
    return changed


def contrib_output_shapes(model: Any) -> bool:
    """Give the output of each onnxruntime ``com.microsoft.Attention`` node (no schema in the onnx package, so
    shape inference stops there) its shape [B, S, V] from its input [B, S, H] and weights [H, Q + K + V]
    (``qkv_hidden_sizes``, else three equal blocks), as a value_info. True when one was added."""
    from onnx import helper

    g = model.graph
    shapes = _static_shapes(model)
    changed = False
    for node in g.node:
        if node.op_type != "Attention" or node.domain != "com.microsoft" or not node.output or \
                node.output[0] in shapes or len(node.input) < 2:
            continue
        sx, sw = shapes.get(node.input[0]), shapes.get(node.input[1])
        if sx is None or sw is None or len(sx) != 3 or len(sw) != 2:
            continue
        sizes = _attr(node, "qkv_hidden_sizes") or [sw[1] // 3] * 3
        if len(sizes) != 3 or sizes[2] < 1:
            continue
        g.value_info.append(helper.make_tensor_value_info(node.output[0], 1, [sx[0], sx[1], int(sizes[2])]))
        changed = True
    return changed
