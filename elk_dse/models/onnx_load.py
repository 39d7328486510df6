"""Loading an ONNX file for import: read and check it with the ``onnx`` package, bind its symbolic input dims
from the config, and run shape inference so that every tensor has a static shape (see onnx_import.py).

Every failure — a missing, truncated or garbage file, a failed check or shape inference, a dim that cannot
be bound — is a one-line :class:`ConfigError` naming ``model.path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elk_dse.errors import ConfigError
from elk_dse.models.config import ModelConfig

BATCH_NAMES = frozenset({"batch", "batch_size", "n", "b", "bs"})
SEQ_WORDS = ("seq", "sequence", "token", "length", "len")


def onnx_error(path: str, why: str) -> ConfigError:
    """A one-line error about ONNX file ``path``."""
    return ConfigError("model.path", path, " ".join(str(why).split())[:400])


def _bind(param: str, cfg: ModelConfig) -> int | None:
    """The length a symbolic dim takes: ``model.batch`` for batch-like names, ``model.seq_len`` for seq-like."""
    key = param.strip().lower()
    if key in BATCH_NAMES or "batch" in key:
        return cfg.batch
    if any(w in key for w in SEQ_WORDS):
        return cfg.seq_len
    return None


def load_onnx(cfg: ModelConfig) -> Any:
    """Load, check, bind and shape-infer ``cfg.path``; a ModelProto whose every tensor has a static shape."""
    path = cfg.path
    if not path:
        raise ConfigError("model.path", path, "the ONNX file to import: model=onnx model.path=<file.onnx>")
    try:
        import onnx
    except ImportError as err:  # an optional dependency fails only when used
        raise onnx_error(path, f"importing ONNX needs the onnx package ({err}); pip install onnx") from None
    if not Path(path).is_file():
        raise onnx_error(path, "no such file")
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
    except Exception as err:  # protobuf DecodeError, ValidationError, ...: the file is not a usable model
        raise onnx_error(path, f"not a valid ONNX model ({type(err).__name__}: {err})") from None
    if not model.graph.node:
        raise onnx_error(path, "the ONNX graph has no nodes (empty or truncated file)")
    inits = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            raise onnx_error(path, f"input '{vi.name}' has no shape")
        for k, dim in enumerate(vi.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            param = dim.dim_param if dim.HasField("dim_param") else ""
            value = _bind(param, cfg) if param else None
            if value is None:
                what = f"symbolic dim '{param}'" if param else "an unnamed dim"
                raise onnx_error(path, f"input '{vi.name}' axis {k} has {what} that cannot be bound: name it batch "
                                 "(bound to model.batch) or seq (bound to model.seq_len), or make it static")
            dim.Clear()
            dim.dim_value = value
    # Stale symbolic shapes of intermediate values and outputs are recomputed by shape inference.
    del model.graph.value_info[:]
    for vi in model.graph.output:
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as err:
        raise onnx_error(path, f"ONNX shape inference failed ({type(err).__name__}: {err})") from None
