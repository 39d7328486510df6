"""Plot data (pure functions, tested) and drawing (matplotlib Agg, PNG files) for sweep reports.

Pareto plots live here; the roofline plots live in :mod:`elk_dse.results.roofline` and are re-exported,
so ``elk_dse.results.plots`` is the one place to import plotting from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from elk_dse.results._mpl import COLORS as _COLORS
from elk_dse.results._mpl import finish, plt
from elk_dse.results._mpl import frozen as _frozen
from elk_dse.results._mpl import mpl_text as _mpl_text
from elk_dse.results.pareto import feasible_mask, knee_point, pareto_mask, resolve_column
from elk_dse.results.roofline import (
    EDGE_FACTOR,
    ROOF_RTOL,
    OpGroupsData,
    RooflineOpsData,
    RooflineSweepData,
    draw_roofline_ops,
    draw_roofline_sweep,
    op_groups_data,
    roofline_ops_data,
    roofline_sweep_data,
)
from elk_dse.results.units import axis_label, human_name, unit_for

__all__ = [
    "EDGE_FACTOR",
    "ROOF_RTOL",
    "OpGroupsData",
    "ParetoData",
    "RooflineOpsData",
    "RooflineSweepData",
    "draw_pareto",
    "draw_roofline_ops",
    "draw_roofline_sweep",
    "op_groups_data",
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
    if "config_hash" in df.columns and len(df):  # a configuration sampled twice is one design, one point
        h = df.sort_values("trial", kind="stable")["config_hash"]
        dup = h.notna() & (h.astype(str) != "") & h.duplicated(keep="first")
        df = df.loc[~df.index.isin(h.index[dup.to_numpy(dtype=bool)])]
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
        knee = int(np.searchsorted(keep, cast(int, knee_row)))  # the row label of ``sub``: a position in keep
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
    """Log axis when the values are positive and span more than a factor of 3 (outliers then take a few
    decades' share of the axis, not most of it)."""
    v = values[np.isfinite(values)]
    return bool(v.size) and v.min() > 0 and v.max() / v.min() > 3


# The zoomed view spans the fronts plus this fraction of their extent on each side (log or linear units).
ZOOM_MARGIN = 0.6


def zoom_limits(front: np.ndarray, values: np.ndarray, log: bool) -> tuple[float, float] | None:
    """Axis limits around the front points (``front``) when the other points (``values``) reach much
    further: the front's extent plus ZOOM_MARGIN of it on each side, clipped to the data. None: no zoom
    needed (everything fits within twice the front's padded extent)."""
    f = front[np.isfinite(front)]
    v = values[np.isfinite(values)]
    if f.size == 0 or v.size == 0 or (log and (f.min() <= 0 or v.min() <= 0)):
        return None
    t = np.log10 if log else (lambda a: a)
    lo, hi = float(t(f.min())), float(t(f.max()))
    span = max(hi - lo, 0.05 if log else 0.05 * max(abs(hi), 1e-30))
    a, b = max(lo - ZOOM_MARGIN * span, float(t(v.min()))), min(hi + ZOOM_MARGIN * span, float(t(v.max())))
    if b - a <= 0 or (float(t(v.max())) - float(t(v.min()))) <= 1.5 * (b - a):
        return None
    pad = 0.03 * (b - a)
    a, b = a - pad, b + pad
    return (10**a, 10**b) if log else (a, b)


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
                # Named in the legend, not next to the star: a label on the plot overlapped the fronts of
                # a two-sweep page.
                ax.scatter([kx], [ky], s=160, marker="*", color=color, edgecolor="black", zorder=5,
                           label=f"{name}knee: trial {int(d.trial[d.knee])}")
        logx, logy = _log_if_wide(xs), _log_if_wide(ys)
        for on, axis, setter in ((logx, ax.xaxis, ax.set_xscale), (logy, ax.yaxis, ax.set_yscale)):
            if on:  # plain numbers at 1, 2, 5 x 10^k (not "6 x 10^2")
                setter("log")
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                axis.set_minor_formatter(NullFormatter())
        fx = np.concatenate([d.x_values[d.front] for d in sets]) * ux.scale
        fy = np.concatenate([d.y_values[d.front] for d in sets]) * uy.scale
        zx, zy = zoom_limits(fx, xs * ux.scale, logx), zoom_limits(fy, ys * uy.scale, logy)
        if zx:
            ax.set_xlim(*zx)
        if zy:
            ax.set_ylim(*zy)
        if zx or zy:
            inside = np.ones(xs.size, dtype=bool)
            if zx:
                inside &= (xs * ux.scale >= zx[0]) & (xs * ux.scale <= zx[1])
            if zy:
                inside &= (ys * uy.scale >= zy[0]) & (ys * uy.scale <= zy[1])
            ax.text(0.99, 0.01, f"zoomed on the front: {int((~inside).sum())} of {xs.size} designs outside the view",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="#555")
        arrow = {"minimize": "lower is better", "maximize": "higher is better"}
        ax.set_xlabel(f"{axis_label(sets[0].x, ux)} ({arrow[sets[0].directions[0]]})")
        ax.set_ylabel(f"{axis_label(sets[0].y, uy)} ({arrow[sets[0].directions[1]]})")
        ax.set_title(
            _mpl_text(title) if title else f"Pareto front: {human_name(sets[0].y)} vs {human_name(sets[0].x)}"
        )
    except BaseException:
        plt.close(fig)
        raise
    return finish(fig, ax, path, "best")
