"""A one-line "why is this design slow" per design, from its stored latency breakdown and roofline metrics.

Pure functions on one result row (the ``metric.*`` columns of ``results.parquet``) and the sweep's composed
config (``sweep.json``); no cost formula of its own: every number is one the evaluation stored. The line
names the biggest part of the latency and, when that part is compute, how busy the matrix units are while
computing (``flops / (peak_flops_per_s x breakdown_compute_s)``): a batch-1 decode can spend most of its time
"computing" at a few percent of the compute roof, because each matmul streams one row per weight tile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from elk_dse.results.units import format_quantity

PARTS = ("compute", "shift", "hbm_exposed", "sync", "idle")
_PART_TEXT = {
    "compute": "compute",
    "shift": "on-chip network time not hidden behind compute",
    "hbm_exposed": "waiting for HBM loads",
    "sync": "barriers and dispatch",
    "idle": "idle",
}
# Below this matrix-unit utilisation while computing, the line explains the low utilisation.
LOW_UTILISATION = 0.25


def _num(row: Mapping[str, Any], key: str) -> float:
    v = row.get(key, row.get("metric." + key))
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return f


def _lookup(config: Mapping[str, Any], row: Mapping[str, Any], key: str) -> Any:
    """A config value as the design had it: the searched parameter if the sweep varied it, else the composed
    config's value (``chip.cores.matrix_rows``)."""
    if f"param.{key}" in row and row[f"param.{key}"] is not None:
        return row[f"param.{key}"]
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def matrix_utilisation(row: Mapping[str, Any]) -> float:
    """FLOPs over what the matrix units could do during the compute part of the latency (0..1), NaN if the
    row lacks the numbers."""
    flops, peak, comp = _num(row, "flops"), _num(row, "peak_flops_per_s"), _num(row, "breakdown_compute_s")
    if not (flops >= 0 and peak > 0 and comp > 0):
        return math.nan
    return flops / (peak * comp)


def why_slow(row: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> str:
    """One sentence: the biggest part of the latency (with its share) and what limits it. ``row`` is one
    result row (``metric.`` prefix optional), ``config`` the sweep's composed config ({} if unknown)."""
    config = config or {}
    latency = _num(row, "latency_s")
    parts = {p: _num(row, f"breakdown_{p}_s") for p in PARTS}
    if not latency > 0 or not all(math.isfinite(v) for v in parts.values()):
        return "no latency breakdown stored"
    top = max(PARTS, key=lambda p: parts[p])
    share = parts[top] / latency
    text = f"{share:.0%} {_PART_TEXT[top]}"
    bound = _num(row, "roofline_latency_s")
    slack = latency / bound if bound > 0 else math.nan
    if math.isfinite(slack):
        text += f"; latency {slack:.2f}x its roofline bound"
    if top == "compute":
        u = matrix_utilisation(row)
        if math.isfinite(u):
            text += f"; matrix units {u:.1%} busy while computing"
            if u < LOW_UTILISATION:
                text += _low_utilisation_reason(row, config)
    elif top == "hbm_exposed":
        bw = _num(row, "hbm_bytes_per_s")
        if bw > 0:
            text += f" (HBM {format_quantity('hbm_bytes_per_s', bw)})"
        if slack < 1.5:
            text += ": close to the HBM roof; more HBM bandwidth helps"
        elif math.isfinite(slack):
            text += ": loads run far below the HBM roof (delivery over the on-chip network, too little preloading)"
    elif top == "shift":
        text += ": wider links or compute-shift overlap would hide it"
    elif top == "sync":
        text += ": many small operators, each paying its barriers"
    return text


def _low_utilisation_reason(row: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    model = config.get("model") if isinstance(config.get("model"), Mapping) else {}
    phase = model.get("phase") if isinstance(model, Mapping) else None
    batch = model.get("batch") if isinstance(model, Mapping) else None
    rows = _lookup(config, row, "chip.cores.matrix_rows")
    cols = _lookup(config, row, "chip.cores.matrix_cols")
    core_model = _lookup(config, row, "chip.cores.model")
    if phase != "decode" or not isinstance(batch, int | float):
        return " (small or padded matmul tiles)"
    m = int(batch)
    double = _lookup(config, row, "chip.cores.weight_double_buffer")
    if core_model in (None, "systolic") and isinstance(rows, int | float) and double is not None and bool(double):
        floor = _lookup(config, row, "chip.cores.matrix_min_tile_cycles") or 0
        speedup = _lookup(config, row, "chip.cores.weight_load_speedup") or 1.0
        tile = max(m, float(floor), float(rows) / float(speedup))  # issue 17: the next tile loads while this one streams
        ideal = m / tile
        return (f" (decode at batch {m}: {m} row{'s' if m != 1 else ''} per weight tile, so a {int(rows)}-row "
                f"systolic unit with double-buffered weights is busy at most m / {tile:g} cycles per tile "
                f"= {ideal:.1%})")
    if core_model in (None, "systolic") and isinstance(rows, int | float) and isinstance(cols, int | float):
        ideal = m / (m + float(rows) + float(cols))
        return (f" (decode at batch {m}: {m} row{'s' if m != 1 else ''} per weight tile, so a {int(rows)}x{int(cols)} "
                f"systolic unit is busy at most m/(m+rows+cols) = {ideal:.1%})")
    return f" (decode at batch {m}: {m} row{'s' if m != 1 else ''} per weight tile; tile setup dominates)"


#: Said once under a table of why-slow lines (report.py), not on every line.
LOW_UTILISATION_NOTE = (
    "Why a decode step can be mostly \"compute\" and still far below the compute roof: at batch m every matmul "
    "is a matrix-vector product per token, so each k x n weight tile loaded into a weight-stationary systolic "
    "unit has only m rows streaming through it, then rows + cols cycles of fill and drain (the core model's "
    "cycle count, elk_dse/cost/core_models.py). The cores are busy the whole time, so the breakdown counts it "
    "as compute, but the MACs do useful work in only m/(m+rows+cols) of those cycles. Larger batches or a "
    "smaller matrix unit raise it; more HBM bandwidth does not."
)
