"""Latency breakdown plots: where each design's latency goes (compute, shift, exposed HBM load, sync, idle).

The split itself is computed once, at evaluation (``elk_dse/breakdown.py``), and stored: per design in the
``metric.breakdown_<part>_s`` columns, per operator kind in ``designs/trial_<n>.json`` (``breakdown``).
This module only reads it back, checks it, and draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from elk_dse.results._mpl import frozen as _frozen
from elk_dse.results._mpl import mpl_text as _mpl_text
from elk_dse.results._mpl import plt
from elk_dse.results.units import unit_for

#: Parts in drawing order, with the legend text and colour of each.
PARTS: tuple[tuple[str, str, str], ...] = (
    ("compute", "compute", "#4c72b0"),
    ("shift", "shift / network (not hidden)", "#dd8452"),
    ("hbm_exposed", "exposed HBM load", "#c44e52"),
    ("sync", "sync (barriers)", "#8172b3"),
    ("idle", "idle", "#b0b0b0"),
)
# Relative slack for float rounding when checking that the parts add up to the latency.
SUM_RTOL = 1e-6
TAIL_LABEL = "(after the last operator)"


@dataclass(frozen=True)
class BreakdownData:
    """Bars of a breakdown chart: ``seconds[i, j]`` is part ``PARTS[j]`` of bar ``labels[i]`` (seconds).

    ``total_s[i]`` is what bar i must add up to: a design's latency, or for per-kind bars the time
    attributed to that kind. ``n_missing`` counts designs without a stored breakdown (older sweeps).
    """

    title: str
    labels: tuple[str, ...]
    seconds: np.ndarray
    total_s: np.ndarray
    n_missing: int = 0


def stacked_rows(df: pd.DataFrame, trials: Sequence[int], part_cols: Sequence[str],
                 total_col: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], int]:
    """The parts (one row per trial, in ``trials`` order) and totals of the trials that have them all finite,
    their labels, and how many trials were left out (absent, or with a missing value)."""
    by_trial = df.set_index("trial")
    rows, labels, totals, missing = [], [], [], 0
    for t in trials:
        if t not in by_trial.index:
            missing += 1
            continue
        r = by_trial.loc[t]
        v = r[list(part_cols)].to_numpy(dtype=np.float64)
        total = float(r[total_col])
        if not np.isfinite(v).all() or not np.isfinite(total):
            missing += 1
            continue
        rows.append(v)
        labels.append(f"trial {int(t)}")
        totals.append(total)
    return (np.array(rows, dtype=np.float64).reshape(-1, len(part_cols)), np.array(totals, dtype=np.float64),
            tuple(labels), missing)


def _check_sums(seconds: np.ndarray, total: np.ndarray, labels: Sequence[str]) -> None:
    bad = ~np.isclose(seconds.sum(axis=1), total, rtol=SUM_RTOL, atol=1e-15)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{labels[i]}: breakdown parts sum to {seconds[i].sum():.6g} s but the latency is {total[i]:.6g} s"
        )
    if (seconds < 0).any():
        raise ValueError(f"{labels[int(np.argwhere(seconds < 0)[0, 0])]}: negative breakdown part")


def breakdown_designs_data(df: pd.DataFrame, trials: Sequence[int], title: str = "") -> BreakdownData:
    """One bar per trial in ``trials`` (in that order) from the ``metric.breakdown_<part>_s`` columns.

    Trials whose breakdown is missing (NaN: infeasible, or a sweep from before the breakdown existed) are
    left out and counted. Raises ValueError when a design's parts do not sum to its ``latency_s``.
    """
    cols = [f"metric.breakdown_{p}_s" for p, _, _ in PARTS]
    if not all(c in df.columns for c in cols):
        sel = df[df["trial"].isin(list(trials))]
        return BreakdownData(title, (), _frozen(np.zeros((0, len(PARTS)))), _frozen([]), len(sel))
    seconds, total, labels, missing = stacked_rows(df, trials, cols, "metric.latency_s")
    _check_sums(seconds, total, labels)
    return BreakdownData(title, tuple(labels), _frozen(seconds), _frozen(total), missing)


def breakdown_kinds_data(design: Mapping[str, Any], title: str = "") -> BreakdownData:
    """One bar per operator kind of a design JSON (``breakdown.by_kind``), plus a bar for idle time after
    the last operator when there is any. The bars together add up to the design's ``latency_s`` (checked:
    ValueError otherwise, or when the JSON has no breakdown)."""
    try:
        by_kind = design["breakdown"]["by_kind"]
        total = design["breakdown"]["total"]
        latency = float(design["latency_s"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"design JSON has no latency breakdown (missing {err})") from None
    labels = list(by_kind)
    seconds = [[float(by_kind[k][f"{p}_s"]) for p, _, _ in PARTS] for k in labels]
    attributed = float(np.sum(seconds)) if seconds else 0.0
    tail = float(total["idle_s"]) - sum(float(by_kind[k]["idle_s"]) for k in labels)
    if tail > SUM_RTOL * latency:
        labels.append(TAIL_LABEL)
        seconds.append([0.0, 0.0, 0.0, 0.0, tail])
        attributed += tail
    arr = np.array(seconds, dtype=np.float64).reshape(-1, len(PARTS))
    # The bars (kinds) must cover the latency exactly: check the whole, then each bar against its own sum.
    _check_sums(arr.sum(axis=0, keepdims=True), np.array([latency]), ["all operator kinds"])
    order = np.argsort(-arr.sum(axis=1), kind="stable")  # biggest first
    return BreakdownData(
        title,
        tuple(labels[i] for i in order),
        _frozen(arr[order]),
        _frozen(arr[order].sum(axis=1)),
    )


def draw_breakdown(data: BreakdownData, path: Path | str, shares: bool = False) -> Path:
    """Horizontal stacked bars (one per design or kind), in the time unit that suits the largest bar.

    ``shares=True`` (per-kind charts, where one kind can take 95% of the time and leave the others as
    slivers): each bar is labelled with its time and share of the whole, and a second panel shows each
    bar's split as fractions of that bar (every bar full width, so a small kind's split stays readable).
    """
    n = len(data.labels)
    height = max(2.8, 1.3 + 0.34 * n)
    if shares:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, height), dpi=110, layout="constrained",
                                      gridspec_kw={"width_ratios": [3, 2]}, sharey=True)
    else:
        fig, ax = plt.subplots(figsize=(8.5, height), dpi=110, layout="constrained")
        ax2 = None
    try:
        unit = unit_for("latency_s", data.total_s if n else [0.0])
        y = np.arange(n)
        left = np.zeros(n)
        frac_left = np.zeros(n)
        totals = data.seconds.sum(axis=1) if n else np.zeros(0)
        for j, (_, legend, color) in enumerate(PARTS):
            width = data.seconds[:, j] * unit.scale if n else np.zeros(0)
            ax.barh(y, width, left=left, color=color, label=legend, height=0.7)
            left = left + width
            if ax2 is not None and n:
                frac = np.divide(data.seconds[:, j], totals, out=np.zeros(n), where=totals > 0)
                ax2.barh(y, frac * 100, left=frac_left, color=color, height=0.7)
                frac_left = frac_left + frac * 100
        ax.set_yticks(y, [_mpl_text(lab) for lab in data.labels], fontsize=8)
        ax.set_ylim(n - 0.5, -0.5)  # first bar on top, as in the table; no empty margin above or below
        ax.set_xlabel(f"time of one pass [{unit.symbol}]")
        top = max(float(left.max()) if n else 1.0, 1e-30)
        ax.set_xlim(0, top * (1.3 if shares else 1.02))
        ax.set_title(_mpl_text(data.title) if data.title else "Latency breakdown")
        if shares and n:
            whole = float(totals.sum())
            for k in range(n):
                share = totals[k] / whole
                ax.text(left[k] + 0.01 * top, k, f"{left[k]:.3g} {unit.symbol} ({share:.0%})" if share >= 0.1 else f"{left[k]:.3g} {unit.symbol} ({share:.1%})",
                        va="center", fontsize=8)
        if ax2 is not None:
            ax2.set_xlim(0, 100)
            ax2.set_xlabel("split of each bar [% of its time]")
            ax2.set_title("each bar's split", fontsize=10)
            ax2.grid(True, axis="x", alpha=0.3)
        # Legend outside, under the axes, so it never hides a bar.
        fig.legend(fontsize=8, ncol=len(PARTS), loc="outside lower center", frameon=False)
        ax.grid(True, axis="x", alpha=0.3)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return Path(path)
