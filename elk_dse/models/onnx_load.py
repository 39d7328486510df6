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
    return load_onnx_bound(cfg)[0]


def load_onnx_bound(cfg: ModelConfig) -> tuple[Any, frozenset[str]]:
    """:func:`load_onnx` and the names of the graph inputs that had a symbolic dim bound from the config."""
    path = cfg.path
    bound: set[str] = set()
    if not path:
        raise ConfigError("model.path", path, "the ONNX file to import: model=onnx model.path=<file.onnx>")
    try:
        import onnx
    except ImportError as err:  # an optional dependency fails only when used
        raise onnx_error(path, f"importing ONNX needs the onnx package ({err}); pip install onnx") from None
    if not Path(path).is_file():
        raise onnx_error(path, "no such file")
    try:
        # Weights are never read: external data files may be absent (Stream / ZigZag ship shape-only models).
        model = onnx.load(path, load_external_data=False)
    except Exception as err:  # protobuf DecodeError, ...: the file is not a model
        raise onnx_error(path, f"not a valid ONNX model ({type(err).__name__}: {err})") from None
    if not model.graph.node:
        raise onnx_error(path, "the ONNX graph has no nodes (empty or truncated file)")
    _check_external_locations(model, path)
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
            bound.add(vi.name)
    # Symbolic shapes of intermediate values and outputs are stale once inputs are bound: shape inference
    # recomputes them. Fully static ones are kept (they give the shapes of custom ops such as Stream's Silu).
    keep = [vi for vi in model.graph.value_info if _static(vi)]
    del model.graph.value_info[:]
    model.graph.value_info.extend(keep)
    for vi in model.graph.output:
        if vi.type.HasField("tensor_type") and not _static(vi):
            vi.type.tensor_type.ClearField("shape")
    # No strict checker: it rejects initializers that carry shapes but no data, extra attributes (Stream's
    # Gemm act_size) and integer convs. Shape inference checks what the import needs; types are not checked
    # (int8 Conv), and a model it cannot fully infer strictly (an op without a schema) is inferred leniently:
    # every tensor the importer then uses must still have a static shape (onnx_import.py).
    inferred = _infer(model, path)
    # Shape arithmetic ONNX's data propagation does not follow (opset <= 13), and onnxruntime's Attention (no
    # schema here): fold / shape them and infer again, until nothing more changes (each round can give static
    # shapes to the next chain's Shape nodes).
    from elk_dse.models.onnx_fold import contrib_output_shapes, fold_shape_values, unshaped_outputs

    for _ in range(MAX_FOLD_ROUNDS):
        if not unshaped_outputs(inferred):
            break
        folded = fold_shape_values(inferred)
        if not (contrib_output_shapes(inferred) or folded):
            break
        inferred = _infer(inferred, path)
    return inferred, frozenset(bound)


MAX_FOLD_ROUNDS = 32  # rounds of folding shape arithmetic; each unblocks at least one chain


def _infer(model: Any, path: str) -> Any:
    """ONNX shape inference with data propagation: strict, else lenient; a one-line error when both fail."""
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=True, data_prop=True)
    except Exception as strict_err:
        try:
            return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
        except Exception:
            raise onnx_error(path, f"ONNX shape inference failed ({type(strict_err).__name__}: {strict_err})") \
                from None


def _static(vi: Any) -> bool:
    """A value_info with a tensor type whose every dim is a positive number."""
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return False
    dims = vi.type.tensor_type.shape.dim
    return all(d.HasField("dim_value") and d.dim_value > 0 for d in dims)


def _check_external_locations(model: Any, path: str) -> None:
    """External data is never read, but a location outside the model's folder is refused: a file that points
    there is not a model to trust."""
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key != "location":
                continue
            loc = Path(entry.value)
            if loc.is_absolute() or ".." in loc.parts:
                raise onnx_error(path, f"initializer '{t.name}' has external data outside the model's folder "
                                 f"({entry.value})")
