"""Energy split plots: where each Pareto design's energy goes, per memory level (``cost/energy.py``).

The split is computed once, at evaluation, and stored in the ``metric.energy_<level>_j`` columns; this module
reads it back, checks that the levels add up to ``metric.energy_j`` and draws one stacked bar per design.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from elk_dse.cost.energy import LEVELS
from elk_dse.results._mpl import frozen as _frozen
from elk_dse.results._mpl import mpl_text as _mpl_text
from elk_dse.results._mpl import plt
from elk_dse.results.breakdown_plot import stacked_rows
from elk_dse.results.units import unit_for

#: Levels in drawing order, with legend text and colour (one per ``cost.energy.LEVELS`` entry).
STYLE: dict[str, tuple[str, str]] = {
    "mac": ("MAC", "#4c72b0"),
    "rf": ("register files", "#64b5cd"),
    "sram": ("SRAM", "#55a868"),
    "noc": ("on-chip network", "#dd8452"),
    "hbm": ("HBM", "#c44e52"),
    "chip_link": ("chip-to-chip links", "#8172b3"),
    "static": ("static (leakage)", "#b0b0b0"),
}
if set(STYLE) != set(LEVELS):
    raise RuntimeError("results/energy_plot.py: STYLE must name every level of cost/energy.py")
SUM_RTOL = 1e-9


@dataclass(frozen=True)
class EnergyData:
    """Bars: ``joules[i, j]`` is level ``LEVELS[j]`` of design ``labels[i]``; ``total_j[i]`` its energy_j.
    ``n_missing``: designs without a stored split (infeasible, or a sweep from before the split existed)."""

    title: str
    labels: tuple[str, ...]
    joules: np.ndarray
    total_j: np.ndarray
    n_missing: int = 0


def energy_designs_data(df: pd.DataFrame, trials: Sequence[int], title: str = "") -> EnergyData:
    """One bar per trial in ``trials`` (in that order) from the ``metric.energy_<level>_j`` columns.

    Raises ValueError when a design's levels do not add up to its ``metric.energy_j`` or one is negative."""
    cols = [f"metric.energy_{lvl}_j" for lvl in LEVELS]
    sel = df[df["trial"].isin(list(trials))]
    if not all(c in df.columns for c in cols):
        return EnergyData(title, (), _frozen(np.zeros((0, len(LEVELS)))), _frozen([]), len(sel))
    joules, total_j, labels, missing = stacked_rows(df, trials, cols, "metric.energy_j")
    bad = ~np.isclose(joules.sum(axis=1), total_j, rtol=SUM_RTOL, atol=0.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{labels[i]}: energy levels sum to {joules[i].sum():.9g} J but energy_j is {total_j[i]:.9g} J")
    if (joules < 0).any():
        raise ValueError(f"{labels[int(np.argwhere(joules < 0)[0, 0])]}: negative energy level")
    return EnergyData(title, tuple(labels), _frozen(joules), _frozen(total_j), missing)


def draw_energy(data: EnergyData, path: Path | str) -> Path:
    """Horizontal stacked bars, one per design, in the energy unit that suits the largest bar."""
    n = len(data.labels)
    fig, ax = plt.subplots(figsize=(8.5, max(2.8, 1.3 + 0.34 * n)), dpi=110, layout="constrained")
    try:
        unit = unit_for("energy_j", data.total_j if n else [0.0])
        y = np.arange(n)
        left = np.zeros(n)
        for j, level in enumerate(LEVELS):
            legend, color = STYLE[level]
            width = data.joules[:, j] * unit.scale if n else np.zeros(0)
            ax.barh(y, width, left=left, color=color, label=legend, height=0.7)
            left = left + width
        ax.set_yticks(y, [_mpl_text(lab) for lab in data.labels], fontsize=8)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlabel(f"energy of one pass [{unit.symbol}]")
        ax.set_xlim(0, max(float(left.max()) if n else 1.0, 1e-30) * 1.02)
        ax.set_title(_mpl_text(data.title) if data.title else "Energy by level")
        fig.legend(fontsize=8, ncol=4, loc="outside lower center", frameon=False)
        ax.grid(True, axis="x", alpha=0.3)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return Path(path)
