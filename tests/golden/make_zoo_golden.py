"""Regenerate tests/golden/zoo.json: FLOPs, bytes and analytic latency of every shipped zoo model on mesh64 (HBM raised to 512 GiB).

Run from the repository root (``python tests/golden/make_zoo_golden.py``) only when a change is *meant* to move
the zoo's numbers, and say why in the commit. ``tests/test_zoo_golden.py`` compares against the file exactly.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOLDEN = HERE / "zoo.json"
PHASES = ("decode", "prefill")
# Models loaded from files given by the user, not part of the zoo.
NOT_ZOO = frozenset({"onnx", "hf"})
# mesh64 with its HBM capacity raised from 32 to 512 GiB, so that the 27-70B models fit and have a latency.
HBM_GIB = 512


def zoo_models() -> list[str]:
    """Names of the shipped zoo models: conf/model/*.yaml except the importers."""
    return sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml") if p.stem not in NOT_ZOO)


def graph_digest(graph) -> str:
    """A digest of every operator of the graph (names, dims, tensors, FLOPs) and the layer repeats."""
    h = hashlib.sha256()
    for layer in graph.layers:
        h.update(repr((layer.name, layer.repeat)).encode())
        for op in layer.ops:
            h.update(repr(op).encode())
    return h.hexdigest()[:16]


def entry(name: str, phase: str) -> dict:
    from elk_dse.cli import compose_config
    from elk_dse.evaluate import evaluate
    from elk_dse.models import build_model
    from elk_dse.search.trial import design_point

    cfg = compose_config(["+chip=mesh64", f"chip.hbm.capacity_gib={HBM_GIB}", f"model={name}",
                          f"model.phase={phase}"])
    point = design_point({k: cfg[k] for k in ("chip", "model", "scheduler", "sim")})

    graph = build_model(point.model)
    r = evaluate(point, include_ops=False)
    return {
        "feasible": r["feasible"],
        "infeasible_reason": r["infeasible_reason"],
        "flops": r["flops"],
        "weight_bytes": r["weight_bytes"],
        "kv_cache_bytes": r["kv_cache_bytes"],
        "parameter_bytes": r["parameter_bytes"],
        "hbm_bytes": r["hbm_bytes"],
        "latency_s": r["latency_s"],
        "params": dict(graph.meta).get("params"),
        "ops": graph_digest(graph),
    }


def golden() -> dict:
    from elk_dse.models import MODELS

    out: dict = {}
    for name in zoo_models():
        for phase in PHASES:
            if phase in MODELS[name].phases:
                out[f"{name}/{phase}"] = entry(name, phase)
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    GOLDEN.write_text(json.dumps(golden(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
