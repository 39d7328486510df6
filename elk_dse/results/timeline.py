"""Timeline (Gantt chart) of one design point: its HBM loads and its operator executions over one pass.

Built from the per-operator times of a design JSON (``designs/trial_<n>.json``, the evaluation's ``ops``),
which the simulator computed from the Program.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.patches import Patch

from elk_dse.results._mpl import COLORS as _COLORS
from elk_dse.results._mpl import frozen as _frozen
from elk_dse.results._mpl import mpl_text as _mpl_text
from elk_dse.results._mpl import plt
from elk_dse.results.units import unit_for

LANES: tuple[str, ...] = ("HBM loads", "core execution")


@dataclass(frozen=True)
class TimelineData:
    """Per operator instance (execution order): kind, load and execution intervals (seconds from the start).

    Ops without an HBM load have ``load_end_s == load_start_s``. ``latency_s`` is the design's latency.
    """

    kind: tuple[str, ...]
    load_start_s: np.ndarray
    load_end_s: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    latency_s: float

    @property
    def kinds(self) -> tuple[str, ...]:
        """Distinct kinds in order of first execution."""
        return tuple(dict.fromkeys(self.kind))


def timeline_data(design: Mapping[str, Any]) -> TimelineData:
    """The timeline of a design JSON. Raises ValueError on missing times, an interval that ends before it
    starts, or an execution ending after the design's latency."""
    try:
        ops = list(design["ops"])
        latency = float(design["latency_s"])
        cols = {
            k: np.array([float(op[k]) for op in ops], dtype=np.float64)
            for k in ("load_start_s", "load_end_s", "start_s", "end_s")
        }
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"design JSON lacks per-operator times ({err})") from None
    if not ops:
        raise ValueError("design JSON has no operators")
    for a, b in (("load_start_s", "load_end_s"), ("start_s", "end_s")):
        bad = cols[b] < cols[a]
        if bad.any():
            raise ValueError(f"op {int(np.argmax(bad))}: {b} before {a}")
    tol = 1e-9 * max(latency, 1e-30)
    if cols["end_s"].max() > latency + tol:
        raise ValueError(
            f"an operator ends at {cols['end_s'].max():.6g} s, after the latency {latency:.6g} s"
        )
    return TimelineData(
        kind=tuple(str(op.get("kind", "?")) for op in ops),
        latency_s=latency,
        **{k: _frozen(v) for k, v in cols.items()},
    )


def draw_timeline(data: TimelineData, path: Path | str, title: str | None = None) -> Path:
    """Two lanes (HBM loads, core execution), one colour per operator kind, time in a fitting unit."""
    fig, ax = plt.subplots(figsize=(11, 3.4), dpi=110)
    try:
        unit = unit_for("latency_s", data.latency_s)
        kinds = np.array(data.kind, dtype=object)
        for i, kind in enumerate(data.kinds):
            color = _COLORS[i % len(_COLORS)]
            m = kinds == kind
            for lane, (a, b) in enumerate(((data.load_start_s, data.load_end_s), (data.start_s, data.end_s))):
                sel = m & (b > a)
                if sel.any():
                    spans = np.column_stack([a[sel] * unit.scale, (b[sel] - a[sel]) * unit.scale])
                    # Thin white edges would swallow sub-pixel ops: draw without edges.
                    ax.broken_barh(spans, (lane - 0.35, 0.7), facecolors=color, lw=0)
        ax.set_yticks(range(len(LANES)), LANES)
        ax.set_ylim(len(LANES) - 0.4, -0.6)  # first lane (HBM loads) on top
        ax.set_xlim(0, data.latency_s * unit.scale * 1.01)
        ax.set_xlabel(f"time from the start of the pass [{unit.symbol}]")
        ax.set_title(_mpl_text(title) if title else "Timeline")
        handles = [
            Patch(color=_COLORS[i % len(_COLORS)], label=_mpl_text(k)) for i, k in enumerate(data.kinds)
        ]
        ax.legend(
            handles=handles,
            fontsize=8,
            ncol=min(len(handles), 8),
            loc="upper center",
            bbox_to_anchor=(0.5, -0.32),
            frameon=False,
        )
    except BaseException:
        plt.close(fig)
        raise
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return Path(path)
