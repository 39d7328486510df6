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
# Shortest bar drawn on the whole-pass panel, as a fraction of the pass (about one pixel of the plot).
MIN_WIDTH = 1.2e-3


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
    name: tuple[str, ...] = ()
    group: tuple[str, ...] = ()  # "<layer> <repetition>": the ops of one layer instance share it

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
        name=tuple(str(op.get("name", i)) for i, op in enumerate(ops)),
        group=tuple(f"{op.get('layer', '')} {op.get('repetition', '')}" for op in ops),
        **{k: _frozen(v) for k, v in cols.items()},
    )


def zoom_window(data: TimelineData) -> tuple[float, float, str] | None:
    """(start, end, label) of the layer instance running at the middle of the pass: its ops' loads and
    executions. None when the design has a single layer instance (the whole pass is then the zoom)."""
    if not data.group or len(set(data.group)) < 2:
        return None
    mid = 0.5 * data.latency_s
    i = int(np.argmin(np.abs(0.5 * (data.start_s + data.end_s) - mid)))
    m = np.array([g == data.group[i] for g in data.group])
    has_load = data.load_end_s > data.load_start_s
    lo = float(min(data.start_s[m].min(), data.load_start_s[m & has_load].min() if (m & has_load).any() else np.inf))
    hi = float(data.end_s[m].max())
    return lo, hi, data.group[i]


def draw_timeline(data: TimelineData, path: Path | str, title: str | None = None) -> Path:
    """Two panels. Top, the whole pass: HBM loads on the first lane, then one lane per operator kind (a
    kind with short operators stays visible instead of vanishing among 400 matmuls). Bottom, one layer
    instance from the middle of the pass, each operator drawn and named."""
    zoom = zoom_window(data)
    kinds_order = list(data.kinds)
    lanes = ["HBM loads", *kinds_order]
    h_top = 1.0 + 0.38 * len(lanes)
    fig, axes = plt.subplots(2 if zoom else 1, 1, figsize=(11, h_top + (3.0 if zoom else 0) + 0.9), dpi=110,
                             gridspec_kw={"height_ratios": [h_top, 2.6]} if zoom else None, squeeze=False)
    try:
        unit = unit_for("latency_s", data.latency_s)
        kinds = np.array(data.kind, dtype=object)
        ax = axes[0][0]
        colors = {k: _COLORS[i % len(_COLORS)] for i, k in enumerate(kinds_order)}
        for kind in kinds_order:
            m = kinds == kind
            for lane, (a, b) in ((0, (data.load_start_s, data.load_end_s)),
                                 (1 + kinds_order.index(kind), (data.start_s, data.end_s))):
                sel = m & (b > a)
                if sel.any():
                    # At least MIN_WIDTH of the pass wide (about a pixel): a 2 µs norm in a 9 ms pass would
                    # not be drawn at all. Thin white edges would swallow such ops: no edges.
                    width = np.maximum(b[sel] - a[sel], MIN_WIDTH * data.latency_s)
                    spans = np.column_stack([a[sel] * unit.scale, width * unit.scale])
                    ax.broken_barh(spans, (lane - 0.35, 0.7), facecolors=colors[kind], lw=0)
        ax.set_yticks(range(len(lanes)), [_mpl_text(x) for x in lanes], fontsize=8)
        ax.set_ylim(len(lanes) - 0.4, -0.6)  # first lane (HBM loads) on top
        ax.set_xlim(0, data.latency_s * unit.scale * 1.01)
        ax.set_xlabel(f"time from the start of the pass [{unit.symbol}]")
        ax.set_title(_mpl_text(title) if title else "Timeline")
        ax.grid(True, axis="x", alpha=0.3)
        if zoom:
            lo, hi, label = zoom
            ax.axvspan(lo * unit.scale, hi * unit.scale, color="black", alpha=0.08, lw=0)
            _draw_zoom(axes[1][0], data, lo, hi, label, colors)
        handles = [Patch(color=colors[k], label=_mpl_text(k)) for k in kinds_order]
        fig.legend(handles=handles, fontsize=8, ncol=min(len(handles), 8), loc="lower center", frameon=False)
    except BaseException:
        plt.close(fig)
        raise
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return Path(path)


def _draw_zoom(ax, data: TimelineData, lo: float, hi: float, label: str, colors: dict) -> None:  # type: ignore[no-untyped-def]
    """One layer instance: loads (top lane) and executions (bottom lane), every operator named."""
    unit = unit_for("latency_s", hi - lo)
    sel = [i for i, g in enumerate(data.group) if g == label]
    for i in sel:
        color = colors[data.kind[i]]
        for lane, a, b in ((0, data.load_start_s[i], data.load_end_s[i]), (1, data.start_s[i], data.end_s[i])):
            if b > a:
                ax.broken_barh([((a - lo) * unit.scale, (b - a) * unit.scale)], (lane - 0.35, 0.7),
                               facecolors=color, edgecolor="white", lw=0.6)
        a, b = data.start_s[i], data.end_s[i]
        narrow = (b - a) < 0.04 * (hi - lo)
        ax.text(((a + b) / 2 - lo) * unit.scale, 1.45 if narrow else 1.0, _mpl_text(data.name[i]),
                ha="center", va="top" if narrow else "center", fontsize=7,
                rotation=90 if narrow else 0, color="black")
    ax.set_yticks([0, 1], ["HBM loads", "core execution"], fontsize=8)
    ax.set_ylim(2.6, -0.6)
    ax.set_xlim(0, (hi - lo) * unit.scale * 1.01)
    ax.set_xlabel(f"time from the start of {label.strip()} (shaded above) [{unit.symbol}]")
    ax.set_title(_mpl_text(f"zoom: one layer instance ({label.strip()}), each operator named"), fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
