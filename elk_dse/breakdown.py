"""Where a design's latency goes: compute, shift (exposed on-chip network), exposed HBM load, sync, idle.

The one place this split is computed. It reads the Program (operator kinds) and the simulator's timings
(``SimResult``) and adds no cost formula of its own: the phase durations come from the simulator, which took
them from ``elk_dse.cost``. The parts of every design sum to its latency exactly (up to float rounding):

* the cores' timeline is walked in execution order; time in which the cores execute nothing is **exposed
  HBM load** while some HBM load is running (the cores wait for data: the next operator's, or the HBM path is
  busy with loads ahead of it in the load order), and **idle** otherwise (after the last operator, or waiting
  with the HBM path idle, which the schedulers avoid);
* an operator's execution window is split into **sync** (its barriers), **compute** (the busiest core's
  compute time), **exposed HBM load** of a plan streaming its passes from HBM during execution (the rest of the
  window, up to the streaming time) and **shift** (the rest: network time not hidden behind compute, i.e.
  compute-shift rotations, warm-up copies, redistribution and reductions, plus any contention stretch).

If a simulator overlaps two operators' executions, the overlapped part is counted once (for the operator that
started first), so the parts still sum to the latency. Gaps and windows are attributed to the operator that
follows / owns them, which gives the per-operator-kind split.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

PARTS: tuple[str, ...] = ("compute", "shift", "hbm_exposed", "sync", "idle")


@dataclass(frozen=True)
class Breakdown:
    """Seconds of one pass by part; ``total_s`` is their sum (= the latency)."""

    compute_s: float = 0.0
    shift_s: float = 0.0
    hbm_exposed_s: float = 0.0
    sync_s: float = 0.0
    idle_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.compute_s + self.shift_s + self.hbm_exposed_s + self.sync_s + self.idle_s

    def __add__(self, other: Breakdown) -> Breakdown:
        return Breakdown(*(getattr(self, p + "_s") + getattr(other, p + "_s") for p in PARTS))

    def to_dict(self) -> dict[str, float]:
        """``{"compute_s": ..., ..., "idle_s": ...}`` (seconds)."""
        return {p + "_s": float(getattr(self, p + "_s")) for p in PARTS}


@dataclass(frozen=True)
class LatencyBreakdown:
    """A design's breakdown in total and per operator kind (kinds in first-execution order)."""

    total: Breakdown
    by_kind: tuple[tuple[str, Breakdown], ...]

    def to_dict(self) -> dict[str, object]:
        return {"total": self.total.to_dict(), "by_kind": {k: b.to_dict() for k, b in self.by_kind}}


def breakdown_from_timings(
    kinds: Sequence[str],
    start_s: Sequence[float],
    end_s: Sequence[float],
    load_start_s: Sequence[float],
    load_end_s: Sequence[float],
    compute_s: Sequence[float],
    sync_s: Sequence[float],
    latency_s: float,
    stream_s: Sequence[float] | None = None,
) -> LatencyBreakdown:
    """The breakdown from per-operator timings (seconds, one entry per operator instance); see the module doc.

    Raises ValueError when the sequences differ in length or an operator ends before it starts.
    """
    n = len(kinds)
    if not all(len(a) == n for a in (start_s, end_s, load_start_s, load_end_s, compute_s, sync_s)):
        raise ValueError("breakdown: per-operator sequences differ in length")
    loading = _busy_measure(load_start_s, load_end_s)
    acc: dict[str, list[float]] = {}
    cursor = 0.0  # time up to which the cores' timeline has been attributed
    for i in sorted(range(n), key=lambda j: (float(start_s[j]), j)):
        start, end = float(start_s[i]), float(end_s[i])
        if end < start:
            raise ValueError(f"breakdown: operator {i} ends ({end!r} s) before it starts ({start!r} s)")
        parts = acc.setdefault(str(kinds[i]), [0.0] * len(PARTS))
        if start > cursor:
            exposed = min(loading(cursor, start), start - cursor)
            parts[2] += exposed
            parts[4] += start - cursor - exposed
            cursor = start
        window = end - cursor  # the part of the execution not already attributed (0 if fully overlapped)
        if window > 0:
            dur = end - start
            sync = min(float(sync_s[i]), dur)
            compute = min(float(compute_s[i]), dur - sync)
            streamed = min(float(stream_s[i]), dur - sync - compute) if stream_s is not None else 0.0
            shift = dur - sync - compute - streamed
            scale = window / dur  # < 1 only when executions overlap
            parts[0] += compute * scale
            parts[1] += shift * scale
            parts[2] += streamed * scale
            parts[3] += sync * scale
            cursor = end
    by_kind = [(k, Breakdown(*v)) for k, v in acc.items()]
    tail = max(float(latency_s) - cursor, 0.0)  # after the last operator: idle (the simulators leave none)
    total = sum((b for _, b in by_kind), Breakdown()) + Breakdown(idle_s=tail)
    return LatencyBreakdown(total, tuple(by_kind))


def _busy_measure(starts: Sequence[float], ends: Sequence[float]):
    """A function (a, b) -> seconds of [a, b] covered by the union of the intervals [starts, ends]."""
    merged: list[list[float]] = []
    for a, b in sorted((float(a), float(b)) for a, b in zip(starts, ends, strict=True) if b > a):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    lo = [m[0] for m in merged]
    before = [0.0]  # covered seconds before each merged interval
    for a, b in merged:
        before.append(before[-1] + b - a)

    def covered_until(t: float) -> float:
        k = bisect.bisect_right(lo, t)  # intervals starting at or before t
        if k == 0:
            return 0.0
        a, b = merged[k - 1]
        return before[k - 1] + min(t, b) - a

    return lambda a, b: max(covered_until(b) - covered_until(a), 0.0)


def latency_breakdown(program, result) -> LatencyBreakdown:
    """The breakdown of ``program`` (a :class:`elk_dse.program.Program`) as timed by ``result`` (a
    :class:`elk_dse.sim.base.SimResult`)."""
    t = result.timings
    return breakdown_from_timings(
        [op.kind for op in program.ops],
        [x.start_s for x in t],
        [x.end_s for x in t],
        [x.load_start_s for x in t],
        [x.load_end_s for x in t],
        [x.compute_s for x in t],
        [x.sync_s for x in t],
        result.latency_s,
        [x.stream_s for x in t],
    )
