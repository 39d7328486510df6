"""Plot data (pure functions, tested) and drawing (matplotlib Agg, PNG files) for sweep reports.

Pareto plots live here; the roofline plots live in :mod:`elk_dse.results.roofline` and are re-exported,
so ``elk_dse.results.plots`` is the one place to import plotting from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from elk_dse.results._mpl import COLORS as _COLORS
from elk_dse.results._mpl import finish, plt
from elk_dse.results._mpl import frozen as _frozen
from elk_dse.results._mpl import mpl_text as _mpl_text
from elk_dse.results.pareto import feasible_mask, knee_point, pareto_mask, resolve_column
from elk_dse.results.roofline import (
    EDGE_FACTOR,
    ROOF_RTOL,
    RooflineOpsData,
    RooflineSweepData,
    draw_roofline_ops,
    draw_roofline_sweep,
    roofline_ops_data,
    roofline_sweep_data,
)
from elk_dse.results.units import axis_label, bare_name, unit_for

__all__ = [
    "EDGE_FACTOR",
    "ROOF_RTOL",
    "ParetoData",
    "RooflineOpsData",
    "RooflineSweepData",
    "draw_pareto",
    "draw_roofline_ops",
    "draw_roofline_sweep",
    "pareto_data",
    "roofline_ops_data",
    "roofline_sweep_data",
]


# ---- Pareto ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParetoData:
    """Points of one sweep in the (x, y) objective plane, base units; flags are mutually exclusive.

    ``front``: feasible and non-dominated in this plane; ``dominated``: feasible, not on the front;
    ``infeasible``: INFEASIBLE / FAIL or not feasible. ``knee`` is a position in the arrays (or None).
    Rows with a NaN x or y cannot be drawn and are only counted in ``n_missing``.
    """

    x: str
    y: str
    directions: tuple[str, str]
    label: str
    trial: np.ndarray
    x_values: np.ndarray
    y_values: np.ndarray
    front: np.ndarray
    dominated: np.ndarray
    infeasible: np.ndarray
    knee: int | None
    n_missing: int


def pareto_data(df: pd.DataFrame, x: str, y: str, directions: Sequence[str], label: str = "") -> ParetoData:
    """Split the trials of ``df`` into front / dominated / infeasible points for objectives ``x`` and
    ``y`` (column names, ``metric.`` prefix optional) with ``directions`` ("minimize" | "maximize")."""
    xc, yc = resolve_column(df, x), resolve_column(df, y)
    xv = df[xc].to_numpy(dtype=np.float64, na_value=np.nan)
    yv = df[yc].to_numpy(dtype=np.float64, na_value=np.nan)
    drawable = np.isfinite(xv) & np.isfinite(yv)
    ok = feasible_mask(df) & drawable
    front = np.zeros(len(df), dtype=bool)
    front[ok] = pareto_mask(np.column_stack([xv[ok], yv[ok]]), list(directions))
    keep = np.flatnonzero(drawable)
    knee = None
    if front.any():
        sub = pd.DataFrame({"x": xv[front], "y": yv[front]}, index=np.flatnonzero(front))
        knee_row = knee_point(sub, [("x", directions[0]), ("y", directions[1])])
        knee = int(np.searchsorted(keep, knee_row))
    return ParetoData(
        x=xc,
        y=yc,
        directions=(directions[0], directions[1]),
        label=label,
        trial=_frozen(df["trial"].to_numpy()[keep], np.int64),
        x_values=_frozen(xv[keep]),
        y_values=_frozen(yv[keep]),
        front=_frozen(front[keep], bool),
        dominated=_frozen((ok & ~front)[keep], bool),
        infeasible=_frozen(~feasible_mask(df)[keep], bool),
        knee=knee,
        n_missing=int((~drawable).sum()),
    )


def _log_if_wide(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    return bool(v.size) and v.min() > 0 and v.max() / v.min() > 100


def draw_pareto(data: ParetoData | Sequence[ParetoData], path: Path | str, title: str | None = None) -> Path:
    """Draw one or several sweeps' Pareto points (one colour per sweep) to the PNG ``path``; returns it."""
    sets = [data] if isinstance(data, ParetoData) else list(data)
    if not sets:
        raise ValueError("draw_pareto needs at least one ParetoData")
    xs = np.concatenate([d.x_values for d in sets])
    ys = np.concatenate([d.y_values for d in sets])
    ux, uy = unit_for(sets[0].x, xs), unit_for(sets[0].y, ys)
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=110)
    try:
        for i, d in enumerate(sets):
            color = _COLORS[i % len(_COLORS)]
            name = _mpl_text(d.label) + " " if d.label else ""
            px, py = d.x_values * ux.scale, d.y_values * uy.scale
            if d.dominated.any():
                ax.scatter(
                    px[d.dominated],
                    py[d.dominated],
                    s=12,
                    color=color,
                    alpha=0.25,
                    lw=0,
                    label=f"{name}dominated",
                )
            if d.infeasible.any():
                ax.scatter(
                    px[d.infeasible],
                    py[d.infeasible],
                    s=18,
                    color=color,
                    alpha=0.3,
                    marker="x",
                    lw=0.8,
                    label=f"{name}infeasible or over budget",
                )
            if d.front.any():
                order = np.argsort(px[d.front], kind="stable")
                ax.plot(
                    px[d.front][order],
                    py[d.front][order],
                    "-o",
                    color=color,
                    ms=5,
                    lw=1.5,
                    label=f"{name}Pareto front ({int(d.front.sum())})",
                )
            if d.knee is not None:
                kx, ky = px[d.knee], py[d.knee]
                ax.scatter([kx], [ky], s=160, marker="*", color=color, edgecolor="black", zorder=5)
                label = (
                    f"{name}knee: trial {int(d.trial[d.knee])}"
                    if len(sets) > 1
                    else f"knee: trial {int(d.trial[d.knee])}"
                )
                ax.annotate(
                    label,
                    (kx, ky),
                    xytext=(14, 14 + 16 * i),  # stacked so overlaid knees stay legible
                    textcoords="offset points",
                    fontsize=9,
                    arrowprops={"arrowstyle": "->", "lw": 0.8},
                )
        if _log_if_wide(xs):
            ax.set_xscale("log")
        if _log_if_wide(ys):
            ax.set_yscale("log")
        arrow = {"minimize": "lower is better", "maximize": "higher is better"}
        ax.set_xlabel(f"{axis_label(sets[0].x, ux)} ({arrow[sets[0].directions[0]]})")
        ax.set_ylabel(f"{axis_label(sets[0].y, uy)} ({arrow[sets[0].directions[1]]})")
        ax.set_title(
            _mpl_text(title) if title else f"Pareto: {bare_name(sets[0].y)} vs {bare_name(sets[0].x)}"
        )
    except BaseException:
        plt.close(fig)
        raise
    return finish(fig, ax, path, "best")
