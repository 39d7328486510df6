"""The validation picture: each point's prediction error as a bar, calibration and held-out apart, against the
issue's targets (held-out median within 20%, every point within 35%)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from elk_dse.results._mpl import COLORS, finish, mpl_text, plt
from elk_dse.validation.suite import Row

TARGET_MEDIAN, TARGET_MAX = 0.20, 0.35


def error_chart(rows: Sequence[Row], path: Path) -> Path:
    """Horizontal bars of predicted / measured - 1 per point (percent), top to bottom in table order: held-out
    points coloured by chip, calibration points grey and hatched; the +-20% band and +-35% lines shaded.
    Infeasible points are listed with no bar. Returns the PNG's path."""
    chips = sorted({r.point.chip for r in rows})
    color = {c: COLORS[i % len(COLORS)] for i, c in enumerate(chips)}
    fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(rows) + 1.6))
    ax.axvspan(-100 * TARGET_MEDIAN, 100 * TARGET_MEDIAN, color="0.92", zorder=0, label="±20% (median target)")
    for x in (-100 * TARGET_MAX, 100 * TARGET_MAX):
        ax.axvline(x, color="0.5", linestyle="--", linewidth=0.8, zorder=1)
    labelled: set[str] = set()
    for y, r in enumerate(rows):
        if not math.isfinite(r.error):
            continue
        calibration = r.point.role == "calibration"
        key = "calibration" if calibration else r.point.chip
        ax.barh(y, 100 * r.error, color="0.7" if calibration else color[r.point.chip],
                hatch="//" if calibration else None, edgecolor="0.3", linewidth=0.5, zorder=2,
                label=None if key in labelled else mpl_text(key + (" (fitted here)" if calibration else "")))
        labelled.add(key)
        ax.text(100 * r.error + (1.0 if r.error >= 0 else -1.0), y, f"{r.error:+.0%}", va="center",
                ha="left" if r.error >= 0 else "right", fontsize=7, zorder=3)
    ax.set_yticks(range(len(rows)), [mpl_text(r.point.id) for r in rows], fontsize=8)
    ax.invert_yaxis()
    limit = max([100 * TARGET_MAX + 10] + [100 * abs(r.error) + 12 for r in rows if math.isfinite(r.error)])
    ax.set_xlim(-limit, limit)
    ax.set_xlabel("prediction error, % = predicted / measured - 1 (dashed: ±35%)\n"
                  "tokens/s/user points: + is predicted faster; latency (ms) points: + is predicted slower",
                  fontsize=9)
    ax.set_title("elk_dse against published measurements of shipping chips", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    return finish(fig, ax, path, "outside")
