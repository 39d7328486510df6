"""The schedule's timing rule -- the one place it lives -- and the as-soon-as-possible timeline built on it.

Loads run one at a time on the HBM path in ``load_order``; a load waits for the previous load in that order and
for the executions listed in its ``load_after`` (the operators whose end frees the SRAM it needs); an operator
executes after its own load, after the previous operator, and after the executions in its ``exec_after``.
A *concurrent* operator (a collective fused with or overlapped by the operators after it, issue 17g) starts
by the same rule, but the operators after it wait only for its start, not for its end; whatever needs its
result lists it in ``exec_after`` (so does the next collective on the same links: the Program says so).
A load may carry a *release time* (``load_release``, seconds, default none): it starts no earlier, its duration
unchanged, the HBM path idle meanwhile -- the Elk artifact's delayed load
(conventions=paper only: platformxlab/elk@8c6e814 DNNProgram.py:797-832, a load whose network time does not
fit into the running operator's compute is shifted later, not lengthened; ``artifact_contention`` below).

:class:`TimingRule` tracks which loads and executions have ended (and when) and says which load and which
execution may start next and from when. ``asap_timeline`` drives it with known durations (the compiler scores
schedules with it; the analytic and null simulators time Programs with it); the event-driven simulator drives
the same rule with the ends its contention model produces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class TimingRule:
    """State of the timing rule over one pass: ends of loads and executions so far (seconds; NaN: not yet).

    Protocol: ``ready_load()`` / ``ready_exec()`` name the next load (in load order) / execution (in program
    order) whose dependencies have all ended, with the earliest time it may start (None: not yet); the caller
    then reports ``start_load(j)`` ... ``end_load(j, t, uses_hbm)`` and ``start_exec(i)`` ... ``end_exec(i, t)``.
    A load with ``uses_hbm=False`` (no bytes) does not hold the HBM path. ``concurrent[i]``: operator i runs
    beside the operators after it (they wait for its start, not its end); ``end_exec`` of a concurrent
    operator may then come after later operators started. Load j starts no earlier than ``load_release[j]`` (seconds; None: no release times).
    """

    def __init__(self, load_after: Sequence[Sequence[int]], exec_after: Sequence[Sequence[int]],
                 load_order: Sequence[int] | None = None, concurrent: Sequence[bool] | None = None,
                 load_release: Sequence[float] | None = None) -> None:
        self.n = n = len(exec_after)
        self.order = list(range(n)) if load_order is None else list(load_order)
        if sorted(self.order) != list(range(n)):
            raise ValueError("load_order must be a permutation of the operators")
        self.load_after = load_after
        self.exec_after = exec_after
        self.load_end = [math.nan] * n
        self.exec_end = [math.nan] * n
        self.next_load = 0  # position in the load order
        self.next_exec = 0  # operator index
        self._load_issued = False
        self._exec_issued = False
        self._hbm_free = 0.0  # end of the last load that held the HBM path
        self._prev_end = 0.0  # end of the previous execution (of a non-concurrent operator)
        self._prev_start = 0.0  # start of the previous execution (program order of starts)
        self._ready_t = 0.0  # the start time ready_exec last answered
        self.concurrent = [False] * n if concurrent is None else [bool(c) for c in concurrent]
        if len(self.concurrent) != n:
            raise ValueError("concurrent must name every operator")
        self._ended = 0  # executions ended so far
        self.load_release = None if load_release is None else [float(r) for r in load_release]
        if self.load_release is not None and (len(self.load_release) != n
                                              or any(r != r for r in self.load_release)):
            raise ValueError("load_release must give every operator's load a release time in seconds")

    def ready_load(self) -> tuple[int, float] | None:
        """(operator, earliest start) of the next load if the previous load and its load_after have ended."""
        p = self.next_load
        if p >= self.n or self._load_issued:
            return None
        if p and self.load_end[self.order[p - 1]] != self.load_end[self.order[p - 1]]:  # NaN: still loading
            return None
        j = self.order[p]
        t = self._hbm_free
        for m in self.load_after[j]:
            e = self.exec_end[m]
            if e != e:
                return None
            if e > t:
                t = e
        if self.load_release is not None and self.load_release[j] > t:
            t = self.load_release[j]
        return j, t

    def start_load(self, j: int) -> None:
        if self.next_load >= self.n or self.order[self.next_load] != j or self._load_issued:
            raise ValueError(f"load {j} is not the next ready load")
        self._load_issued = True

    def end_load(self, j: int, t: float, uses_hbm: bool = True) -> None:
        self.load_end[j] = t
        if uses_hbm:
            self._hbm_free = t
        self.next_load += 1
        self._load_issued = False

    def ready_exec(self) -> tuple[int, float] | None:
        """(operator, earliest start) of the next execution if its load, the previous operator and its
        exec_after have ended."""
        i = self.next_exec
        if i >= self.n or self._exec_issued:
            return None
        t = self.load_end[i]
        if t != t:
            return None
        if self._prev_end > t:
            t = self._prev_end
        if self._prev_start > t:
            t = self._prev_start
        for m in self.exec_after[i]:
            e = self.exec_end[m]
            if e != e:
                return None
            if e > t:
                t = e
        self._ready_t = t
        return i, t

    def start_exec(self, i: int) -> None:
        if i != self.next_exec or self._exec_issued:
            raise ValueError(f"operator {i} is not the next ready execution")
        self._prev_start = self._ready_t
        if self.concurrent[i]:  # the next operator may start now
            self.next_exec += 1
        else:
            self._exec_issued = True

    def end_exec(self, i: int, t: float) -> None:
        self.exec_end[i] = t
        self._ended += 1
        if not self.concurrent[i]:
            self._prev_end = t
            self.next_exec += 1
            self._exec_issued = False

    @property
    def done(self) -> bool:
        """Every execution has ended (concurrent ones included)."""
        return self._ended >= self.n

    def deadlock(self) -> ValueError:
        """The error for a Program whose dependencies cannot all be met."""
        return ValueError(f"schedule deadlocks at op {self.next_exec}: its load or execution waits for a later "
                          f"execution")


def asap_timeline(load_s: Sequence[float] | np.ndarray, exec_s: Sequence[float] | np.ndarray,
                  load_after: Sequence[Sequence[int]], exec_after: Sequence[Sequence[int]],
                  load_order: Sequence[int] | None = None, concurrent: Sequence[bool] | None = None,
                  load_release: Sequence[float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(load_start, load_end, exec_start, exec_end) arrays in seconds: every load and execution as soon as
    the timing rule allows, with the given durations (``concurrent``, ``load_release``: TimingRule's).

    Raises ValueError if the dependencies deadlock (a load waits for an execution that waits for it).
    """
    rule = TimingRule(load_after, exec_after, load_order, concurrent, load_release)
    n = rule.n
    load_start = np.zeros(n)
    start = np.zeros(n)
    while not rule.done:
        progressed = False
        ready = rule.ready_load()
        while ready is not None:
            j, t = ready
            rule.start_load(j)
            load_start[j] = t
            d = float(load_s[j])
            rule.end_load(j, t + d, uses_hbm=d > 0)
            progressed = True
            ready = rule.ready_load()
        ready = rule.ready_exec()
        while ready is not None:
            i, t = ready
            rule.start_exec(i)
            start[i] = t
            rule.end_exec(i, t + float(exec_s[i]))
            progressed = True
            ready = rule.ready_exec()
        if not progressed:
            raise rule.deadlock()
    return load_start, np.asarray(rule.load_end), start, np.asarray(rule.exec_end)


def latest_loads(load_start: np.ndarray, load_end: np.ndarray, exec_start: np.ndarray,
                 load_order: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(load_start, load_end), seconds: the loads of a timeline placed as late as possible with every execution
    where it is -- the Elk artifact's placement (conventions=paper only; issue 18g). Its schedulers build the
    schedule backwards from the last operator and end each load at ``min(its operator's execution start, the
    start of the next load in load order)`` (platformxlab/elk@8c6e814 DNNProgram.py:1753-1756 Naive, 1077-1080
    Static, 855-858 ICBM Ordered, 1390-1402 ICBM), so a load runs just before its operator, under the operators
    right before it, where our ASAP timeline starts it as soon as the SRAM it needs is free.

    Walks the load order backwards; a load of zero duration (no bytes) does not hold the HBM path and stays.
    Each load keeps its duration and never ends earlier than in the given (ASAP) timeline, so every dependency
    of the timing rule still holds and no execution moves."""
    ls = np.array(load_start, dtype=np.float64)
    le = np.array(load_end, dtype=np.float64)
    s = np.asarray(exec_start, dtype=np.float64)
    order = range(len(ls)) if load_order is None else load_order
    nxt = math.inf  # start of the next load (in load order) that holds the HBM path
    for j in reversed(list(order)):
        dur = le[j] - ls[j]
        if dur <= 0:
            continue
        end = max(min(s[j], nxt), le[j])
        ls[j], le[j] = end - dur, end
        nxt = ls[j]
    return ls, le


def artifact_contention(load_start: np.ndarray, load_end: np.ndarray, load_net_s: np.ndarray,
                        exec_start: np.ndarray, exec_end: np.ndarray, net_s: np.ndarray,
                        delays_load: bool, loads_latest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The Elk artifact's contention rule between preloads and the running operator (conventions=paper only:
    chips carrying its delivery rule, ``hbm.delivery_gb_s_per_core`` > 0), on a timeline already built:
    (stretch of each execution, delay of each load), seconds.

    A load j of duration D_j occupies the network for N_j (``load_net_s``: its on-chip delivery time) spread
    evenly over its duration. Operator i (window ``exec_start[i]`` .. ``exec_end[i]``) needs the network for
    ``net_s[i]``: its shifts and syncs, which the artifact counts as network time (``sss_cycles`` = sync/shift +
    shuffle, platformxlab/elk@8c6e814 TensorExpression.py:640-650, read as ``cold_hot_table[..][1][1][3]``).
    The artifact schedules backwards from the last operator; this is its rule mirrored in time (its
    latest-first walk from an operator's deadline becomes an earliest-first walk from its start):

    - ``delays_load`` False (its ``delay_comp=True``; DNNProgram.py:756-789 ICBM Ordered, 984-1013 Static,
      1277-1311 ICBM, 1662-1691 Naive): operator i's network demand fits into the network time the loads
      overlapping its window leave free (D_j - N_j of each, at the rate (D_j - N_j) / D_j), and at the full rate
      beyond the last of them; it ends no earlier than that. Stretch = max(0, that time - its window).
    - ``delays_load`` True (``delay_comp=False``; DNNProgram.py:797-832, 1318-1345): the operator is not
      stretched; the overlapping loads may use the network only while it computes (its window minus
      ``net_s[i]``). Walking them in time order, the first whose cumulative network time in the window exceeds
      that is shifted later -- not lengthened -- by the excess x D_j / N_j (its network time spread over its
      duration); the loads after it follow on the HBM path. The caller re-times with the shifted start as the
      load's release time (``TimingRule``'s ``load_release``: its start in this timeline + the shift).

    A load overlapping its own operator is ignored (it ended before the operator started). One pass on the
    given timeline, as the artifact places each operator once.

    ``loads_latest`` (issue 18g; with ``delays_load`` False): the loads are placed as the artifact places them
    (``latest_loads``), and the operator's walk is the artifact's own, backwards from its end through the
    loads of later operators that start before it, latest first (DNNProgram.py:1662-1691 "start from the
    latest overlapped op", 984-1013, 756-789): its need fits into their free network (gaps between them at
    the full rate, as in the forward walk) and, past the earliest of them, at the full rate; the operator
    starts no later than that, i.e. its stretch is max(0, end - that start - window)."""
    ls = np.asarray(load_start, dtype=np.float64)
    le = np.asarray(load_end, dtype=np.float64)
    net_load = np.asarray(load_net_s, dtype=np.float64)
    s = np.asarray(exec_start, dtype=np.float64)
    e = np.asarray(exec_end, dtype=np.float64)
    need = np.asarray(net_s, dtype=np.float64)
    n = len(s)
    stretch = np.zeros(n)
    delay = np.zeros(len(ls))
    dur = le - ls
    live = np.flatnonzero((dur > 0) & (net_load > 0))
    live = live[np.argsort(ls[live], kind="stable")]
    if not len(live):
        return stretch, delay
    l_start, l_end = ls[live], le[live]
    for i in range(n):
        window = e[i] - s[i]
        if window <= 0:
            continue
        # loads overlapping the window, in time order (loads run one at a time on the HBM path)
        lo = int(np.searchsorted(l_end, s[i], side="right"))
        hi = int(np.searchsorted(l_start, e[i], side="left"))
        js = [int(live[k]) for k in range(lo, hi) if int(live[k]) != i]
        if not js:
            continue
        if loads_latest and not delays_load:
            continue  # walked backwards below
        if delays_load:
            avail = max(0.0, window - float(need[i]))
            cum = 0.0
            for j in js:
                part = net_load[j] * (min(le[j], e[i]) - max(ls[j], s[i])) / dur[j]
                cum += part
                if cum > avail:
                    delay[j] += (cum - avail) * dur[j] / net_load[j]
                    break
        else:
            left = float(need[i])
            t = s[i]
            for j in js:
                if left <= 0:
                    break
                if ls[j] > t:  # a gap between loads: the network is the operator's
                    gap = ls[j] - t
                    if left <= gap:
                        t += left
                        left = 0.0
                        break
                    left -= gap
                    t = ls[j]
                rate = 1.0 - net_load[j] / dur[j]  # the share of the network load j leaves free
                span = le[j] - t
                if rate > 0 and left <= span * rate:
                    t += left / rate
                    left = 0.0
                    break
                left -= max(0.0, span * rate)
                t = le[j]
            t += left  # past the overlapping loads: the whole network
            stretch[i] = max(0.0, t - e[i])
    if loads_latest and not delays_load:
        stretch = _latest_first_stretch(ls, le, net_load, s, e, need, live)
    return stretch, delay


def _latest_first_stretch(ls: np.ndarray, le: np.ndarray, net_load: np.ndarray, s: np.ndarray, e: np.ndarray,
                          need: np.ndarray, live: np.ndarray) -> np.ndarray:
    """``artifact_contention``'s stretch with the loads placed as late as possible: each operator's network
    need walked backwards from its end through the loads of later operators (``live``: loads that hold the
    network, sorted by start) that start before that end, latest first."""
    n = len(s)
    stretch = np.zeros(n)
    l_start = ls[live]
    prefix_max = np.maximum.accumulate(live)  # the latest operator among the loads up to each one
    for i in range(n):
        window = e[i] - s[i]
        left = float(need[i])
        if window <= 0 or left <= 0:
            continue
        hi = int(np.searchsorted(l_start, e[i], side="left"))  # loads starting before the operator ends
        t = e[i]
        for k in range(hi - 1, -1, -1):
            if prefix_max[k] <= i:  # no later operator's load starts this early
                break
            j = int(live[k])
            if j <= i:  # its own load and earlier operators' loads: not preloaded while it runs
                continue
            top = min(le[j], t)
            if top < t:  # a gap after this load: the network is the operator's
                gap = t - top
                if left <= gap:
                    t -= left
                    left = 0.0
                    break
                left -= gap
                t = top
            dur = le[j] - ls[j]
            rate = 1.0 - net_load[j] / dur  # the share of the network load j leaves free
            span = t - ls[j]
            if rate > 0 and left <= span * rate:
                t -= left / rate
                left = 0.0
                break
            left -= max(0.0, span * rate)
            t = ls[j]
        t -= left  # before the loads: the whole network
        stretch[i] = max(0.0, (e[i] - t) - window)
    return stretch
