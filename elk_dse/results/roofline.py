"""Roofline plot data (pure functions, tested) and drawing, for a whole sweep and for one design's ops.

Invariant: the simulators guarantee latency >= max(flops / peak, hbm_bytes / bandwidth), so no point may
lie above its roof. The data functions never move a point down to hide a violation: they raise
ValueError naming the offending trial or op, because such a point means the input is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from elk_dse.results._mpl import COLORS as _COLORS
from elk_dse.results._mpl import finish, plt
from elk_dse.results._mpl import frozen as _frozen
from elk_dse.results._mpl import mpl_text as _mpl_text
from elk_dse.results.pareto import feasible_mask, resolve_column
from elk_dse.results.units import unit_for

# Relative slack for float rounding when checking points against their roofs.
ROOF_RTOL = 1e-6
# Points with no HBM traffic have infinite intensity; they are drawn this factor right of the data.
EDGE_FACTOR = 10.0


# ---- roofline of a sweep -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RooflineSweepData:
    """One point per feasible trial on a roofline normalized to each design's own chip (dimensionless).

    ``x`` = (flops / hbm_bytes) / (peak_flops_per_s / hbm_bytes_per_s): 1 is the ridge point.
    ``y`` = (flops / latency_s) / peak_flops_per_s: 1 is the compute roof. Trials with no HBM traffic
    (infinite intensity) sit at ``x_edge`` and are flagged ``no_hbm``. Feasible trials missing a metric,
    or with zero FLOPs, cannot be placed and are counted in ``n_skipped``.
    """

    label: str
    trial: np.ndarray
    x: np.ndarray
    y: np.ndarray
    no_hbm: np.ndarray
    x_edge: float
    n_skipped: int

    @property
    def roof(self) -> np.ndarray:
        """The roof above each point: min(1, x)."""
        return np.minimum(1.0, self.x)


def _check_under_roof(achieved: np.ndarray, roof: np.ndarray, what: np.ndarray, kind: str) -> None:
    above = achieved > roof * (1.0 + ROOF_RTOL)
    if above.any():
        i = int(np.flatnonzero(above)[0])
        raise ValueError(
            f"{int(above.sum())} {kind}(s) above the roofline, e.g. {what[i]}: achieved {achieved[i]:.6g} > "
            f"roof {roof[i]:.6g}; the latency is below its bound, so the input is inconsistent"
        )


def roofline_sweep_data(df: pd.DataFrame, label: str = "") -> RooflineSweepData:
    """Normalized roofline points of the feasible COMPLETE trials of ``df`` (see RooflineSweepData).

    Raises ValueError if a point lies above its roof or a metric is impossible (negative, zero latency
    with work, HBM bytes on a chip without HBM).
    """
    names = ["flops", "hbm_bytes", "latency_s", "peak_flops_per_s", "hbm_bytes_per_s"]
    ok = feasible_mask(df)
    sub = df[ok]
    cols = {n: sub[resolve_column(df, n)].to_numpy(dtype=np.float64, na_value=np.nan) for n in names}
    trial = sub["trial"].to_numpy()
    flops, hbm, lat, peak, bw = (cols[n] for n in names)
    usable = np.all([np.isfinite(c) for c in cols.values()], axis=0) & (flops > 0)
    flops, hbm, lat, peak, bw, trial = (a[usable] for a in (flops, hbm, lat, peak, bw, trial))
    labels = np.array([f"trial {t}" for t in trial], dtype=object)
    for arr, n in ((hbm, "hbm_bytes"), (bw, "hbm_bytes_per_s")):
        if (arr < 0).any():
            raise ValueError(f"{labels[np.argmax(arr < 0)]}: negative {n}")
    for arr, n in ((lat, "latency_s"), (peak, "peak_flops_per_s")):
        if (arr <= 0).any():
            raise ValueError(f"{labels[np.argmax(arr <= 0)]}: {n} must be > 0 for a design doing FLOPs")
    no_hbm = hbm == 0
    if ((bw == 0) & ~no_hbm).any():
        raise ValueError(f"{labels[np.argmax((bw == 0) & ~no_hbm)]}: HBM bytes on a chip without HBM")
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(no_hbm, np.nan, (flops / hbm) / (peak / bw))
    y = (flops / lat) / peak
    finite_x = x[~no_hbm]
    x_edge = EDGE_FACTOR * max(1.0, float(finite_x.max()) if finite_x.size else 1.0)
    x = np.where(no_hbm, x_edge, x)
    _check_under_roof(y, np.minimum(1.0, x), labels, "trial")
    return RooflineSweepData(
        label=label,
        trial=_frozen(trial, np.int64),
        x=_frozen(x),
        y=_frozen(y),
        no_hbm=_frozen(no_hbm, bool),
        x_edge=x_edge,
        n_skipped=int((~usable).sum()),
    )


def draw_roofline_sweep(
    data: RooflineSweepData | Sequence[RooflineSweepData], path: Path | str, title: str | None = None
) -> Path:
    """Draw normalized roofline points (log-log, one colour per sweep) and the roof min(1, x) to ``path``."""
    sets = [data] if isinstance(data, RooflineSweepData) else list(data)
    fig, ax = plt.subplots(figsize=(10.5, 5.5), dpi=110)
    try:
        xs = np.concatenate([d.x for d in sets]) if sets else np.zeros(0)
        lo = min(0.1, float(xs.min()) / 2) if xs.size else 0.1
        hi = max(10.0, float(xs.max()) * 2) if xs.size else 10.0
        grid = np.geomspace(lo, hi, 200)
        ax.plot(grid, np.minimum(1.0, grid), color="black", lw=1.5, label="roof: min(1, intensity / ridge)")
        ax.axvline(1.0, color="grey", ls=":", lw=1)
        for i, d in enumerate(sets):
            color = _COLORS[i % len(_COLORS)]
            name = _mpl_text(d.label) + " " if d.label else ""
            m = ~d.no_hbm
            if m.any():
                ax.scatter(
                    d.x[m], d.y[m], s=14, color=color, alpha=0.6, lw=0, label=f"{name}trials ({m.sum()})"
                )
            if d.no_hbm.any():
                ax.scatter(
                    d.x[d.no_hbm],
                    d.y[d.no_hbm],
                    s=30,
                    color=color,
                    marker=">",
                    alpha=0.8,
                    label=f"{name}no HBM traffic (at right edge)",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity / ridge point (FLOP/B relative to peak / HBM bandwidth)")
        ax.set_ylabel("achieved FLOP/s / peak FLOP/s")
        ax.set_title(_mpl_text(title) if title else "Roofline of feasible designs (each on its own chip)")
    except BaseException:
        plt.close(fig)
        raise
    return finish(fig, ax, path, "outside")


# ---- roofline of one design's ops --------------------------------------------------------------------
@dataclass(frozen=True)
class RooflineOpsData:
    """One point per op of a design: ``intensity`` FLOP per HBM byte, ``achieved`` FLOP/s.

    Ops without HBM traffic sit at ``x_edge`` and are flagged ``no_hbm``; ops with zero FLOPs (pure data
    movement) have no place on a roofline and are counted in ``n_skipped``. The on-chip network is a third
    roof (a hierarchical roofline): ``noc_intensity`` is FLOP per on-chip network byte (NaN for ops that move
    nothing over it) under ``noc_bytes_per_s`` x intensity (``noc_bytes_per_s`` NaN when the design JSON
    does not give the network roof).
    """

    name: tuple[str, ...]
    kind: tuple[str, ...]
    layer: tuple[Any, ...]
    intensity: np.ndarray
    achieved: np.ndarray
    no_hbm: np.ndarray
    peak_flops_per_s: float
    hbm_bytes_per_s: float
    x_edge: float
    n_skipped: int
    noc_intensity: np.ndarray = field(default_factory=lambda: _frozen([]))
    noc_bytes_per_s: float = float("nan")

    @property
    def roof(self) -> np.ndarray:
        """FLOP/s roof above each op: min(peak, HBM bandwidth x intensity); peak for no-HBM ops."""
        hbm_roof = np.where(self.no_hbm, np.inf, self.hbm_bytes_per_s * self.intensity)
        return np.minimum(self.peak_flops_per_s, hbm_roof)

    @property
    def noc_roof(self) -> np.ndarray:
        """FLOP/s roof of each op at its network intensity: min(peak, network bandwidth x intensity); peak
        where the op moves no network bytes or the network roof is unknown."""
        with np.errstate(invalid="ignore"):
            r = self.noc_bytes_per_s * self.noc_intensity
        return np.minimum(self.peak_flops_per_s, np.where(np.isfinite(r), r, np.inf))


def roofline_ops_data(design: Mapping[str, Any]) -> RooflineOpsData:
    """Per-op roofline points of a design JSON (``ops`` and ``chip.derived``; see the data contract).

    Raises ValueError on an op above its roof, a negative quantity, an op with FLOPs and no duration,
    or HBM bytes on a chip without HBM.
    """
    try:
        derived = design["chip"]["derived"]
        peak = float(derived["peak_flops_per_s"])
        bw = float(derived["hbm_bytes_per_s"])
        ops = list(design["ops"])
        noc_bw = float(design.get("noc_bytes_per_s", float("nan")) or float("nan"))
    except (KeyError, TypeError) as err:
        raise ValueError(f"design JSON lacks {err}: need ops and chip.derived") from None
    if not peak > 0 or not bw >= 0:
        raise ValueError(f"chip.derived: peak_flops_per_s={peak} must be > 0, hbm_bytes_per_s={bw} >= 0")
    kept = []
    for i, op in enumerate(ops):
        flops, hbm = float(op["flops"]), float(op["hbm_bytes"])
        # The op's own time: its execution window plus its own HBM load phase (which may have overlapped
        # other ops under a preloading scheduler); both together bound it by both roofs.
        dur = float(op["end_s"]) - float(op["start_s"]) + float(op.get("load_s", 0.0) or 0.0)
        who = f"op {i} {op.get('name', '')!r}"
        if flops < 0 or hbm < 0:
            raise ValueError(f"{who}: negative flops or hbm_bytes")
        if flops == 0:
            continue
        if not dur > 0:
            raise ValueError(f"{who}: {flops:g} FLOPs in {dur:g} s")
        if hbm > 0 and bw == 0:
            raise ValueError(f"{who}: HBM bytes on a chip without HBM")
        noc = float(op.get("noc_bytes", 0.0) or 0.0)
        kept.append(
            (str(op.get("name", i)), str(op.get("kind", "?")), op.get("layer"), flops, hbm, dur, who, noc)
        )
    flops_a = np.array([k[3] for k in kept], dtype=np.float64)
    hbm_a = np.array([k[4] for k in kept], dtype=np.float64)
    dur_a = np.array([k[5] for k in kept], dtype=np.float64)
    noc_a = np.array([k[7] for k in kept], dtype=np.float64)
    no_hbm = hbm_a == 0
    with np.errstate(divide="ignore"):
        intensity = np.where(no_hbm, np.nan, flops_a / np.where(no_hbm, 1.0, hbm_a))
    ridge = peak / bw if bw > 0 else 1.0
    finite = intensity[~no_hbm]
    x_edge = EDGE_FACTOR * max(ridge, float(finite.max()) if finite.size else ridge)
    data = RooflineOpsData(
        name=tuple(k[0] for k in kept),
        kind=tuple(k[1] for k in kept),
        layer=tuple(k[2] for k in kept),
        intensity=_frozen(np.where(no_hbm, x_edge, intensity)),
        achieved=_frozen(flops_a / dur_a),
        no_hbm=_frozen(no_hbm, bool),
        peak_flops_per_s=peak,
        hbm_bytes_per_s=bw,
        x_edge=x_edge,
        n_skipped=len(ops) - len(kept),
        noc_intensity=_frozen(np.where(noc_a > 0, flops_a / np.where(noc_a > 0, noc_a, 1.0), np.nan)),
        noc_bytes_per_s=noc_bw if noc_bw > 0 else float("nan"),
    )
    who_a = np.array([k[6] for k in kept], dtype=object)
    _check_under_roof(data.achieved, data.roof, who_a, "op")
    _check_under_roof(data.achieved, data.noc_roof, who_a, "op (network roof)")
    return data


def draw_roofline_ops(data: RooflineOpsData, path: Path | str, title: str | None = None) -> Path:
    """Draw the per-op roofline (log-log, one colour per op kind, compute and HBM roofs) to ``path``."""
    fig, ax = plt.subplots(figsize=(10.5, 5.5), dpi=110)
    try:
        unit = unit_for("peak_flops_per_s", data.peak_flops_per_s)
        peak = data.peak_flops_per_s * unit.scale
        xs = data.intensity
        has_noc = bool(np.isfinite(data.noc_bytes_per_s)) and bool(np.isfinite(data.noc_intensity).any())
        noc_x = data.noc_intensity[np.isfinite(data.noc_intensity)] if has_noc else np.zeros(0)
        all_x = np.concatenate([xs, noc_x])
        lo = float(all_x.min()) / 4 if all_x.size else 0.1
        lo = min(lo, data.peak_flops_per_s / data.hbm_bytes_per_s / 4) if data.hbm_bytes_per_s > 0 else lo
        hi = max(data.x_edge, float(noc_x.max()) if noc_x.size else 0.0) * 2
        grid = np.geomspace(max(lo, 1e-6), hi, 300)
        ax.plot(
            grid,
            np.full_like(grid, peak),
            color="black",
            lw=1.5,
            label=f"compute roof {peak:.3g} {unit.symbol}",
        )
        if data.hbm_bytes_per_s > 0:
            hbm_line = data.hbm_bytes_per_s * grid * unit.scale
            bw_unit = unit_for("hbm_bytes_per_s", data.hbm_bytes_per_s)
            ax.plot(
                grid[hbm_line <= peak],
                hbm_line[hbm_line <= peak],
                color="black",
                ls="--",
                lw=1.5,
                label=f"HBM roof {data.hbm_bytes_per_s * bw_unit.scale:.3g} {bw_unit.symbol} x intensity",
            )
        if has_noc:
            noc_line = data.noc_bytes_per_s * grid * unit.scale
            noc_unit = unit_for("noc_bytes_per_s", data.noc_bytes_per_s)
            ax.plot(
                grid[noc_line <= peak],
                noc_line[noc_line <= peak],
                color="dimgrey",
                ls="-.",
                lw=1.5,
                label=f"network roof {data.noc_bytes_per_s * noc_unit.scale:.3g} {noc_unit.symbol} x intensity",
            )
        kinds = np.array(data.kind, dtype=object)
        for i, kind in enumerate(sorted(set(data.kind))):
            color = _COLORS[i % len(_COLORS)]
            m = (kinds == kind) & ~data.no_hbm
            e = (kinds == kind) & data.no_hbm
            if m.any():
                ax.scatter(
                    xs[m],
                    data.achieved[m] * unit.scale,
                    s=22,
                    color=color,
                    alpha=0.8,
                    label=f"{_mpl_text(kind)} ({int(m.sum() + e.sum())})",
                )
            if e.any():
                ax.scatter(
                    xs[e],
                    data.achieved[e] * unit.scale,
                    s=36,
                    color=color,
                    marker=">",
                    alpha=0.9,
                    label=None if m.any() else f"{_mpl_text(kind)} ({int(e.sum())})",
                )
        if has_noc:
            k = np.isfinite(data.noc_intensity)
            for i, kind in enumerate(sorted(set(data.kind))):
                m = k & (kinds == kind)
                if m.any():
                    ax.scatter(
                        data.noc_intensity[m],
                        data.achieved[m] * unit.scale,
                        s=22,
                        facecolors="none",
                        edgecolors=_COLORS[i % len(_COLORS)],
                        alpha=0.6,
                    )
            ax.scatter([], [], s=22, facecolors="none", edgecolors="grey", label="same ops per network byte")
        _label_clusters(ax, data, unit.scale)
        if data.no_hbm.any():
            ax.axvline(data.x_edge, color="grey", ls=":", lw=1, label="no HBM traffic (placed at this edge)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(
            "arithmetic intensity [FLOP/B]: filled per HBM byte, hollow per network byte"
            if has_noc
            else "arithmetic intensity [FLOP/B of HBM traffic]"
        )
        ax.set_ylabel(f"achieved [{unit.symbol}]")
        ax.set_title(_mpl_text(title) if title else "Per-op roofline")
    except BaseException:
        plt.close(fig)
        raise
    return finish(fig, ax, path, "outside")


# Points closer than this (in decades, both axes) are one cluster and get one label on the per-op roofline.
CLUSTER_DECADES = 0.05
MAX_CLUSTER_LABELS = 8


def _label_clusters(ax: Any, data: RooflineOpsData, scale: float) -> None:
    """Name the ops behind each of the biggest clusters of filled points: 289 matmuls of a decode land on
    one spot, and the label says which ops and how many ("q_proj, k_proj, ... (289 ops)")."""
    if not len(data.achieved):
        return
    kx = np.round(np.log10(np.maximum(data.intensity, 1e-300)) / CLUSTER_DECADES)
    ky = np.round(np.log10(np.maximum(data.achieved, 1e-300)) / CLUSTER_DECADES)
    clusters: dict[tuple[float, float], list[int]] = {}
    for i, key in enumerate(zip(kx, ky, strict=True)):
        clusters.setdefault(key, []).append(i)
    biggest = sorted(clusters.values(), key=len, reverse=True)[:MAX_CLUSTER_LABELS]
    mid = float(np.sqrt(np.min(data.intensity) * np.max(data.intensity)))
    for rank, members in enumerate(biggest):
        names = list(dict.fromkeys(data.name[i] for i in members))
        text = ", ".join(names[:4]) + (f" +{len(names) - 4} more" if len(names) > 4 else "")
        i = members[0]
        left_half = data.intensity[i] < mid  # labels point inwards, so none is cut at the plot's edge
        dx = 10 if left_half else -10
        ax.annotate(
            _mpl_text(f"{text} ({len(members)} ops)"),
            (data.intensity[i], data.achieved[i] * scale),
            # Alternately above and below, further out for smaller clusters: neighbours' labels part.
            xytext=(dx, 12 + 14 * (rank // 2)) if rank % 2 == 0 else (dx, -18 - 14 * (rank // 2)),
            textcoords="offset points",
            ha="left" if left_half else "right",
            fontsize=7,
            color="#333",
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "#888"},
        )


# ---- operators grouped by name (readable at 500+ operators) -------------------------------------------
@dataclass(frozen=True)
class OpGroupsData:
    """Operators of one design grouped by name (``q_proj`` of every layer is one group), biggest first.

    ``time_s``: summed execution windows (end - start); ``load_s``: summed own HBM load phases; ``flops`` and
    ``hbm_bytes`` summed. ``achieved`` = flops / (time_s + load_s) FLOP/s (the per-op roofline's time);
    ``intensity`` = flops / hbm_bytes (inf without HBM traffic); ``roof`` = min(peak, HBM bandwidth x
    intensity); ``latency_s`` the design's.
    """

    name: tuple[str, ...]
    kind: tuple[str, ...]
    count: np.ndarray
    time_s: np.ndarray
    load_s: np.ndarray
    flops: np.ndarray
    hbm_bytes: np.ndarray
    peak_flops_per_s: float
    hbm_bytes_per_s: float
    latency_s: float

    @property
    def achieved(self) -> np.ndarray:
        t = self.time_s + self.load_s
        return np.divide(self.flops, t, out=np.zeros_like(t), where=t > 0)

    @property
    def intensity(self) -> np.ndarray:
        return np.divide(self.flops, self.hbm_bytes, out=np.full_like(self.flops, np.inf), where=self.hbm_bytes > 0)

    @property
    def roof(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.minimum(self.peak_flops_per_s, self.hbm_bytes_per_s * self.intensity)


def op_groups_data(design: Mapping[str, Any]) -> OpGroupsData:
    """Group a design JSON's ops by name (see OpGroupsData). Raises ValueError when the JSON lacks the
    per-operator times or the chip's roofs."""
    try:
        derived = design["chip"]["derived"]
        peak = float(derived["peak_flops_per_s"])
        bw = float(derived["hbm_bytes_per_s"])
        latency = float(design["latency_s"])
        ops = list(design["ops"])
        rows = [(str(op.get("name", "?")), str(op.get("kind", "?")), float(op["end_s"]) - float(op["start_s"]),
                 float(op.get("load_s", 0.0) or 0.0), float(op["flops"]), float(op["hbm_bytes"])) for op in ops]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"design JSON lacks per-operator times or chip.derived ({err})") from None
    groups: dict[str, list[Any]] = {}
    for name, kind, t, load, flops, hbm in rows:
        g = groups.setdefault(name, [kind, 0, 0.0, 0.0, 0.0, 0.0])
        g[1] += 1
        g[2] += t
        g[3] += load
        g[4] += flops
        g[5] += hbm
    order = sorted(groups, key=lambda k: -groups[k][2])
    col = lambda j: _frozen([groups[k][j] for k in order])  # noqa: E731
    return OpGroupsData(
        name=tuple(order),
        kind=tuple(groups[k][0] for k in order),
        count=_frozen([groups[k][1] for k in order], np.int64),
        time_s=col(2),
        load_s=col(3),
        flops=col(4),
        hbm_bytes=col(5),
        peak_flops_per_s=peak,
        hbm_bytes_per_s=bw,
        latency_s=latency,
    )
