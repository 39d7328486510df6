"""A readable plain-text summary of one evaluation (the dict of the output contract)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from elk_dse.units import format_bytes


def fmt_seconds(s: float) -> str:
    """Seconds with a unit that keeps 3-4 significant digits (s, ms, us, ns)."""
    if s is None or not math.isfinite(s):
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(s) >= scale:
            return f"{s / scale:.4g} {unit}"
    return f"{s / 1e-9:.4g} ns"


fmt_bytes = format_bytes


def fmt_si(x: float, unit: str) -> str:
    """A number with an SI prefix (k, M, G, T, P) and a unit, e.g. 1.2 TFLOP/s."""
    if x is None or not math.isfinite(x):
        return "n/a"
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.4g} {prefix}{unit}"
    return f"{x:.4g} {unit}"


def summary(result: dict[str, Any]) -> str:
    """Multi-line summary: design, verdict, latency against the roofline, traffic, and where the time goes."""
    chip, model = result["chip"], result["model"]
    d = chip["derived"]
    lines = [
        f"chip      {chip['name']}: {d['num_cores']} cores, {fmt_bytes(d['total_sram_bytes'])} SRAM, "
        f"{fmt_si(d['peak_flops_per_s'], 'FLOP/s')} peak, HBM {fmt_si(d['hbm_bytes_per_s'], 'B/s')}, "
        f"{chip['interconnect']['topology']}",
        f"model     {model['name']} {model['phase']} batch {model['batch']}"
        + (f" kv_len {model['kv_len']}" if model["phase"] == "decode" else f" seq_len {model['seq_len']}")
        + f" ({model['ops']} operator instances), scheduler {result['scheduler']}, sim {result['sim']}",
    ]
    if not result["feasible"]:
        lines.append(f"INFEASIBLE ({result['infeasible_reason']}): {result['infeasible_detail']}")
        lines.append(f"roofline  {fmt_seconds(result['roofline_latency_s'])} (lower bound)")
        return "\n".join(lines)
    lines += [
        f"latency   {fmt_seconds(result['latency_s'])}   throughput {result['throughput_per_s']:.4g} /s",
        f"roofline  {fmt_seconds(result['roofline_latency_s'])} (compute {fmt_seconds(result['roofline_compute_s'])},"
        f" HBM {fmt_seconds(result['roofline_hbm_s'])}) -> {100 * result['roofline_fraction']:.1f}% of the bound",
        f"work      {fmt_si(result['flops'], 'FLOP')}, HBM {fmt_bytes(result['hbm_bytes'])} "
        f"(weights {fmt_bytes(result['weight_bytes'])}, KV {fmt_bytes(result['kv_cache_bytes'])}), "
        f"on-chip network {fmt_bytes(result['noc_bytes'])}",
        f"busy      compute {fmt_seconds(result['compute_busy_s'])}, network {fmt_seconds(result['noc_busy_s'])}, "
        f"HBM {fmt_seconds(result['hbm_busy_s'])}, sync {fmt_seconds(result['sync_busy_s'])}",
        f"silicon   {result['area_mm2']:.1f} mm^2, {result['power_w']:.1f} W ({result['static_power_w']:.1f} W static), "
        f"{result['energy_per_item_j'] * 1e3:.3g} mJ per item, {result['perf_per_w']:.3g} items/s/W",
    ]
    levels = result.get("energy_by_level")
    if levels:  # where the energy goes (cost/energy.py), largest first
        total = sum(levels.values()) or 1.0
        parts = sorted(levels.items(), key=lambda kv: -kv[1])
        lines.append("energy    " + ", ".join(f"{name} {100 * j / total:.0f}%" for name, j in parts)
                     + f" of {result['energy_j'] * 1e3:.3g} mJ per pass")
    by_kind: dict[str, float] = defaultdict(float)
    for op in result.get("ops", []):
        by_kind[op["kind"]] += op["end_s"] - op["load_start_s"]
    if by_kind:
        total = sum(by_kind.values()) or 1.0
        top = sorted(by_kind.items(), key=lambda kv: -kv[1])[:6]
        lines.append(
            "time by operator kind (load + run): " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in top)
        )
    return "\n".join(lines)


def sweep_highlights(df: Any, objectives: Sequence[tuple[str, str]], limit_params: int = 10) -> list[str]:
    """The closing lines of a sweep: the knee of the Pareto front and the best design per objective, each
    with its trial number, objective values and parameters. ``objectives`` are (metric column, direction)."""
    from elk_dse.results.pareto import knee_point, pareto_front
    from elk_dse.results.report import unique_designs  # one row per design, as the report's Pareto table
    from elk_dse.results.units import bare_name, format_quantity

    df = unique_designs(df)
    front = pareto_front(df, [{"name": c, "direction": d} for c, d in objectives]) if len(df) else df
    if front is None or len(front) == 0:
        return ["no feasible design yet: nothing to recommend (see the report's infeasibility reasons)"]

    def describe(row: Any) -> str:
        values = ", ".join(f"{bare_name(c)} {format_quantity(c, row[c])}" for c, _ in objectives)
        params = [(str(c)[6:], row[c]) for c in row.index if str(c).startswith("param.")
                  and row[c] is not None and row[c] == row[c]]
        plain = [(k, v.item() if hasattr(v, "item") else v) for k, v in params[:limit_params]]
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in plain)
        more = f" (+{len(params) - limit_params} more)" if len(params) > limit_params else ""
        return f"trial {int(row['trial'])} ({values}): {shown}{more}".rstrip(": ")

    lines = []
    if len(objectives) > 1:
        lines.append(f"knee of the Pareto front ({len(front)} designs): "
                     + describe(front.loc[knee_point(front, [{"name": c, "direction": d} for c, d in objectives])]))
    for column, direction in objectives:
        best = front[column].idxmin() if direction == "minimize" else front[column].idxmax()
        lines.append(f"best {bare_name(column)}: " + describe(front.loc[best]))
    return lines
