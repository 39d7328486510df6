"""The machinery Elk's inter-operator schedulers share (the schedulers themselves: compiler/schedulers/):
operator choices, the schedule record, inductive scheduling, fixed windows, load dependencies.

While operator i runs, the weights/KV of the operators in its preload window stream from HBM into their compact
idle layouts; i's execution space is what SRAM leaves after the live activations and those preloaded idle bytes
(+ a margin), and i runs the fastest plan that fits there (after warming its own weights up into the active
layout). Loads run one at a time in the load order; a load may start once the operator whose window first
covers it has ended... i.e. when the SRAM it needs has been freed.

All schedules are described by (load order pi, window end e_i per operator, plan per operator); the window end
e_i = P_i + k_i is the last load position that may be resident while i runs (P_i: the last position holding an
operator <= i; k_i: the preload depth), and must not decrease along the program.

- ``elk_dyn``: inductive (backward) scheduling in the default load order: from the last operator back, every
  depth k is tried, the op's plan follows from the space left, its latest start is
  min(S_{i+1}, LS[P_i+k+1]) - E_i(k) (LS: latest start of the load at that position), the best k kept.
- ``elk_full``: the same over per-layer permutations of operator groups (each ending with a large matmul/conv)
  within a small edit distance, the same permutation in every repetition of a layer; best kept.
- ``basic``: depth 1 everywhere; ``static``: one execution-space size for all operators (best of a sweep), the
  rest of SRAM for preloading; ``ideal``: every operator's best plan in the whole free SRAM, loads costing only
  bytes / HBM bandwidth, preloading bounded only by SRAM.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import numpy as np

from elk_dse.compiler.partition import NoFit, PlanChoice, stream_plan
from elk_dse.compiler.select import frontier, table_work, work_of
from elk_dse.compiler.t10 import PlanTable, min_cold_elems_with, plan_table
from elk_dse.cost.op_time import exec_time, load_time_s
from elk_dse.cost.timeline import asap_timeline
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import HBM_ROLES, Operator
from elk_dse.program import OpWork

INFEASIBLE = float("inf")


@dataclass
class OpChoices:
    """One operator's options in preloaded mode: frontier plans (memory ascending, exec time descending)."""

    table: PlanTable
    rows: list[int]
    mem: list[float]
    exec_s: list[float]
    load_s: float  # HBM -> idle layout, network delivery included
    idle_bytes: float  # per core, compact
    ideal_rows: list[int] = field(default_factory=list)
    ideal_mem: list[float] = field(default_factory=list)
    ideal_exec_s: list[float] = field(default_factory=list)
    ideal_load_s: float = 0.0
    stream: PlanChoice | None = None  # the streaming fallback when no plan fits at all
    work: SimpleNamespace | None = None  # resource demands of every plan, preloaded mode (select.table_work)
    ideal_work: SimpleNamespace | None = None  # the same, loaded straight into the active layout
    # Max-cold idle layouts (issue 18e; chips with the artifact's plan rules, conventions=paper, only): the plans
    # of the direct-load (ideal) frontier by memory ascending (``cold_mem``) and, per prefix, the table row the
    # artifact's Max Cold picks among them (``cold_pick``: the largest cold layout, then the faster), with per-row
    # load seconds (``cold_load_s``) and execution seconds without warm-up (``cold_exec_s``).
    cold_mem: np.ndarray | None = None
    cold_pick: np.ndarray | None = None
    cold_load_s: np.ndarray | None = None
    cold_exec_s: np.ndarray | None = None

    def work_of(self, fi: int, ideal: bool) -> OpWork:
        """The OpWork of frontier plan ``fi`` (ideal: loads free of network cost)."""
        row = (self.ideal_rows if ideal else self.rows)[fi]
        arrays = self.ideal_work if ideal else self.work
        if arrays is None:
            raise ValueError("these OpChoices carry no plan work arrays (op_choices builds them)")
        work = work_of(arrays, row, self.table)
        return replace(work, hbm_delivered_bytes=0.0) if ideal else work

    def max_cold(self, budget: float) -> OpChoices | None:
        """This operator held in its Max Cold idle layout for an execution space of ``budget`` bytes per core
        (platformxlab/elk@8c6e814 DNNProgram.py:566-581, ``baseline_cold_hot(use_largest_cold=True)``): the
        largest cold layout whose plan fits, preloaded with its replicas, so that the plan starts without warm-up.
        Our cold layout of a plan is its active weight layout (``weight_active_bytes``: pieces and replicas,
        each delivered from HBM to its core); the artifact's cold layouts may also be finer temporal splits of a
        plan's, with a warm-up to it (not built). One-plan choices (the plan index 0 is that plan); None when
        no plan fits ``budget`` (the artifact: "exec size too small") or the chip has no cold layouts."""
        if self.cold_mem is None or self.cold_pick is None or self.cold_load_s is None or self.cold_exec_s is None:
            return None
        k = int(np.searchsorted(self.cold_mem, budget, side="right")) - 1
        if k < 0:
            return None
        row = int(self.cold_pick[k])
        return replace(self, rows=[row], mem=[float(self.table.mem_bytes[row])],
                       exec_s=[float(self.cold_exec_s[row])], load_s=float(self.cold_load_s[row]),
                       idle_bytes=float(self.table.weight_active_bytes[row]), work=self.ideal_work,
                       cold_mem=None, cold_pick=None, cold_load_s=None, cold_exec_s=None)

    def cold_at(self, budget: float) -> tuple[int, float, float, float] | None:
        """(table row, execution s, idle bytes per core, load s) of ``max_cold(budget)`` without building its
        choices; None where ``max_cold`` gives None."""
        if self.cold_mem is None or self.cold_pick is None or self.cold_load_s is None or self.cold_exec_s is None:
            return None
        k = int(np.searchsorted(self.cold_mem, budget, side="right")) - 1
        if k < 0:
            return None
        row = int(self.cold_pick[k])
        return (row, float(self.cold_exec_s[row]), float(self.table.weight_active_bytes[row]),
                float(self.cold_load_s[row]))

    def exec_at(self, budget: float, ideal: bool = False) -> tuple[float, int]:
        """(exec seconds, frontier index) of the fastest plan with memory <= budget; (inf, -1) if none."""
        mem, ex = (self.ideal_mem, self.ideal_exec_s) if ideal else (self.mem, self.exec_s)
        k = bisect.bisect_right(mem, budget) - 1
        return (ex[k], k) if k >= 0 else (INFEASIBLE, -1)


def min_cold_bytes(op: Operator, table: PlanTable) -> np.ndarray | None:
    """Per plan of ``table``: the smallest idle (cold) layout, in bytes per core, that can warm up into it under
    the artifact's rule (platformxlab/elk@8c6e814), -1 where none can. There an idle layout is itself a plan
    (spatial, temporal) whose size is its weight bytes per core without buffers (TensorExpression.py:610-619;
    activations and the output are ignored variables, :181 and models/model_parser.py:650-712), bucketed by
    exact bytes (``search_optimal_config_cold``, :982-1062); it pairs only with a hot plan of the *same spatial
    partition* whose temporal parts divide its own on every dim (``is_cold_hot_plan_compatible``, :85-100),
    paid by its warm-up (``get_warm_up_time``, :687-701). In our plan terms: the fewest bytes per core of a split
    of each weight/KV tensor's replicas in the plan's spatial partition into per-dim parts (compiler/t10.py
    ``min_cold_elems_with``) whose part on the plan's rotated dim is a multiple of its rotation factor. None when
    the operator has no HBM tensor or one has a kernel-window axis (the rule is not built for those)."""
    hbm = [(j, t) for j, t in enumerate(op.inputs) if t.role in HBM_ROLES]
    if not hbm or any(not isinstance(a, str) for _, t in hbm for a in t.axes):  # a kernel-window axis
        return None
    names = list(table.dims)
    sizes = np.array([n for _, n in op.dims], dtype=np.int64)
    sub = -(-sizes[None, :] // table.factors)
    n = len(table)
    cold = np.zeros(n, dtype=np.int64)
    paired = np.ones(n, dtype=bool)
    for j, t in hbm:
        tdims = [names.index(str(a)) for a in t.axes]
        others = [k for k in range(len(names)) if k not in tdims]
        replicas = np.prod(table.factors[:, others], axis=1, dtype=np.int64) if others else np.ones(n, np.int64)
        rd = table.rot_dim[:, j]
        pos = np.full(n, -1, dtype=np.int64)
        for q, k in enumerate(tdims):
            pos[rd == k] = q
        fac = np.where(pos >= 0, table.rot_factor[:, j], 1).astype(np.int64)
        keys = np.column_stack([sub[:, tdims], replicas, pos, fac])
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel()
        m = len(tdims)
        vals = np.array([min_cold_elems_with(tuple(int(x) for x in row[:m]), int(row[m]), int(row[m + 1]),
                                             int(row[m + 2])) for row in uniq], dtype=np.int64)[inv]
        cold += np.round(np.maximum(vals, 0) * float(t.bytes_per_element)).astype(np.int64)
        paired &= vals >= 0
    return np.where(paired, cold, -1)


def op_choices(op: Operator, chip: Chip, rotation: bool) -> OpChoices:
    """Preloaded-mode and ideal-mode frontiers of ``op`` on ``chip``."""
    table = plan_table(op, chip, rotation)
    w = table_work(table, chip, pinned=False, preloaded=True)
    ex = np.asarray(exec_time(chip, w).total_s, dtype=np.float64)
    idx = frontier(table.mem_bytes, ex)
    weight_bytes = sum(op.bytes_by_role(r) for r in HBM_ROLES)
    kv_write = op.tensor_bytes(op.output) if op.output.role in HBM_ROLES else 0.0
    load = float(load_time_s(chip, OpWork(compute_cycles=0.0, hbm_read_bytes=weight_bytes, hbm_write_bytes=kv_write,
                                          hbm_delivered_bytes=weight_bytes)))
    wi = table_work(table, chip, pinned=False, preloaded=False)
    w_direct = exec_time(chip, wi).total_s
    ex_i = np.asarray(w_direct, dtype=np.float64)
    idx_i = frontier(table.mem_bytes, ex_i)
    hbm_only = (weight_bytes + kv_write) / chip.hbm_bytes_per_s
    if chip.plan_rules == "artifact" and weight_bytes > 0:  # issue 18h: the artifact's Min Cold pairing
        # Its Min Cold row holds the plans of its hot frontier (ranked without warm-up, TensorExpression.py:
        # 896-960; ours: the direct-load frontier) that pair with its Min Cold layout (min_cold_bytes), each at
        # hot execution + warm-up (:1064-1071; ours: the preloaded-mode time); the compact frontier is theirs.
        # Its Min Cold layout is the smallest cold size with a pair (the cold-hot table's first key, DNNProgram.py:
        # 583; a cold size enters the table only with a pair, TensorExpression.py:1141-1158).
        cold_b = min_cold_bytes(op, table)
        if cold_b is not None and (cold_b[idx_i] >= 0).any():
            hot = idx_i[cold_b[idx_i] >= 0]
            cand = hot[cold_b[hot] == cold_b[hot].min()]
            idx = cand[frontier(table.mem_bytes[cand], ex[cand])]
    cold: dict = {}
    if chip.plan_rules == "artifact" and weight_bytes > 0:  # issue 18e: the artifact's Max Cold layouts
        # Its cold-hot table pairs cold layouts with the plans of its hot frontier only (TensorExpression.py:
        # 936-960, 1124-1147): ours is the frontier of plans loaded straight into their active layout.
        cold_vals = table.weight_active_bytes[idx_i]
        pick = np.zeros(len(idx_i), dtype=np.int64)
        for j in range(1, len(idx_i)):  # the largest cold so far; on a tie the later (faster) plan
            pick[j] = j if cold_vals[j] >= cold_vals[pick[j - 1]] else pick[j - 1]
        cold = {"cold_mem": table.mem_bytes[idx_i], "cold_pick": idx_i[pick],
                "cold_load_s": np.asarray(load_time_s(chip, wi), dtype=np.float64) * np.ones(len(table)),
                "cold_exec_s": ex_i}
    return OpChoices(
        table=table, rows=[int(i) for i in idx], mem=[float(m) for m in table.mem_bytes[idx]],
        exec_s=[float(e) for e in ex[idx]], load_s=load, idle_bytes=weight_bytes / chip.num_cores,
        ideal_rows=[int(i) for i in idx_i], ideal_mem=[float(m) for m in table.mem_bytes[idx_i]],
        ideal_exec_s=[float(e) for e in ex_i[idx_i]], ideal_load_s=hbm_only, work=w, ideal_work=wi, **cold)


@dataclass(frozen=True)
class ElkSchedule:
    """Per operator: frontier index of its plan (-1: streaming fallback), window end, SRAM split; the load
    order; and the schedule's own latency estimate (seconds)."""

    plan_index: tuple[int, ...]
    window_end: tuple[int, ...]
    load_order: tuple[int, ...]
    exec_budget_bytes: tuple[float, ...]
    preload_bytes: tuple[float, ...]
    latency_s: float
    ideal: bool = False
    # The choices the plan indices refer to when not the problem's (issue 18e: the Max Cold variant of
    # basic / static under conventions=paper, one-plan choices per operator from ``OpChoices.max_cold``).
    choices: tuple[OpChoices, ...] = ()


def _positions(order: list[int]) -> tuple[list[int], list[int]]:
    n = len(order)
    pos = [0] * n
    for p, o in enumerate(order):
        pos[o] = p
    last = []
    run = -1
    for i in range(n):
        run = max(run, pos[i])
        last.append(run)
    return pos, last


def _early_idle(order: list[int], last: list[int], idle: list[float]) -> list[float]:
    """Per op i: idle bytes of operators > i loaded at positions <= P_i (moved earlier by the load order)."""
    n = len(order)
    diff = [0.0] * (n + 1)
    for p, o in enumerate(order):
        i0 = bisect.bisect_left(last, p)  # first op whose P_i >= p
        if i0 < o:
            diff[i0] += idle[o]
            diff[o] -= idle[o]
    out, run = [], 0.0
    for i in range(n):
        run += diff[i]
        out.append(run)
    return out


def _latest_starts(order: list[int], S: list[float], LS: list[float], load: list[float], ready: int,
                   down_to: int) -> int:
    """Fill LS[p], the latest start of the load at position p, for p from ``ready`` - 1 down to ``down_to``: it
    ends before its operator starts (S) and before the next position's load starts; returns the new ``ready``
    (LS[p] is known for p >= ready). The one rule of both inductions."""
    for p in range(ready - 1, down_to - 1, -1):
        o = order[p]
        LS[p] = min(S[o], LS[p + 1]) - load[o]
    return min(ready, down_to)


def induction(choices: list[OpChoices], free_bytes: list[float], order: list[int], max_depth: int,
              margin: float, ideal: bool = False) -> ElkSchedule | None:
    """Elk's inductive scheduling for a given load order; None if some operator fits no plan at depth 0."""
    n = len(choices)
    pos, last = _positions(order)
    idle = [c.idle_bytes * (1.0 + margin) for c in choices]
    load = [c.ideal_load_s if ideal else c.load_s for c in choices]
    early = _early_idle(order, last, idle)
    prefix = [0.0]
    for p in range(n):
        prefix.append(prefix[-1] + idle[order[p]])
    S = [0.0] * (n + 1)
    LS = [0.0] * (n + 1)
    ready = n  # LS[p] is known for p >= ready
    plan_index = [0] * n
    window = [0] * n
    budgets = [0.0] * n
    preload = [0.0] * n
    next_end = n - 1
    for i in range(n - 1, -1, -1):
        if ready - 1 > last[i]:
            ready = _latest_starts(order, S, LS, load, ready, last[i] + 1)
        c = choices[i]
        best = None
        k_hi = min(max_depth, n - 1 - last[i], next_end - last[i])
        for k in range(0, max(k_hi, 0) + 1):
            resident = early[i] + prefix[last[i] + k + 1] - prefix[last[i] + 1]
            if ideal:
                if resident > free_bytes[i]:
                    break
                budget = free_bytes[i]
            else:
                budget = free_bytes[i] - resident
            e, fi = c.exec_at(budget, ideal)
            if fi < 0:
                # Streaming fallback: its own HBM traffic, no preload; its tiles were sized for all the free
                # SRAM, so it must still fit beside what earlier windows keep resident here.
                if c.stream is not None and k == 0 and c.stream.plan.sram_bytes_per_core <= budget:
                    e, fi = c.stream.seconds, -1
                else:
                    break
            s = min(S[i + 1], LS[last[i] + k + 1]) - e
            if best is None or s > best[0] + 1e-15:
                best = (s, k, fi, budget, resident)
        if best is None:
            return None
        S[i], k, plan_index[i], budgets[i], preload[i] = best
        window[i] = last[i] + k
        next_end = window[i]
    _latest_starts(order, S, LS, load, ready, 0)
    latency = -min(LS[0], S[0])
    return ElkSchedule(tuple(plan_index), tuple(window), tuple(order), tuple(budgets), tuple(preload),
                       latency, ideal)


# The artifact's ICBM picks each operator's cold-hot pair by its execution time plus its cold bytes per core
# over GBPS_PER_CORE (read as GiB/s), halved: ``load_time_noc = cold / bw_per_core_byte_per_cycle / 2`` with
# ``bw_per_core_byte_per_cycle = GBPS_PER_CORE * 1024**3 / 1.325e9`` (platformxlab/elk@8c6e814 DNNProgram.py:343,
# 400; GBPS_PER_CORE = 5.5, DNNProgram.py:34). In bytes per second: 5.5 x 2^30 x 2.
ARTIFACT_COLD_SCORE_BYTES_PER_S = 5.5 * 2**30 * 2


class _PrefixSums:
    """A Fenwick tree over load positions: add a value at a position, sum of positions 0..p."""

    def __init__(self, n: int) -> None:
        self.tree = [0.0] * (n + 1)

    def add(self, p: int, v: float) -> None:
        p += 1
        while p < len(self.tree):
            self.tree[p] += v
            p += p & -p

    def upto(self, p: int) -> float:
        out, p = 0.0, p + 1
        while p > 0:
            out += self.tree[p]
            p -= p & -p
        return out


def induction_per_op_cold(choices: list[OpChoices], free_bytes: list[float], order: list[int], max_depth: int,
                          margin: float) -> ElkSchedule | None:
    """``induction`` with the idle-layout variant chosen per operator, as the artifact's ICBM does (issue 18f;
    conventions=paper, where choices carry Max Cold layouts): at each preload depth the operator runs either a
    plan of its compact frontier (idle bytes compact, warm-up in its execution) or its Max Cold layout for the
    space left (``OpChoices.cold_at``: replicas preloaded, no warm-up), the one of lower execution + idle bytes
    per core / ARTIFACT_COLD_SCORE_BYTES_PER_S (its ``search_optimal_global_config_icbm``, DNNProgram.py:339-393,
    called per overlap group by ICBM Ordered, DNNProgram.py:707, and ICBM, :1241); on a tie the compact. The
    depth of the latest start is kept, as in ``induction``. The chosen variant's idle bytes then fill the windows of the earlier operators and its load
    time enters their latest starts (the induction runs backwards, so every later operator's variant is known).
    The schedule records the choices its plan indices refer to (``ElkSchedule.choices``) when any operator takes
    its Max Cold layout. None if some operator fits no plan at depth 0."""
    n = len(choices)
    pos, last = _positions(order)
    placed = _PrefixSums(n)  # idle bytes (margin included) of the operators placed so far, by load position
    idle = [0.0] * n
    load = [0.0] * n
    cold_row = [-1] * n
    S = [0.0] * (n + 1)
    LS = [0.0] * (n + 1)
    ready = n
    plan_index = [0] * n
    window = [0] * n
    budgets = [0.0] * n
    preload = [0.0] * n
    next_end = n - 1
    for i in range(n - 1, -1, -1):
        if ready - 1 > last[i]:
            ready = _latest_starts(order, S, LS, load, ready, last[i] + 1)
        c = choices[i]
        early = placed.upto(last[i])  # operators > i loaded at positions <= P_i
        best = None
        k_hi = min(max_depth, n - 1 - last[i], next_end - last[i])
        ahead = 0.0
        for k in range(0, max(k_hi, 0) + 1):
            if k:
                ahead += idle[order[last[i] + k]]
            resident = early + ahead
            budget = free_bytes[i] - resident
            e, fi = c.exec_at(budget)
            pick: tuple[float, int, int, float, float] | None = None  # (exec, plan index, cold row, idle, load)
            if fi >= 0:
                pick = (e, fi, -1, c.idle_bytes, c.load_s)
            cold = c.cold_at(budget)
            if cold is not None and (pick is None or cold[1] + cold[2] / ARTIFACT_COLD_SCORE_BYTES_PER_S
                                     < e + c.idle_bytes / ARTIFACT_COLD_SCORE_BYTES_PER_S):
                pick = (cold[1], 0, cold[0], cold[2], cold[3])
            if pick is None:
                if c.stream is not None and k == 0 and c.stream.plan.sram_bytes_per_core <= budget:
                    pick = (c.stream.seconds, -1, -1, c.idle_bytes, c.load_s)
                else:
                    break
            s = min(S[i + 1], LS[last[i] + k + 1]) - pick[0]
            if best is None or s > best[0] + 1e-15:
                best = (s, k, pick, budget, resident)
        if best is None:
            return None
        S[i], k, pick, budgets[i], preload[i] = best
        plan_index[i], cold_row[i] = pick[1], pick[2]
        idle[i], load[i] = pick[3] * (1.0 + margin), pick[4]
        placed.add(pos[i], idle[i])
        window[i] = last[i] + k
        next_end = window[i]
    _latest_starts(order, S, LS, load, ready, 0)
    latency = -min(LS[0], S[0])
    picked: tuple[OpChoices, ...] = ()
    if any(r >= 0 for r in cold_row):
        out = []
        for c, r, b in zip(choices, cold_row, budgets, strict=True):
            m = c.max_cold(b) if r >= 0 else None
            if r >= 0 and (m is None or m.rows != [r]):
                raise ValueError("Max Cold choice does not reproduce the scheduled row")
            out.append(m if m is not None else c)
        picked = tuple(out)
    return ElkSchedule(tuple(plan_index), tuple(window), tuple(order), tuple(budgets), tuple(preload), latency,
                       choices=picked)


def load_dependencies(window_end: tuple[int, ...], order: tuple[int, ...]) -> list[tuple[int, ...]]:
    """load_after per operator: the last operator whose window ends before the load's position."""
    pos, _ = _positions(list(order))
    ends = list(window_end)  # non-decreasing
    deps: list[tuple[int, ...]] = []
    for p in pos:
        m = bisect.bisect_left(ends, p) - 1
        deps.append((m,) if m >= 0 else ())
    return deps


def forward_latency(choices: list[OpChoices], sched: ElkSchedule) -> float:
    """Latency of the schedule run as soon as possible (<= the inductive estimate)."""
    n = len(choices)
    load = [c.ideal_load_s if sched.ideal else c.load_s for c in choices]
    ex = []
    for c, fi in zip(choices, sched.plan_index, strict=True):
        if fi < 0:
            if c.stream is None:
                raise ValueError("plan index -1 (the streaming fallback) on an operator without one")
            ex.append(c.stream.seconds)
        else:
            ex.append((c.ideal_exec_s if sched.ideal else c.exec_s)[fi])
    deps = load_dependencies(sched.window_end, sched.load_order)
    _, _, _, end = asap_timeline(load, ex, deps, [(i - 1,) if i else () for i in range(n)], sched.load_order)
    return float(end[-1]) if n else 0.0


def fixed_window_schedule(choices: list[OpChoices], free_bytes: list[float], depth: int, exec_cap: float,
                          margin: float) -> ElkSchedule | None:
    """A schedule with one preload depth and one cap on the execution space for all operators, scored by its
    forward (ASAP) latency.

    basic: depth 1, no cap (preload the next operator if its plan still fits); static: the cap is the fixed
    execution-space size and the rest of SRAM holds as many following operators as fit (up to ``depth``).
    """
    sched = fixed_window(choices, free_bytes, depth, exec_cap, margin)
    return None if sched is None else replace(sched, latency_s=forward_latency(choices, sched))


def fixed_window(choices: list[OpChoices], free_bytes: list[float], depth: int, exec_cap: float,
                 margin: float) -> ElkSchedule | None:
    """fixed_window_schedule without the score (``latency_s`` 0), vectorized over the operators.

    Operator i preloads the following operators up to the deepest k <= ``depth`` whose idle sizes fit beside
    the cap and still leave i a plan; its window ends at the furthest window so far (ends never decrease).
    """
    n = len(choices)
    prefix = np.concatenate([[0.0], np.cumsum([c.idle_bytes * (1.0 + margin) for c in choices])])
    free = np.asarray(free_bytes, dtype=np.float64)
    idx = np.arange(n)
    top = np.clip(np.minimum(depth, n - 1 - idx), 0, None)
    mem0 = np.array([c.mem[0] if c.mem else np.inf for c in choices])
    space = free - (0.0 if exec_cap == INFEASIBLE else exec_cap)
    base = prefix[idx + 1]

    def fits(k: np.ndarray) -> np.ndarray:  # idle bytes of operators i+1 .. i+k fit, and i keeps a plan
        idle = prefix[idx + k + 1] - base
        return (idle <= space) & (free - idle >= mem0)

    # Both tests only fail more as k grows (prefix is non-decreasing): start from a bisection estimate and
    # step to the exact boundary with the tests themselves.
    with np.errstate(invalid="ignore"):
        est = np.searchsorted(prefix, base + np.minimum(space, free - mem0), side="right") - idx - 2
    k = np.clip(est, 0, top)
    while True:
        down = (k > 0) & ~fits(k)
        if not down.any():
            break
        k = k - down
    while True:
        can = k < top
        up = can & fits(np.where(can, k + 1, k))
        if not up.any():
            break
        k = k + up
    end = np.maximum.accumulate(idx + k)
    resident = prefix[end + 1] - base
    budget = np.minimum(exec_cap, free - resident)
    plan_index = []
    for i, (c, b) in enumerate(zip(choices, budget.tolist(), strict=True)):
        fi = c.exec_at(b)[1]
        if fi < 0 and (c.stream is None or end[i] > i):
            return None
        plan_index.append(fi)
    return ElkSchedule(tuple(plan_index), tuple(end.tolist()), tuple(range(n)), tuple(budget.tolist()),
                       tuple(resident.tolist()), 0.0)


def max_cold_choices(choices: list[OpChoices], budgets: list[float]) -> list[OpChoices] | None:
    """The artifact's Max Cold variant of ``choices`` (issue 18e, conventions=paper): each operator with cold
    layouts held in its Max Cold layout for its execution space ``budgets[i]`` (``OpChoices.max_cold``), the
    others unchanged; None when no operator has cold layouts, or one has no plan within its budget."""
    out: list[OpChoices] = []
    memo: dict[tuple[int, float], OpChoices | None] = {}
    any_cold = False
    for c, b in zip(choices, budgets, strict=True):
        if c.cold_mem is None:
            out.append(c)
            continue
        key = (id(c), b)
        if key not in memo:
            memo[key] = c.max_cold(b)
        m = memo[key]
        if m is None:
            return None
        any_cold = True
        out.append(m)
    return out if any_cold else None


def naive_max_cold_choices(choices: list[OpChoices], free_bytes: list[float], margin: float) -> list[OpChoices] | None:
    """The artifact's Naive run with Max Cold layouts (issue 18i, conventions=paper; platformxlab/elk@8c6e814
    ``naive_search_optimal_exe_load_config_all(use_largest_cold=True)``, DNNProgram.py:1556-1645), for our
    ``basic`` (depth 1: only the next operator is preloaded). Built backwards from the last operator, whose
    layout is sized for its whole free SRAM (:1568-1569): operator i preloads operator i + 1's idle layout as
    already chosen (its cold bytes, ``cold_hot_list``, :1626; margin included, as ``fixed_window``) when
    those fit beside i's smallest plan of its Min Cold row (``load_byte_per_core = SRAM - next_min_hot``,
    :1613-1618, 1632; ours: the compact frontier's smallest plan, issue 18h's Min Cold row), and i's Max
    Cold layout is then sized for its free SRAM minus the preloaded bytes (:1643-1645), not for all of it.
    Where no Max Cold layout fits that space, ``baseline_cold_hot`` (:566-581) walks down the cold sizes to its
    first key, the Min Cold row: ours keeps the compact choices. Operators without cold layouts keep theirs.
    None when no operator has cold layouts."""
    n = len(choices)
    if not any(c.cold_mem is not None for c in choices):
        return None
    out: list[OpChoices] = list(choices)
    memo: dict[tuple[int, float], OpChoices | None] = {}
    for i in range(n - 1, -1, -1):
        c = choices[i]
        if c.cold_mem is None:
            continue
        budget = free_bytes[i]
        if i + 1 < n:
            ahead = out[i + 1].idle_bytes * (1.0 + margin)
            if c.mem and ahead <= free_bytes[i] - c.mem[0]:
                budget = free_bytes[i] - ahead
        key = (id(c), budget)
        if key not in memo:
            memo[key] = c.max_cold(budget)
        m = memo[key]
        out[i] = m if m is not None else c
    return out


def best_of_cold_variants(run, choices: list[OpChoices], free_bytes: list[float], margin: float) -> ElkSchedule | None:
    """``run(choices)`` (a scheduling of the operators' choices) on the compact idle layouts and, where the
    choices have cold layouts (conventions=paper, issue 18e), on the artifact's Naive Max Cold layouts, each
    sized for its free SRAM minus the next operator's preloaded idle layout (``naive_max_cold_choices``, issue
    18i); the schedule of lower latency kept (the first on a tie)."""
    best = run(choices)
    cold = naive_max_cold_choices(choices, free_bytes, margin)
    if cold is not None:
        cand = run(cold)
        if cand is not None and (best is None or cand.latency_s < best.latency_s - 1e-15):
            best = replace(cand, choices=tuple(cold))
    return best


def stream_fallbacks(choices: list[OpChoices], ops: list[Operator], chip: Chip, free_bytes: list[float]) -> bool:
    """Give operators with no plan in their free SRAM a copy of their choices with the streaming fallback
    (in place in ``choices``; the shared, cached choices stay untouched); False if one cannot run at all."""
    memo: dict[tuple, PlanChoice | NoFit] = {}
    for k, (c, op, free) in enumerate(zip(choices, ops, free_bytes, strict=True)):
        if c.mem and c.mem[0] <= free:
            continue
        key = (op.signature, int(free // 1024))  # identical layers with equal free SRAM share the fallback
        fb = memo.get(key)
        if fb is None:
            fb = memo[key] = stream_plan(op, chip, int(free // 1024) * 1024, pinned_weights=False)
        if isinstance(fb, NoFit):
            return False
        choices[k] = replace(c, stream=fb)
    return True

