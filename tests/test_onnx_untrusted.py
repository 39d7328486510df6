"""Untrusted ONNX files: random byte and protobuf mutations of real models never crash the importer with
anything but the one-line ConfigError naming model.path; external data may not point outside the model's
folder (and is never read: the importer needs shapes, not weights)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from elk_dse.errors import ConfigError  # noqa: E402
from elk_dse.models import ModelConfig, build_model  # noqa: E402


def mlp_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["a"], name="relu"),
             helper.make_node("MatMul", ["a", "w2"], ["y"], name="fc2")]
    inits = [numpy_helper.from_array(np.ones((64, 256), np.float32), "w1"),
             numpy_helper.from_array(np.ones((256,), np.float32), "b1"),
             numpy_helper.from_array(np.ones((256, 10), np.float32), "w2")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


MLP_BYTES = mlp_model().SerializeToString()


def import_bytes(tmp_path, data: bytes):
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    return build_model(ModelConfig("onnx", phase="prefill", path=str(path)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_byte_mutations_import_or_fail_with_one_line(tmp_path, data):
    blob = bytearray(MLP_BYTES)
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "splice"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "insert":
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    else:
        i, j = sorted(data.draw(st.lists(st.integers(0, len(blob)), min_size=2, max_size=2)))
        blob = blob[:i] + blob[j:] + blob[i:j]
    try:
        graph = import_bytes(tmp_path, bytes(blob))
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message and "model.path" in message
        return
    assert graph.flops >= 0 and graph.weight_bytes >= 0


FIELDS = ["op_type", "input", "output", "attribute_i", "dims", "data_type", "dim_value"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), node=st.integers(0, 2), value=st.integers(-2**40, 2**40),
       text=st.text(min_size=0, max_size=6))
def test_protobuf_field_mutations_import_or_fail_with_one_line(tmp_path, field, node, value, text):
    model = mlp_model()
    n = model.graph.node[node]
    if field == "op_type":
        n.op_type = text or "Conv"
    elif field == "input":
        n.input[0] = text
    elif field == "output":
        n.output[0] = text
    elif field == "attribute_i":
        n.attribute.append(helper.make_attribute("transB", value))
    elif field == "dims":
        model.graph.initializer[node].dims[0] = value
    elif field == "data_type":
        model.graph.initializer[node].data_type = value % 30
    else:
        model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = value
    try:
        graph = import_bytes(tmp_path, model.SerializeToString())
    except ConfigError as err:
        assert "\n" not in str(err) and "model.path" in str(err)
        return
    assert graph.flops >= 0 and graph.weight_bytes >= 0


def with_external_weight(tmp_path, location: str) -> str:
    model = mlp_model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", location
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return str(path)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_model_folder_is_refused(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(np.ones((64, 256), np.float32).tobytes())
    path = with_external_weight(tmp_path, location)
    with pytest.raises(ConfigError, match=r"model\.path.*outside") as info:
        build_model(ModelConfig("onnx", phase="prefill", path=path))
    assert "\n" not in str(info.value)


def test_external_data_inside_the_folder_is_fine_and_its_shape_counts(tmp_path):
    path = with_external_weight(tmp_path, "weights.bin")
    (tmp_path / "model" / "weights.bin").write_bytes(np.ones((64, 256), np.float32).tobytes())
    graph = build_model(ModelConfig("onnx", phase="prefill", path=path))
    assert graph.weight_bytes == 2 * (64 * 256 + 256 + 256 * 10)  # fp16 weights, whatever the file stores
