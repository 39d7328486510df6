"""Shape-only ONNX files as Stream and ZigZag ship them: initializers with dims but no data, external data that
is absent, int8 / uint8 / bf16 / fp16 / fp8 / fp32 tensors, extra attributes, custom Silu, weights given as graph
inputs. Every file is built here with onnx.helper the way those tools write theirs (no file of theirs is
shipped); the numbers are hand counts."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from elk_dse.errors import ConfigError  # noqa: E402
from elk_dse.ir.graph import Role  # noqa: E402
from elk_dse.models import ModelConfig, build_model  # noqa: E402


def shape_only(name: str, dims, dtype=TensorProto.FLOAT, external: str = "") -> TensorProto:
    """An initializer with dims and no data (or data in an external file that is not there)."""
    t = TensorProto()
    t.name, t.data_type = name, dtype
    t.dims.extend(dims)
    if external:
        t.data_location = TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = "location", external
    return t


def save(tmp_path, nodes, inputs, outputs, inits, name="m.onnx", opsets=(("", 17),), value_info=()) -> str:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits, value_info=list(value_info))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return str(path)


def load(path: str, **kw):
    return build_model(ModelConfig("onnx", phase="prefill", path=path, **kw))


def macs(graph, kinds=("conv", "matmul")) -> int:
    return sum(op.points for layer in graph.layers for op in layer.ops if op.kind in kinds)


# --- ResNet-18, shape-only, external weights absent ---------------------------------------------------------

def resnet18(tmp_path) -> str:
    """torchvision's ResNet-18 at 224x224 as exported (Conv + BatchNormalization + Relu, MaxPool, Add,
    GlobalAveragePool, Flatten, Gemm with transB), every initializer in a resnet18.onnx.data that is absent."""
    nodes, inits = [], []
    counter = iter(range(1000))

    def conv(x: str, c_in: int, c_out: int, k: int, stride: int, relu: bool = True) -> str:
        i = next(counter)
        w, y = f"conv{i}.weight", f"conv{i}"
        inits.append(shape_only(w, [c_out, c_in, k, k], external="resnet18.onnx.data"))
        nodes.append(helper.make_node("Conv", [x, w], [y], name=f"Conv_{i}", kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4))
        bn = [f"bn{i}.{p}" for p in ("scale", "bias", "mean", "var")]
        inits.extend(shape_only(p, [c_out], external="resnet18.onnx.data") for p in bn)
        nodes.append(helper.make_node("BatchNormalization", [y, *bn], [f"{y}_bn"], name=f"BN_{i}"))
        if not relu:
            return f"{y}_bn"
        nodes.append(helper.make_node("Relu", [f"{y}_bn"], [f"{y}_relu"], name=f"Relu_{i}"))
        return f"{y}_relu"

    x = conv("input", 3, 64, 7, 2)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    x, c = "pool", 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            s = stride if block == 0 else 1
            a = conv(x, c, width, 3, s)
            b = conv(a, width, width, 3, 1, relu=False)
            short = conv(x, c, width, 1, s, relu=False) if (s != 1 or c != width) else x
            i = next(counter)
            nodes += [helper.make_node("Add", [b, short], [f"add{i}"]),
                      helper.make_node("Relu", [f"add{i}"], [f"out{i}"])]
            x, c = f"out{i}", width
    inits += [shape_only("fc.weight", [1000, 512], external="resnet18.onnx.data"),
              shape_only("fc.bias", [1000], external="resnet18.onnx.data")]
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
              helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1)]
    return save(tmp_path, nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
                [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])], inits, "resnet18.onnx")


def test_resnet18_shape_only_conv_gemm_macs(tmp_path):
    path = resnet18(tmp_path)
    assert not (tmp_path / "resnet18.onnx.data").exists()
    g = load(path)
    assert macs(g) == 1_814_073_344  # ResNet-18 at 224x224: 1,813,561,344 conv + 512,000 fc MACs
    # Parameters from shapes alone: torchvision's 11,689,512 plus BN's running mean and variance (buffers in
    # PyTorch, initializers in ONNX) over its 4,800 channels.
    assert dict(g.meta)["params"] == 11_689_512 + 2 * 4_800
    assert g.weight_bytes == 2 * (11_689_512 + 2 * 4_800)  # fp16 (model.dtype), whatever the file's type


# --- element types --------------------------------------------------------------------------------------

def gemm_file(tmp_path, dtype, name="gemm.onnx") -> str:
    """Stream's aie gemm_256_8192_2048 in miniature: a Gemm with Stream's extra attributes and a data-less
    weight initializer."""
    node = helper.make_node("Gemm", ["A", "B"], ["Y"], name="Gemm", act_size=16, weight_size=16, output_size=16,
                            alpha=1.0, beta=1.0, transA=0, transB=0)
    return save(tmp_path, [node], [helper.make_tensor_value_info("A", dtype, [64, 256])],
                [helper.make_tensor_value_info("Y", dtype, [64, 128])], [shape_only("B", [256, 128], dtype)], name)


@pytest.mark.parametrize("dtype", [TensorProto.BFLOAT16, TensorProto.FLOAT16, TensorProto.FLOAT,
                                   TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2])
def test_float_tensors_follow_model_dtype(tmp_path, dtype):
    """bf16 and fp8 are floats (their numpy kind is 'V'): weights stay weights (a matmul on the matrix unit)
    and every float tensor takes model.dtype's size."""
    path = gemm_file(tmp_path, dtype)
    sizes = {}
    for model_dtype in ("int8", "bf16", "fp32"):
        g = load(path, dtype=model_dtype)
        (op,) = g.layers[0].ops
        assert op.kind == "matmul" and op.uses_matrix_unit and op.inputs[1].role == Role.WEIGHT
        assert g.flops == 2 * 64 * 256 * 128
        sizes[model_dtype] = (g.weight_bytes, op.output_bytes)
    assert sizes == {"int8": (256 * 128, 64 * 128), "bf16": (2 * 256 * 128, 2 * 64 * 128),
                     "fp32": (4 * 256 * 128, 4 * 64 * 128)}


@pytest.mark.parametrize(("dtype", "size"), [(TensorProto.INT8, 1), (TensorProto.UINT8, 1)])
def test_integer_conv_keeps_its_element_size(tmp_path, dtype, size):
    """FSRCNN-style int8 / uint8 convs (a type the ONNX Conv schema does not allow): they import, and integer
    tensors keep their own size whatever model.dtype says."""
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h"], name="c1", kernel_shape=[5, 5], pads=[2] * 4),
             helper.make_node("Conv", ["h", "w2"], ["y"], name="c2", kernel_shape=[1, 1])]
    inits = [shape_only("w1", [56, 1, 5, 5], dtype), shape_only("w2", [12, 56, 1, 1], dtype)]
    path = save(tmp_path, nodes, [helper.make_tensor_value_info("x", dtype, [1, 1, 60, 90])],
                [helper.make_tensor_value_info("y", dtype, [1, 12, 60, 90])], inits)
    g = load(path, dtype="fp32")
    assert macs(g) == 60 * 90 * (56 * 25 + 12 * 56)
    assert g.weight_bytes == size * (56 * 25 + 12 * 56)
    assert g.layers[0].ops[0].inputs[0].bytes_per_element == size


# --- ops of Stream's SwiGLU and a transformer-ish graph -----------------------------------------------------

def swiglu(tmp_path, with_value_info: bool) -> str:
    """Stream's swiglu_<M>_<K>_<N>.onnx layout: Gemm_Left/Right, a custom-domain Silu, Mul, Gemm_Down."""
    m, k, n = 32, 64, 128
    bf = TensorProto.BFLOAT16
    attrs = dict(act_size=16, weight_size=16, output_size=16)
    nodes = [helper.make_node("Gemm", ["input", "weights_1"], ["left"], name="Gemm_Left", **attrs),
             helper.make_node("Gemm", ["input", "weights_2"], ["right"], name="Gemm_Right", **attrs),
             helper.make_node("Silu", ["left"], ["left_swished"], name="Silu", domain="com.example", **attrs),
             helper.make_node("Mul", ["left_swished", "right"], ["intermediate"], name="Elt_Mul"),
             helper.make_node("Gemm", ["intermediate", "weights_3"], ["output"], name="Gemm_Down", **attrs)]
    inits = [shape_only("weights_1", [k, n], bf), shape_only("weights_2", [k, n], bf),
             shape_only("weights_3", [n, k], bf)]
    vi = [helper.make_tensor_value_info(v, bf, [m, n]) for v in ("left", "right", "left_swished", "intermediate")]
    return save(tmp_path, nodes, [helper.make_tensor_value_info("input", bf, [m, k])],
                [helper.make_tensor_value_info("output", bf, [m, k])], inits, f"swiglu{int(with_value_info)}.onnx",
                opsets=(("", 17), ("com.example", 1)), value_info=vi if with_value_info else ())


@pytest.mark.parametrize("with_value_info", [True, False])
def test_stream_swiglu_with_custom_silu(tmp_path, with_value_info):
    """Silu has no ONNX schema: its shape comes from the file's value_info or, without one, from its input."""
    g = load(swiglu(tmp_path, with_value_info))
    kinds = {op.name: (op.kind, op.flops) for op in g.layers[0].ops}
    assert kinds["Silu"] == ("elementwise", 4.0 * 32 * 128) and kinds["Elt_Mul"] == ("elementwise", 32 * 128)
    assert macs(g) == 3 * 32 * 64 * 128
    assert g.weight_bytes == 3 * 64 * 128 * 2


def test_transformer_ops_shape_only(tmp_path):
    """LayerNormalization, MatMul, Gelu, Softmax, Reshape, Transpose, Split, Concat, Slice, AveragePool on
    data-less fp16 initializers."""
    f16 = TensorProto.FLOAT16
    i64 = helper.make_tensor
    consts = [i64("shape", TensorProto.INT64, [3], [8, 4, 16]), i64("starts", TensorProto.INT64, [1], [0]),
              i64("ends", TensorProto.INT64, [1], [32]), i64("axes", TensorProto.INT64, [1], [1]),
              i64("split", TensorProto.INT64, [2], [32, 32])]
    inits = [shape_only("ln.w", [64], f16), shape_only("ln.b", [64], f16), shape_only("w_in", [64, 64], f16),
             *consts]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln.w", "ln.b"], ["xn"], axis=-1),
        helper.make_node("MatMul", ["xn", "w_in"], ["h"]),
        helper.make_node("Gelu", ["h"], ["g"]),
        helper.make_node("Split", ["g", "split"], ["g1", "g2"], axis=1),
        helper.make_node("Concat", ["g2", "g1"], ["c"], axis=1),
        helper.make_node("Reshape", ["c", "shape"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0, 2]),
        helper.make_node("Softmax", ["t"], ["p"], axis=-1),
        helper.make_node("Slice", ["c", "starts", "ends", "axes"], ["s"]),
        helper.make_node("Reshape", ["s", "shape2"], ["s4"]),
        helper.make_node("AveragePool", ["s4"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    inits.append(i64("shape2", TensorProto.INT64, [4], [1, 8, 8, 4]))
    path = save(tmp_path, nodes, [helper.make_tensor_value_info("x", f16, [8, 64])],
                [helper.make_tensor_value_info("y", f16, [1, 8, 4, 2]),
                 helper.make_tensor_value_info("p", f16, [4, 8, 16])], inits, opsets=(("", 20),))
    g = load(path)
    kinds = {op.name or "": op.kind for op in g.layers[0].ops}
    assert sorted(set(kinds.values())) == ["elementwise", "layout", "matmul", "norm", "pool", "softmax"]
    assert macs(g) == 8 * 64 * 64
    assert g.weight_bytes == 2 * (64 * 64 + 2 * 64)


# --- weights that arrive as graph inputs ----------------------------------------------------------------------

def attention_head(tmp_path, batch_dim: bool = False) -> str:
    """Stream's testing/workload/attention_head.onnx: the Q/K/V matrices are graph inputs, not initializers."""
    bf = TensorProto.BFLOAT16
    nodes = [helper.make_node("MatMul", ["I", "wQ"], ["Q"]), helper.make_node("MatMul", ["I", "wK"], ["K"]),
             helper.make_node("MatMul", ["I", "wV"], ["V"]), helper.make_node("Transpose", ["K"], ["Kt"], perm=[1, 0]),
             helper.make_node("MatMul", ["Q", "Kt"], ["scores"]),
             helper.make_node("Softmax", ["scores"], ["attn"], axis=-1),
             helper.make_node("MatMul", ["attn", "V"], ["Y"])]
    seq = "seq" if batch_dim else 128
    ins = [helper.make_tensor_value_info("I", bf, [seq, 512]),
           *(helper.make_tensor_value_info(w, bf, [512, 64]) for w in ("wQ", "wK", "wV"))]
    return save(tmp_path, nodes, ins, [helper.make_tensor_value_info("Y", bf, [seq, 64])], [], "attention_head.onnx",
                opsets=(("", 13),))


def test_weight_inputs_rule_preloads_qkv(tmp_path):
    path = attention_head(tmp_path)
    g = load(path, dtype="bf16")
    weights = {t.name for layer in g.layers for op in layer.ops for t in op.inputs if t.role == Role.WEIGHT}
    assert weights == {"wQ", "wK", "wV"}  # static dims, only ever a MatMul's B operand
    assert g.weight_bytes == 3 * 512 * 64 * 2 and dict(g.meta)["params"] == 3 * 512 * 64
    none = load(path, dtype="bf16", weight_inputs="none")
    assert none.weight_bytes == 0
    one = load(path, dtype="bf16", weight_inputs="wQ")
    assert one.weight_bytes == 512 * 64 * 2


def test_weight_inputs_rule_skips_inputs_with_a_bound_dim_and_names_bad_names(tmp_path):
    path = attention_head(tmp_path, batch_dim=True)
    g = load(path, seq_len=128)
    weights = {t.name for layer in g.layers for op in layer.ops for t in op.inputs if t.role == Role.WEIGHT}
    assert weights == {"wQ", "wK", "wV"}  # I has the seq dim and is the A operand: an activation
    with pytest.raises(ConfigError) as err:
        load(path, weight_inputs="wQ,wX")
    assert err.value.field == "model.weight_inputs" and "wX" in str(err.value) and "\n" not in str(err.value)


def test_not_onnx_is_still_one_line(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("these are not the weights you are looking for\n" * 20)
    with pytest.raises(ConfigError) as err:
        load(str(path))
    assert err.value.field == "model.path" and "\n" not in str(err.value)
