"""ONNX import against hand computations: models are built here with onnx.helper, and every expected FLOP and
byte count is written out from the shapes (2 FLOPs per multiply-accumulate, ops.py's per-element counts)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from elk_dse.errors import ConfigError  # noqa: E402
from elk_dse.ir.graph import Role  # noqa: E402
from elk_dse.models import ModelConfig, build_model  # noqa: E402
from elk_dse.models.ops import Ops  # noqa: E402
from elk_dse.models.transformer import TransformerSpec, block_ops  # noqa: E402

F = TensorProto.FLOAT
BPE = 2  # model.dtype=fp16 (the default): weights and activations at 2 bytes, whatever the file stores


def init(name: str, *shape: int) -> TensorProto:
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def ints(name: str, values) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def scalar(name: str, value: float) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def save(tmp_path, nodes, inputs, outputs, inits, name="m", opset=18) -> str:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return str(path)


def load(path: str, **kw):
    return build_model(ModelConfig("onnx", phase="prefill", path=path, **kw))


# --- MLP ---------------------------------------------------------------------------------------------------


def mlp(tmp_path) -> str:
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["a"], name="relu"),
        helper.make_node("MatMul", ["a", "w2"], ["z"], name="fc2"),
        helper.make_node("Add", ["z", "b2"], ["y"], name="bias2"),
    ]
    x = helper.make_tensor_value_info("x", F, ["batch", 64])
    y = helper.make_tensor_value_info("y", F, ["batch", 10])
    return save(tmp_path, nodes, [x], [y], [init("w1", 64, 128), init("b1", 128), init("w2", 128, 10),
                                            init("b2", 10)], "mlp")


def test_mlp_flops_and_weight_bytes(tmp_path):
    g = load(mlp(tmp_path), batch=4)
    b = 4
    # fc1 with bias (epilogue, no FLOPs counted), ReLU 1 per element, fc2, a separate bias add 1 per element.
    assert g.flops == 2 * b * 64 * 128 + b * 128 + 2 * b * 128 * 10 + b * 10
    assert g.weight_bytes == (64 * 128 + 128 + 128 * 10 + 10) * BPE
    assert g.parameter_bytes == (64 * 128 + 128 + 128 * 10 + 10) * BPE
    ops = {o.name: o for o in g.layers[0].ops}
    assert ops["fc1"].kind == "matmul" and ops["fc1"].sizes == {"m": 4, "n": 128, "k": 64}
    assert ops["bias2"].output.role == Role.OUTPUT
    assert load(mlp(tmp_path), batch=8).flops == 2 * g.flops  # batch binds the symbolic dim


# --- Transformer block -------------------------------------------------------------------------------------

H, NH, D, FF = 64, 4, 16, 128


def rms_nodes(x: str, gamma: str, y: str, tag: str, reciprocal: bool) -> list:
    """The RMSNorm an exporter writes: Pow, ReduceMean, Add eps, Sqrt, Div (or Reciprocal + Mul), Mul gamma."""
    n = [
        helper.make_node("Pow", [x, "two"], [f"{tag}_sq"], name=f"{tag}_pow"),
        helper.make_node("ReduceMean", [f"{tag}_sq", "last"], [f"{tag}_ms"], name=f"{tag}_mean", keepdims=1),
        helper.make_node("Add", [f"{tag}_ms", "eps"], [f"{tag}_mse"], name=f"{tag}_eps"),
        helper.make_node("Sqrt", [f"{tag}_mse"], [f"{tag}_rms"], name=f"{tag}_sqrt"),
    ]
    if reciprocal:
        n += [helper.make_node("Reciprocal", [f"{tag}_rms"], [f"{tag}_inv"], name=f"{tag}_rec"),
              helper.make_node("Mul", [x, f"{tag}_inv"], [f"{tag}_n"], name=f"{tag}_scale")]
    else:
        n.append(helper.make_node("Div", [x, f"{tag}_rms"], [f"{tag}_n"], name=f"{tag}_div"))
    n.append(helper.make_node("Mul", [f"{tag}_n", gamma], [y], name=f"{tag}_gamma"))
    return n


def transformer_block(tmp_path) -> str:
    """A Llama-style block (RMSNorm, MHA with scaled softmax, SwiGLU) as PyTorch exports it."""
    mm = helper.make_node
    nodes = [*rms_nodes("x", "g1", "xn", "n1", reciprocal=False)]
    for p in "qkv":
        nodes.append(mm("MatMul", ["xn", f"w{p}"], [f"{p}0"], name=f"{p}_proj"))
        nodes.append(mm("Reshape", [f"{p}0", "heads_shape"], [f"{p}1"], name=f"{p}_reshape"))
    nodes += [
        mm("Transpose", ["q1"], ["q"], name="q_t", perm=[0, 2, 1, 3]),
        mm("Transpose", ["k1"], ["kt"], name="k_t", perm=[0, 2, 3, 1]),
        mm("Transpose", ["v1"], ["v"], name="v_t", perm=[0, 2, 1, 3]),
        mm("MatMul", ["q", "kt"], ["s0"], name="attn_score"),
        mm("Div", ["s0", "sqrt_d"], ["s1"], name="attn_scale"),
        mm("Softmax", ["s1"], ["p"], name="attn_softmax", axis=-1),
        mm("MatMul", ["p", "v"], ["c0"], name="attn_value"),
        mm("Transpose", ["c0"], ["c1"], name="ctx_t", perm=[0, 2, 1, 3]),
        mm("Reshape", ["c1", "hidden_shape"], ["ctx"], name="ctx_reshape"),
        mm("MatMul", ["ctx", "wo"], ["attn_out"], name="o_proj"),
        mm("Add", ["x", "attn_out"], ["h"], name="attn_residual"),
        *rms_nodes("h", "g2", "hn", "n2", reciprocal=True),
        mm("MatMul", ["hn", "wg"], ["gate"], name="gate_proj"),
        mm("MatMul", ["hn", "wu"], ["up"], name="up_proj"),
        mm("Sigmoid", ["gate"], ["sig"], name="sigmoid"),
        mm("Mul", ["gate", "sig"], ["silu"], name="silu"),
        mm("Mul", ["silu", "up"], ["act"], name="glu"),
        mm("MatMul", ["act", "wd"], ["mlp_out"], name="down_proj"),
        mm("Add", ["h", "mlp_out"], ["y"], name="mlp_residual"),
    ]
    inits = [init(f"w{p}", H, H) for p in "qkvo"] + [
        init("g1", H), init("g2", H), init("wg", H, FF), init("wu", H, FF), init("wd", FF, H),
        scalar("two", 2.0), scalar("eps", 1e-6), scalar("sqrt_d", D**0.5),
        ints("last", [-1]), ints("heads_shape", [0, 0, NH, D]), ints("hidden_shape", [0, 0, H]),
    ]
    x = helper.make_tensor_value_info("x", F, ["batch", "seq", H])
    y = helper.make_tensor_value_info("y", F, ["batch", "seq", H])
    return save(tmp_path, nodes, [x], [y], inits, "block")


def test_transformer_block_against_hand_count(tmp_path):
    b, s = 2, 8
    g = load(transformer_block(tmp_path), batch=b, seq_len=s)
    t = b * s
    flops = (
        4 * 2 * t * H * H  # q, k, v, o projections
        + 2 * 2 * b * NH * s * s * D  # QK^T and PV
        + 5 * b * NH * s * s  # softmax (the 1/sqrt(d) scale folded in)
        + 2 * 4 * t * H  # two RMSNorms
        + 2 * t * H  # two residual adds
        + 3 * 2 * t * H * FF  # gate, up, down
        + (3 + 1 + 1) * t * FF  # sigmoid, x * sigmoid, * up
    )
    assert g.flops == flops
    assert g.weight_bytes == (4 * H * H + 3 * H * FF + 2 * H) * BPE
    kinds = [o.kind for o in g.layers[0].ops]
    assert kinds.count("norm") == 2  # both decomposed RMSNorm patterns were fused
    assert kinds.count("layout") == 4  # the transposes; the reshapes are free address remaps
    assert kinds.count("softmax") == 1 and kinds.count("matmul") == 9


def test_transformer_block_matches_the_zoo(tmp_path):
    b, s = 2, 8
    g = load(transformer_block(tmp_path), batch=b, seq_len=s)
    spec = TransformerSpec(1, H, NH, NH, D, FF, 0, "swiglu", "rms")
    zoo = block_ops(Ops(BPE), spec, b, s, s)
    assert g.flops == sum(o.flops for o in zoo)
    assert g.weight_bytes == sum(o.bytes_by_role(Role.WEIGHT) for o in zoo)


# --- CNN ---------------------------------------------------------------------------------------------------


def cnn(tmp_path) -> str:
    mm = helper.make_node
    nodes = [
        mm("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", strides=[2, 2], pads=[1, 1, 1, 1]),
        mm("Relu", ["c1"], ["r1"], name="relu1"),
        mm("Conv", ["r1", "w2"], ["c2"], name="grouped", group=4, dilations=[2, 2], pads=[2, 2, 2, 2]),
        mm("Conv", ["c2", "w3"], ["c3"], name="depthwise", group=16, strides=[2, 2], pads=[1, 1, 1, 1]),
        mm("MaxPool", ["c3"], ["m"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        mm("GlobalAveragePool", ["m"], ["gap"], name="gap"),
        mm("Flatten", ["gap"], ["flat"], name="flatten"),
        mm("Gemm", ["flat", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    inits = [init("w1", 16, 3, 3, 3), init("b1", 16), init("w2", 16, 4, 3, 3), init("w3", 16, 1, 3, 3),
             init("wf", 10, 16), init("bf", 10)]
    x = helper.make_tensor_value_info("x", F, ["N", 3, 32, 32])
    y = helper.make_tensor_value_info("y", F, ["N", 10])
    return save(tmp_path, nodes, [x], [y], inits, "cnn")


def test_cnn_strided_grouped_depthwise(tmp_path):
    n = 3
    g = load(cnn(tmp_path), batch=n)
    ops = {o.name: o for o in g.layers[0].ops}
    # conv1: (32 + 2 - 3) // 2 + 1 = 16; grouped (dilation 2, pad 2): 16 + 4 - 5 + 1 = 16; depthwise stride 2:
    # (16 + 2 - 3) // 2 + 1 = 8; max pool 2/2: 4; global pool: 1.
    assert ops["conv1"].sizes == {"n": n, "k": 16, "c": 3, "p0": 16, "p1": 16, "r0": 3, "r1": 3}
    assert ops["grouped"].sizes == {"n": n, "g": 4, "k": 4, "c": 4, "p0": 16, "p1": 16, "r0": 3, "r1": 3}
    assert ops["depthwise"].sizes == {"n": n, "g": 16, "k": 1, "c": 1, "p0": 8, "p1": 8, "r0": 3, "r1": 3}
    flops = (
        2 * n * 16 * 3 * 16 * 16 * 9  # conv1: every output channel sees all 3 input channels
        + n * 16 * 16 * 16  # ReLU
        + 2 * n * 16 * (16 // 4) * 16 * 16 * 9  # grouped: 4 of the 16 input channels per output channel
        + 2 * n * 16 * 1 * 8 * 8 * 9  # depthwise: 1 input channel per output channel
        + n * 16 * 4 * 4 * (2 * 2)  # max pool: one compare per window tap
        + n * 16 * 4 * 4  # global average pool: one add per element
        + 2 * n * 16 * 10  # classifier
    )
    assert g.flops == flops
    assert g.weight_bytes == (16 * 3 * 9 + 16 + 16 * 4 * 9 + 16 * 1 * 9 + 10 * 16 + 10) * BPE
    # The padded, strided window reads the whole (unpadded) input exactly once.
    assert ops["conv1"].tensor_bytes(ops["conv1"].inputs[0]) == n * 3 * 32 * 32 * BPE
    # The dilated window over the 16x16 map covers it all: (16-1)*1 + (3-1)*2 + 1 = 20, capped at 16.
    assert ops["grouped"].tensor_bytes(ops["grouped"].inputs[0]) == n * 16 * 16 * 16 * BPE


# --- Layout operators --------------------------------------------------------------------------------------


def test_concat_split_slice_gather_read_what_they_copy(tmp_path):
    mm = helper.make_node
    nodes = [
        mm("Concat", ["a", "b"], ["ab"], name="cat", axis=1),  # [2, 8+24, 4]
        mm("Split", ["ab", "split"], ["s1", "s2"], name="split", axis=1),  # [2, 12, 4], [2, 20, 4]
        mm("Slice", ["s2", "starts", "ends", "axes"], ["sl"], name="slice"),  # [2, 5, 4]
        mm("Gather", ["sl", "idx"], ["ga"], name="gather", axis=1),  # [2, 3, 4]
        mm("Gather", ["table", "tok"], ["emb"], name="embed"),  # [2, 4] rows of a [100, 4] table
        mm("Identity", ["ga"], ["z"], name="id"),
    ]
    inits = [ints("split", [12, 20]), ints("starts", [0]), ints("ends", [5]), ints("axes", [1]),
             ints("idx", [0, 2, 4]), init("table", 100, 4), ints("tok", [1, 7])]
    a = helper.make_tensor_value_info("a", F, [2, 8, 4])
    b = helper.make_tensor_value_info("b", F, [2, 24, 4])
    outs = [helper.make_tensor_value_info(n, F, shape) for n, shape in
            (("z", [2, 3, 4]), ("s1", [2, 12, 4]), ("emb", [2, 4]))]
    g = load(save(tmp_path, nodes, [a, b], outs, inits, "layout"))
    ops = {o.name: o for o in g.layers[0].ops}
    assert g.flops == 0
    reads = {n: sum(o.tensor_bytes(t) for t in o.inputs) for n, o in ops.items()}
    assert reads["cat"] == (2 * 8 * 4 + 2 * 24 * 4) * BPE and ops["cat"].output_bytes == 2 * 32 * 4 * BPE
    assert reads["split"] == 2 * 12 * 4 * BPE and reads["split.1"] == 2 * 20 * 4 * BPE
    assert reads["slice"] == 2 * 5 * 4 * BPE and reads["gather"] == 2 * 3 * 4 * BPE
    # An embedding reads only its 2 rows of 4 (the table of 100 rows is the parameter).
    assert ops["embed"].kind == "embedding" and g.weight_bytes == 2 * 4 * BPE
    assert g.parameter_bytes == 100 * 4 * BPE
    assert "id" not in ops  # Identity is a name for the same bytes


# --- Bad input ---------------------------------------------------------------------------------------------


def one_line(err: ConfigError) -> str:
    msg = str(err)
    assert "\n" not in msg and err.field == "model.path"
    return msg


def test_truncated_and_garbage_files(tmp_path):
    good = transformer_block(tmp_path)
    data = open(good, "rb").read()
    for k, blob in enumerate((data[: len(data) // 2], data[:7], b"not an onnx model at all\x00\xff")):
        bad = tmp_path / f"bad{k}.onnx"
        bad.write_bytes(blob)
        with pytest.raises(ConfigError) as err:
            load(str(bad))
        assert str(bad) in one_line(err.value)
    with pytest.raises(ConfigError, match="no such file"):
        load(str(tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError, match="model=onnx model.path"):
        load("")


def test_unbindable_dim_names_input_and_dim(tmp_path):
    x = helper.make_tensor_value_info("x", F, ["batch", "features"])
    y = helper.make_tensor_value_info("y", F, ["batch", "features"])
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="r")], [x], [y], [], "free")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert "input 'x' axis 1 has symbolic dim 'features' that cannot be bound" in one_line(err.value)


def test_unsupported_op_names_type_and_node_and_passthrough(tmp_path):
    nodes = [helper.make_node("CumSum", ["x", "axis"], ["c"], name="running_total"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    x = helper.make_tensor_value_info("x", F, ["batch", 16])
    y = helper.make_tensor_value_info("y", F, ["batch", 16])
    path = save(tmp_path, nodes, [x], [y], [ints("axis", 1)], "cumsum")
    with pytest.raises(ConfigError) as err:
        load(path, batch=2)
    msg = one_line(err.value)
    assert "'running_total'" in msg and "CumSum" in msg and "model.unsupported=passthrough" in msg
    g = load(path, batch=2, unsupported="passthrough")
    # The pass-through counts 1 FLOP per output element (2 x 16), then the ReLU's 2 x 16.
    assert g.flops == 2 * 16 + 2 * 16
    with pytest.raises(ConfigError) as err:
        ModelConfig("onnx", phase="prefill", unsupported="ignore")
    assert err.value.field == "unsupported"


def test_cli_bad_file_or_dim_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "trunc.onnx"
    bad.write_bytes(open(mlp(tmp_path), "rb").read()[:50])
    x = helper.make_tensor_value_info("x", F, ["batch", "channels"])
    y = helper.make_tensor_value_info("y", F, ["batch", "channels"])
    unbound = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="r")], [x], [y], [], "unbound")
    for path, words in ((bad, "not a valid ONNX model"), (unbound, "'channels' that cannot be bound")):
        run = subprocess.run([sys.executable, "-m", "elk_dse", "evaluate", "+chip=mesh64", "model=onnx",
                              f"model.path={path}"], capture_output=True, text=True, timeout=120)
        assert run.returncode == 2
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "model.path" in lines[0] and words in lines[0], run.stderr


# --- LayerNorm patterns, scale folding, training an imported model ---------------------------------------


def layernorm_model(tmp_path, decomposed: bool) -> str:
    mm = helper.make_node
    if decomposed:  # as torch.onnx exports LayerNorm before opset 17
        nodes = [
            mm("ReduceMean", ["x", "last"], ["mu"], name="ln_mean", keepdims=1),
            mm("Sub", ["x", "mu"], ["xc"], name="ln_sub"),
            mm("Pow", ["xc", "two"], ["sq"], name="ln_pow"),
            mm("ReduceMean", ["sq", "last"], ["var"], name="ln_var", keepdims=1),
            mm("Add", ["var", "eps"], ["ve"], name="ln_eps"),
            mm("Sqrt", ["ve"], ["sd"], name="ln_sqrt"),
            mm("Div", ["xc", "sd"], ["xh"], name="ln_div"),
            mm("Mul", ["xh", "gamma"], ["xg"], name="ln_gamma"),
            mm("Add", ["xg", "beta"], ["xn"], name="ln_beta"),
        ]
    else:
        nodes = [mm("LayerNormalization", ["x", "gamma", "beta"], ["xn"], name="ln", axis=-1)]
    nodes += [mm("MatMul", ["xn", "w"], ["s"], name="proj"),
              mm("Mul", ["s", "scale"], ["ss"], name="scale"),
              mm("Softmax", ["ss"], ["y"], name="softmax", axis=-1)]
    inits = [init("gamma", H), init("beta", H), init("w", H, 32), scalar("two", 2.0), scalar("eps", 1e-5),
             scalar("scale", 0.125), ints("last", [-1])]
    x = helper.make_tensor_value_info("x", F, ["batch", "seq", H])
    y = helper.make_tensor_value_info("y", F, ["batch", "seq", 32])
    return save(tmp_path, nodes, [x], [y], inits, "ln_decomposed" if decomposed else "ln_native")


@pytest.mark.parametrize("decomposed", [True, False])
def test_layernorm_pattern_and_native_op_count_alike(tmp_path, decomposed):
    b, s = 2, 8
    g = load(layernorm_model(tmp_path, decomposed), batch=b, seq_len=s)
    t = b * s
    # LayerNorm with gamma and beta: 7 FLOPs per element; the projection; the scale folded into the softmax.
    assert g.flops == 7 * t * H + 2 * t * H * 32 + 5 * t * 32
    assert g.weight_bytes == (2 * H + H * 32) * BPE
    assert [o.kind for o in g.layers[0].ops] == ["norm", "matmul", "softmax"]


def test_imported_model_trains(tmp_path):
    # The MLP of test_mlp_flops_and_weight_bytes as a training step: forward, loss on the 10 outputs, backward
    # (fc2: dX and dW; the bias add's gradient: its input and its bias; ReLU; fc1: dW and its bias only, as its
    # input is the model input), and Adam over the 64*128 + 128 + 128*10 + 10 parameters.
    b = 4
    g = build_model(ModelConfig("onnx", phase="train", path=mlp(tmp_path), batch=b))
    forward = 2 * b * 64 * 128 + b * 128 + 2 * b * 128 * 10 + b * 10
    loss = 6 * b * 10
    backward = (b * 10 + b * 10) + 2 * (2 * b * 128 * 10) + b * 128 + (2 * b * 64 * 128 + b * 128)
    params = 64 * 128 + 128 + 128 * 10 + 10
    assert g.flops == forward + loss + backward + 12 * params
    assert g.gradient_bytes == params * BPE
