"""Conformance suite of the Hugging Face ``model_type`` registry (``elk_dse.models.hf.HF_TYPES``).

Every registered type's example config (``register_hf_type(name, example)``) must:

- build in every decoder phase (decode, prefill, train) with the same parameter count, positive FLOPs and
  weight bytes; decode reads and writes KV cache, prefill writes it, train has gradients;
- keep parameter bytes = parameters x 2 at bf16, and weight bytes growing with batch only through gathered
  embedding rows and loaded experts (never below the batch-1 step);
- scale exactly with layers: doubling ``num_hidden_layers`` (or ``n_layer``) doubles the per-layer share of
  the parameters;
- turn every removed required field into a one-line :class:`ConfigError` naming ``model.arch.<field>``, never
  another exception;
- evaluate on a small chip with a latency no better than the roofline bound.

Use from a test: ``for name in HF_TYPES: check_hf_type(name)`` (tests/test_model_conformance.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elk_dse.errors import ConfigError
from elk_dse.models.config import ModelConfig
from elk_dse.models.hf import HF_TYPES, arch_spec
from elk_dse.models.training import training_graph
from elk_dse.models.transformer import decoder_graph

PHASES = ("decode", "prefill", "train")
_LAYER_KEYS = ("num_hidden_layers", "n_layer")


def _graph(arch: Mapping[str, Any], phase: str, batch: int = 2):
    cfg = ModelConfig("hf", phase=phase, batch=batch, seq_len=16, kv_len=24, dtype="bf16")
    graph = decoder_graph(arch_spec(arch), cfg)
    return training_graph(graph, cfg) if phase == "train" else graph  # as build_model does


def _params(arch: Mapping[str, Any]) -> int:
    return int(dict(_graph(arch, "decode").meta)["params"])


def _fail(model_type: str, what: str) -> AssertionError:
    return AssertionError(f"model_type {model_type}: {what}")


def check_phases(model_type: str) -> None:
    """Every phase builds, with one parameter count and the roles each phase must have."""
    example = HF_TYPES[model_type].example
    params = {phase: dict(_graph(example, phase).meta)["params"] for phase in PHASES}
    if len(set(params.values())) != 1 or not params["decode"] > 0:
        raise _fail(model_type, f"parameters differ between phases or are not positive: {params}")
    decode, prefill, train = (_graph(example, p) for p in PHASES)
    for phase, g in zip(PHASES, (decode, prefill, train), strict=True):
        if not (g.flops > 0 and g.weight_bytes > 0):
            raise _fail(model_type, f"{phase}: FLOPs {g.flops} and weight bytes {g.weight_bytes} must be > 0")
        if g.parameter_bytes != 2 * params["decode"]:
            raise _fail(model_type, f"{phase}: parameter bytes {g.parameter_bytes} != 2 x {params['decode']} (bf16)")
    if not (decode.kv_cache_read_bytes > 0 and decode.kv_cache_write_bytes > 0):
        raise _fail(model_type, "decode must read and write KV cache")
    if not (prefill.kv_cache_write_bytes > 0 and prefill.kv_cache_read_bytes == 0):
        raise _fail(model_type, "prefill writes KV cache and attends over fresh keys")
    if not train.gradient_bytes > 0:
        raise _fail(model_type, "train has no gradients")
    if _graph(example, "decode", batch=8).weight_bytes < decode.weight_bytes:
        raise _fail(model_type, "a larger batch read fewer weight bytes")


def check_layer_scaling(model_type: str) -> None:
    """Doubling the layers doubles the layers' share of the parameters."""
    example = dict(HF_TYPES[model_type].example)
    key = next(k for k in _LAYER_KEYS if k in example)
    n = int(example[key])
    one, base, double = (_params({**example, key: m}) for m in (1, n, 2 * n))
    per_layer = base - one  # layers beyond the first (a leading dense layer may differ)
    if per_layer <= 0:
        raise _fail(model_type, f"parameters do not grow with layers ({one} at 1 layer, {base} at {n})")
    if n > 1 and double - base != per_layer * n // (n - 1):
        raise _fail(model_type, f"params at {n} and {2 * n} layers ({base}, {double}) are not linear in layers")


def check_missing_fields(model_type: str) -> None:
    """Removing any integer field of the example either keeps a documented default or raises a ConfigError
    naming that field (never another exception)."""
    example = HF_TYPES[model_type].example
    for key, value in example.items():
        if key == "model_type" or isinstance(value, bool) or not isinstance(value, int):
            continue
        reduced = {k: v for k, v in example.items() if k != key}
        try:
            _params(reduced)
        except ConfigError as err:
            if key not in err.field and key not in str(err):
                raise _fail(model_type, f"without '{key}' the error names {err.field}: {err}") from None
            if "\n" in str(err):
                raise _fail(model_type, f"the error is not one line: {err!r}") from None


def check_roofline(model_type: str) -> None:
    """No simulated latency beats the roofline bound (decode and prefill on a 16-core chip)."""
    from elk_dse.evaluate import evaluate_graph
    from elk_dse.hw.chip import chip_from_dict

    chip = chip_from_dict({
        "name": "mesh16", "clock_ghz": 1.0,
        "cores": {"count": 16, "grid": [4, 4], "sram_kib": 1024, "model": "systolic", "matrix_rows": 16,
                  "matrix_cols": 16, "vector_lanes": 32, "op_overhead_cycles": 50, "overlap_compute_comm": True},
        "interconnect": {"topology": "mesh", "link_bytes_per_cycle": 32, "hop_latency_cycles": 2,
                         "barrier_cycles": 100},
        "hbm": {"bandwidth_gb_s": 400, "capacity_gib": 32, "channels": 8, "attach": "edge"},
    })
    for phase in ("decode", "prefill"):
        r = evaluate_graph(_graph(HF_TYPES[model_type].example, phase), chip, include_ops=False)
        if not r["feasible"]:
            raise _fail(model_type, f"{phase} infeasible on a 16-core chip: {r['infeasible_reason']}")
        if r["latency_s"] < r["roofline_latency_s"] * (1 - 1e-9):
            raise _fail(model_type, f"{phase} latency {r['latency_s']} beats the roofline {r['roofline_latency_s']}")


def check_hf_type(model_type: str) -> None:
    """Every check of this module on one registered model_type."""
    check_phases(model_type)
    check_layer_scaling(model_type)
    check_missing_fields(model_type)
    check_roofline(model_type)
