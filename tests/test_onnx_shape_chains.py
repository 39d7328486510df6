"""Shape arithmetic as exporters write it at opset 11-13 (issue 17, ninth session, 17u): ``x.view(x.size(0),
-1)`` and a multi-head reshape become ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` chains, which ONNX's
own shape inference follows only from opset 14 on. Before the fold (elk_dse/models/onnx_fold.py) every such file
was refused ("has no static shape after shape inference"). Files built with onnx.helper the way torch.onnx
writes them; numbers are hand counts, and the same graph at opset 14 (where ONNX folds it itself) must give
the same operators."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from elk_dse.models import ModelConfig, build_model  # noqa: E402


def shape_only(name: str, dims) -> TensorProto:
    t = TensorProto()
    t.name, t.data_type = name, TensorProto.FLOAT
    t.dims.extend(dims)
    return t


def const(out: str, values, scalar: bool = False):
    """A torch.onnx-style Constant node holding int64 values."""
    dims = [] if scalar else [len(values)]
    return helper.make_node("Constant", [], [out], value=helper.make_tensor(out + "_v", TensorProto.INT64, dims, values))


def unsqueeze0(x: str, y: str, opset: int) -> list:
    if opset >= 13:  # axes as an input from opset 13 on
        return [const(y + "_axes", [0]), helper.make_node("Unsqueeze", [x, y + "_axes"], [y])]
    return [helper.make_node("Unsqueeze", [x], [y], axes=[0])]


def dim_of(x: str, axis: int, y: str, opset: int) -> list:
    """x.size(axis) as a 1-element vector: Shape -> Gather(scalar index) -> Unsqueeze."""
    return [helper.make_node("Shape", [x], [y + "_shape"]), const(y + "_idx", [axis], scalar=True),
            helper.make_node("Gather", [y + "_shape", y + "_idx"], [y + "_s"], axis=0),
            *unsqueeze0(y + "_s", y, opset)]


def save(tmp_path, name, nodes, inputs, outputs, inits, opset) -> str:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="pytorch")
    path = tmp_path / f"{name}_op{opset}.onnx"
    path.write_bytes(model.SerializeToString())
    return str(path)


def cnn_view_flatten(tmp_path, opset: int) -> str:
    """Conv 3->64 3x3 stride 2 + BatchNorm + Relu, GlobalAveragePool, ``x.view(x.size(0), -1)``, Gemm 64->1000;
    batch dim named batch_size, weights absent."""
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], kernel_shape=[3, 3], pads=[1] * 4, strides=[2, 2]),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"]),
             helper.make_node("Relu", ["bn"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["gap"]),
             *dim_of("gap", 0, "n", opset), const("minus1", [-1]),
             helper.make_node("Concat", ["n", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["gap", "shape"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1)]
    inits = [shape_only("w", [64, 3, 3, 3]), *(shape_only(p, [64]) for p in "gbmv"),
             shape_only("fc_w", [1000, 64]), shape_only("fc_b", [1000])]
    return save(tmp_path, "cnn", nodes,
                [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, 224, 224])],
                [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", 1000])], inits, opset)


def attention_heads(tmp_path, opset: int, hidden: int = 64, heads: int = 4) -> str:
    """BERT's self-attention as torch.onnx writes it: q/k/v MatMuls, ``x.view(b, s, heads, d).transpose`` with
    b and s read by Shape chains, scores, Softmax, context, ``view(b, s, hidden)`` back, output MatMul."""
    d = hidden // heads
    nodes = [*dim_of("x", 0, "b", opset), *dim_of("x", 1, "s", opset),
             const("heads", [heads]), const("d", [d]), const("hid", [hidden]),
             helper.make_node("Concat", ["b", "s", "heads", "d"], ["split_shape"], axis=0),
             helper.make_node("Concat", ["b", "s", "hid"], ["merge_shape"], axis=0)]
    for p in "qkv":
        nodes += [helper.make_node("MatMul", ["x", f"w{p}"], [p]),
                  helper.make_node("Reshape", [p, "split_shape"], [p + "4"]),
                  helper.make_node("Transpose", [p + "4"], [p + "h"], perm=[0, 2, 3, 1] if p == "k" else [0, 2, 1, 3])]
    nodes += [helper.make_node("MatMul", ["qh", "kh"], ["scores"]),
              helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
              helper.make_node("MatMul", ["probs", "vh"], ["ctx"]),
              helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["merged"]),
              helper.make_node("MatMul", ["merged", "wo"], ["y"])]
    inits = [shape_only(f"w{p}", [hidden, hidden]) for p in "qkvo"]
    io = ["batch_size", "sequence_length", hidden]
    return save(tmp_path, "attn", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, io)],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, io)], inits, opset)


def load(path: str, batch: int = 2, seq_len: int = 16):
    return build_model(ModelConfig("onnx", phase="prefill", path=path, batch=batch, seq_len=seq_len))


def summary(graph):
    return [(op.kind, op.flops, tuple(op.dims)) for layer in graph.layers for op in layer.ops]


@pytest.mark.parametrize("opset", [11, 12, 13])
def test_view_flatten_chain_at_opsets_before_14(tmp_path, opset):
    g = load(cnn_view_flatten(tmp_path, opset))
    flops = {op.kind: 0.0 for layer in g.layers for op in layer.ops}
    for layer in g.layers:
        for op in layer.ops:
            flops[op.kind] += op.flops
    # conv 2 N M C P Q R S; the Gemm 2 N K C (K = 1000 classes, C = 64)
    assert flops["conv"] == 2 * 2 * 64 * 3 * 112 * 112 * 9
    assert flops["matmul"] == 2 * 2 * 1000 * 64
    assert g.parameter_bytes == 2 * (64 * 3 * 9 + 4 * 64 + 1000 * 64 + 1000)  # fp16, the default dtype
    assert summary(g) == summary(load(cnn_view_flatten(tmp_path, 14)))


@pytest.mark.parametrize("opset", [11, 13])
def test_multi_head_reshape_chains_at_opsets_before_14(tmp_path, opset):
    b, s, h, heads = 2, 16, 64, 4
    g = load(attention_heads(tmp_path, opset), batch=b, seq_len=s)
    mm = sum(op.flops for layer in g.layers for op in layer.ops if op.kind == "matmul")
    # 4 projections 2 b s h h; scores and context 2 b heads s s d each
    assert mm == 4 * 2 * b * s * h * h + 2 * 2 * b * heads * s * s * (h // heads)
    assert summary(g) == summary(load(attention_heads(tmp_path, 14), batch=b, seq_len=s))
    # bound dims follow the config: another batch and length give their own shapes, not the first file's
    g2 = load(attention_heads(tmp_path, opset), batch=3, seq_len=8)
    assert sum(op.flops for layer in g2.layers for op in layer.ops if op.kind == "softmax") == \
        5 * 3 * heads * 8 * 8


def ms_attention(tmp_path, hidden: int = 64, heads: int = 4, bias: bool = True, past: bool = False) -> str:
    """onnxruntime's transformers optimizer output for BERT self-attention: one com.microsoft Attention (fused
    QKV weights [H, 3H], bias, mask_index) and the output projection; dims batch_size / sequence_length."""
    ins = ["x", "w_qkv", "b_qkv" if bias else "", "mask"] + (["past"] if past else [])
    nodes = [helper.make_node("Attention", ins, ["ctx"], domain="com.microsoft", num_heads=heads, name="Attention_0"),
             helper.make_node("MatMul", ["ctx", "wo"], ["y"])]
    inits = [shape_only("w_qkv", [hidden, 3 * hidden]), shape_only("wo", [hidden, hidden])]
    inits += [shape_only("b_qkv", [3 * hidden])] if bias else []
    io = ["batch_size", "sequence_length", hidden]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, io),
              helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch_size", "sequence_length"])]
    if past:
        inputs.append(helper.make_tensor_value_info("past", TensorProto.FLOAT, [2, "batch_size", heads, 8, 16]))
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, io)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14), helper.make_opsetid("com.microsoft", 1)])
    path = tmp_path / f"ms_attention_{bias}_{past}.onnx"
    path.write_bytes(model.SerializeToString())
    return str(path)


def test_onnxruntime_fused_attention_counts_as_the_unfused_graph(tmp_path):
    """com.microsoft.Attention was refused ("does not model; set model.unsupported=passthrough", which would
    count it as one FLOP per output element: 2,048 instead of 933,888 here). Now: the same matmul and softmax
    FLOPs as the unfused export of the same layer, plus the bias add, and the fused weights as parameters."""
    b, s, h, heads = 2, 16, 64, 4
    fused = load(ms_attention(tmp_path, h, heads), batch=b, seq_len=s)
    unfused = load(attention_heads(tmp_path, 14, h, heads), batch=b, seq_len=s)

    def flops(g, kind):
        return sum(op.flops for layer in g.layers for op in layer.ops if op.kind == kind)

    for kind in ("matmul", "softmax"):
        assert flops(fused, kind) == flops(unfused, kind)
    assert flops(fused, "matmul") == 4 * 2 * b * s * h * h + 2 * 2 * b * heads * s * s * (h // heads)
    assert flops(fused, "elementwise") == b * s * 3 * h  # the QKV bias add
    assert fused.parameter_bytes == 2 * (h * 3 * h + 3 * h + h * h)
    no_bias = load(ms_attention(tmp_path, h, heads, bias=False), batch=b, seq_len=s)
    assert flops(no_bias, "elementwise") == 0 and flops(no_bias, "matmul") == flops(fused, "matmul")


def test_onnxruntime_attention_with_past_is_one_line(tmp_path):
    from elk_dse.errors import ConfigError

    with pytest.raises(ConfigError, match="past KV input"):
        load(ms_attention(tmp_path, past=True))
