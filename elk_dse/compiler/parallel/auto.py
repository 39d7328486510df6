"""``auto``: the fastest feasible strategy, found cheaply (branch and bound).

Every other registered strategy plans the workload at the chip count (planning reshapes graphs; it does not
compile). Each feasible plan gets a cheap lower bound on its latency: per stage the roofline of its graph on the
view (cost/roofline.py), plus the fixed dispatch and barrier charges of its operator instances and layers,
composed over micro-batches as cost/pipeline.py does, plus the time of its collectives (cost/collectives.py;
identical collectives costed once) and the dispatch of the operations that run them. Best-first search (a heap ordered by bound): a popped candidate whose bound
is not yet tight is tightened (:class:`Tightener`, operator by operator) until it passes the next bound or the
best latency found, and goes back; one popped fully tightened is compiled and timed (with the evaluator's
simulator, ``timer``); the search stops when the next bound is no better than the best latency found. The tight
bound first raises every operator instance's charge to its compute floor from the core model alone
(``compute_floor_s``: no plan table; issue 17a, sixth session), then, operator by operator, to the fastest
execution any plan the compiler could give it has (``op_floor_s``: the minimum over its plan table in both load modes, from the compiler's cached choices,
which the compile of that candidate then reuses). So a clearly best strategy costs one compile plus some plan
tables. Without a timer the cheap bound ranks them. The chosen Program's
``meta["parallel_candidates"]`` lists every candidate with its bound, latency (None: not compiled) or reason.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np

from elk_dse.compiler.parallel.base import (
    PARALLELISMS,
    CollectivePoint,
    Parallelism,
    ParallelPlan,
    Workload,
    plan_workload,
    register_parallelism,
)
from elk_dse.compiler.schedulers import SCHEDULERS, SchedulerConfig
from elk_dse.cost.collectives import Collective, collective_cost
from elk_dse.cost.network import barrier_time_s, op_sync_time_s
from elk_dse.cost.pipeline import pipeline_latency_s
from elk_dse.cost.roofline import roofline_bound
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import HBM_ROLES, Operator
from elk_dse.program import Infeasible, Program


@register_parallelism("auto")
class Auto(Parallelism):
    """Chooses among the other strategies (module docstring); ``plan`` gives the best plan by lower bound."""

    trains = True  # its candidates answer for themselves (plan_workload on each)

    def plan(self, work: Workload, system: Chip, degree: int) -> ParallelPlan | Infeasible:
        ranked = [c for c in candidates(work, system) if isinstance(c[2], ParallelPlan)]
        if not ranked:
            return Infeasible("parallelism", "no strategy fits: " + _reasons(candidates(work, system)))
        plan = ranked[0][2]
        if not isinstance(plan, ParallelPlan):  # filtered above; kept for the type checker
            raise RuntimeError("auto ranked a strategy that is not a ParallelPlan")
        return plan


def _stage_parts(plan: ParallelPlan) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    """Per stage of ``plan``: (HBM roofline, operator charges, layer syncs, collectives, loads and collectives
    when loads wait for the previous operator: _compose_s), seconds. Operators
    execute one after another, each charged its compute roofline share, its dispatch and at least one barrier
    (every compiled operator synchronises its cores: compiler/select.py, partition.py), and every layer instance
    its sync. On a system of several views, the stage's collectives and hand-off (each distinct one costed
    once): each its time on the system (cost/collectives.collective_cost, which sees the replicas' shared links)
    and the fixed charge (dispatch) of the operation that runs it, as both simulators charge it."""
    view = plan.view
    costs: dict[Collective, float] = {}

    def cost(c: Collective) -> float:  # the collective's time, and the fixed charge of the operation running it
        if c not in costs:
            costs[c] = collective_cost(c, plan.system).time_s + collective_op_s
        return costs[c]

    # The operation that runs a collective in the assembled Program (compile_parallel's _collective_op) has no
    # barrier; like every operation it pays op_sync_time_s in both simulators: its dispatch (a collective
    # operation's: overheads.ccl_dispatch_s, issue 17c sixth session).
    collective_op_s = float(op_sync_time_s(view, 0, True))
    # The software's local ops around a collective (CollectivePoint.device_ops: issue 17t / 17c) run one after
    # another between it and the next operator, each an operation paying at least its dispatch in both
    # simulators (compile_parallel's _device_op); the next operator waits for them as for the collective.
    device_op_s = float(op_sync_time_s(view, 0, False))

    def point_cost(p: CollectivePoint) -> float:  # a collective point: its collective, then its device ops
        return cost(p.collective) + len(p.device_ops) * device_op_s

    fixed = view.overheads.dispatch_s + float(barrier_time_s(view, 1))
    hbm, total, rest, links, io = [], [], [], [], []
    for stage in plan.stages:
        graph = stage.graph
        roof = roofline_bound(view, graph.flops, graph.must_weight_bytes, graph.kv_cache_read_bytes,
                              graph.kv_cache_write_bytes)
        serial = 0.0
        blocking = math.nan  # HBM loads and collectives when loads wait for the previous operator: _compose_s
        if view is not plan.system:
            # an overlapped collective may hide under the next operator's charge (CollectivePoint.overlap)
            serial = sum(point_cost(p) for p in stage.collectives if not p.overlap)
            if stage.handoff is not None:  # after the last operator: nothing loads beside it
                serial += cost(stage.handoff)
            if stage.collectives and view.hbm is not None:
                # Loads that wait for the previous operator (_compose_s): the load beside the collectives after
                # instance i is instance i+1's, which carries its HBM data less what SRAM holds of it.
                ops = [op for _, _, op in graph.instances()]
                gaps: dict[int, float] = {}
                for p in stage.collectives:
                    if p.overlap:  # one the next operator runs beside (CollectivePoint.overlap) holds up
                        continue  # nothing: left out here as from ``serial``
                    gaps[p.after] = gaps.get(p.after, 0.0) + point_cost(p)
                data_s = [_hbm_data_bytes(op) / view.hbm_bytes_per_s for op in ops]
                inner = {i: c for i, c in gaps.items() if i + 1 < len(ops)}
                unpinned = sum(data_s) + sum(max(0.0, c - data_s[i + 1]) for i, c in inner.items())
                pinned = view.total_sram_bytes / view.hbm_bytes_per_s
                blocking = serial - sum(inner.values()) + max(unpinned - pinned, sum(inner.values()))
        layers = sum(layer.repeat for layer in graph.layers)
        hbm.append(roof.hbm_s)
        total.append(roof.compute_s + graph.num_op_instances * fixed)
        rest.append(layers * view.overheads.layer_sync_s)
        links.append(serial)
        io.append(roof.hbm_s + serial if math.isnan(blocking) else blocking)
    return hbm, total, rest, links, io


def _hbm_data_bytes(op: Operator) -> float:
    """The bytes of HBM-resident data (weights, KV cache, ...) ``op`` reads and writes: the most of the HBM
    roofline's bytes its load can carry (activations spilled to HBM add bytes beyond the roofline)."""
    return float(sum(op.bytes_by_role(r) for r in HBM_ROLES)
                 + (op.tensor_bytes(op.output) if op.output.role in HBM_ROLES else 0.0))


def _compose_s(plan: ParallelPlan, overlap: bool, hbm: list[float], total: list[float], rest: list[float],
               links: list[float], io: list[float]) -> float:
    """The plan's bound from its stages' parts: HBM loads may overlap execution (max of the two), or, with
    ``overlap=False`` (a scheduler whose every plan loads straight into the SRAM its operator runs in, so a load
    waits for the previous operator), loads and operator executions add up, but the collectives still overlap
    loads: the operator after a collective waits for it, while its load waits only for the operator before
    (compile_parallel), so the gap between them lasts at least the longer of the collective and that load: ``io``
    per stage (_stage_parts) is the least time loads and collectives can then take together. Each operator
    loads its HBM data (weights, KV cache) less what SRAM holds; SRAM holds at most its capacity, the roofline's
    assumption. With no pinning the loads and collectives take sum over gaps max(collectives, next load) + the
    other loads; pinning a byte saves at most its HBM time, and nothing once a gap's load is under its
    collectives: io = collectives after the last operator + max(that - SRAM's HBM time, collectives in gaps).
    Without collectives io is the HBM roofline. Stages compose as cost/pipeline.py does."""
    stage_s = [max(h, t + r + c) if overlap else t + r + b
               for h, t, r, c, b in zip(hbm, total, rest, links, io, strict=True)]
    if plan.view is plan.system:
        return sum(stage_s)
    return pipeline_latency_s(stage_s, plan.microbatches)


def as_all_core(system: Chip) -> Chip:
    """``system`` as a fixed ``all_core`` point sees it: parallelism all_core (no degrees), and the stack's
    cross-chip sync per layer that apply_stack holds back on an auto system paid per layer (hw/chip.OverheadSpec)."""
    o = system.overheads
    if system.chips.parallelism == "all_core" and not o.all_core_sync_us_per_layer:
        return system
    return replace(system, chips=replace(system.chips, parallelism="all_core", tp=0, pp=0, ep=0, dp=0),
                   overheads=replace(o, sync_us_per_layer=o.sync_us_per_layer + o.all_core_sync_us_per_layer,
                                     all_core_sync_us_per_layer=0.0))


def op_floor_s(op: Operator, chip: Chip, rotation: bool) -> tuple[float, float, float]:
    """For every plan in ``op``'s plan table on ``chip``, in either load mode: (the fastest execution,
    cost/op_time.exec_time's total; the least compute + barriers + dispatch; the memory per core of the smallest
    plan in the worse mode), seconds and bytes. The compiler's cached choices (compile._op_choices, keyed by
    operator signature, chip and rotation) hold both modes' work of every plan; each frontier's last plan is the
    fastest of the whole table. A chosen plan's cross-operator traffic (traffic.account) only adds HBM bytes,
    which do not shorten execution.

    On a view of several chips (all_core on a system) the floors come from the same plans costed without the
    routed busiest-link term (t10.build_table ``routed=False``; issue 17a): routing rings over the whole
    system was most of a cold ``auto``'s excess on the Galaxy, spent only to rule all_core out. That term
    enters cost/network.shift_time_s only inside a max, and exec_time is non-decreasing in the shift and
    warm-up times, so each plan's time there is at most its routed time: the minimum stays a floor."""
    if chip.num_chips > 1:
        return _unrouted_floor_s(op, chip, rotation)
    from elk_dse.compiler.compile import _op_choices

    c = _op_choices(op, chip, rotation, {"hits": 0, "computed": 0})
    fastest = min(min(c.exec_s, default=math.inf), min(c.ideal_exec_s, default=math.inf))
    fixed = math.inf
    for w in (c.work, c.ideal_work):
        if w is not None and len(np.atleast_1d(w.compute_cycles)):
            cs = np.asarray(w.compute_cycles, dtype=np.float64) / chip.clock_hz + op_sync_time_s(chip, w.barriers)
            fixed = min(fixed, float(np.min(cs)))
    smallest = max(c.mem[0] if c.mem else math.inf, c.ideal_mem[0] if c.ideal_mem else math.inf)
    return float(fastest), fixed, float(smallest)


def _unrouted_floor_s(op: Operator, chip: Chip, rotation: bool) -> tuple[float, float, float]:
    """op_floor_s from the plan table without routes (elk.op_choices' two load modes, every plan)."""
    from elk_dse.compiler.select import frontier, table_work
    from elk_dse.compiler.t10 import plan_table
    from elk_dse.cost.op_time import exec_time

    table = plan_table(op, chip, rotation, routed=False)
    fastest, fixed, smallest = math.inf, math.inf, 0.0
    for preloaded in (True, False):
        w = table_work(table, chip, pinned=False, preloaded=preloaded)
        ex = np.asarray(exec_time(chip, w).total_s, dtype=np.float64)
        if not len(ex):
            return math.inf, math.inf, math.inf
        fastest = min(fastest, float(ex.min()))
        cs = np.asarray(w.compute_cycles, dtype=np.float64) / chip.clock_hz + op_sync_time_s(chip, w.barriers)
        fixed = min(fixed, float(np.min(cs)))
        idx = frontier(table.mem_bytes, ex)
        smallest = max(smallest, float(table.mem_bytes[idx[0]]) if len(idx) else math.inf)
    return fastest, fixed, smallest


# Core models whose cycles never fall when one core's block is cut into sequential steps (t10.build_table's
# rotation steps, partition.stream_plan's passes: cycles(ceil(sub / t)) x t >= cycles(sub) per dim, which their
# ceilings, max(m, min tile) streaming and per-call overheads give; tests/test_parallel_auto_compute_floor.py
# checks it on every shipped chip's cores). ``ipu_mk2_elk`` (conventions=paper) is left out, not analysed: its
# orientation rule changes which extent is blocked by 6 as a block shrinks. A core model not named here gets no
# compute floor (compute_floor_s = 0): never unsound.
STEP_MONOTONE_CORES = frozenset({"systolic", "ipu_mk2", "tensix"})

_COMPUTE_FLOORS: dict[tuple, tuple[float, int]] = {}
_COMPUTE_FLOORS_MAX = 8192


def compute_floor_s(op: Operator, chip: Chip) -> float:
    """The least compute time (seconds) of ``op`` in any plan the compiler can give it on ``chip``'s cores, from
    the core model alone, without a plan table (issue 17a, sixth session): the minimum over every spatial split
    of partition.enumerate_spatial (a superset of the plan table's spatial plans and of the streamed plans')
    of the core model's cycles of one core's block, over the clock. A plan that steps (rotation) or streams in
    passes computes ceil(sub / t) blocks t times, which costs at least the whole block on the models of
    STEP_MONOTONE_CORES, and the stack's decode-attention kernel only raises cycles (select.table_work), so no
    plan computes faster. 0 (no floor) under the artifact's plan rules (any integer factors) or another core
    model. Cached by exactly what it reads: the operator's signature, the cores, their count, the clock and the
    plan rules."""
    return _spatial_floor(op, chip)[0]


def _spatial_floor(op: Operator, chip: Chip) -> tuple[float, int]:
    """(compute_floor_s, the number of spatial splits it read: 1 where it reads none)."""
    from elk_dse.compiler.partition import enumerate_spatial
    from elk_dse.cost.core_models import core_model

    if chip.plan_rules == "artifact" or chip.cores.model not in STEP_MONOTONE_CORES:
        return 0.0, 1
    key = (op.signature, chip.cores, chip.num_cores, chip.clock_hz, chip.plan_rules)
    hit = _COMPUTE_FLOORS.get(key)
    if hit is None:
        f = enumerate_spatial(op, chip.num_cores)
        sub = {d: -(-n // f[:, k]) for k, (d, n) in enumerate(op.dims)}
        cycles = np.asarray(core_model(chip.cores, chip.clock_hz).cycles(op, sub), dtype=np.float64)
        hit = (float(np.min(cycles)) / chip.clock_hz, len(f))
        if len(_COMPUTE_FLOORS) >= _COMPUTE_FLOORS_MAX:
            _COMPUTE_FLOORS.clear()
        _COMPUTE_FLOORS[key] = hit
    return hit


def clear_compute_floors() -> None:
    """Forget the cached compute floors (a cold evaluation; the benchmark's cold and new-point modes)."""
    _COMPUTE_FLOORS.clear()


class Tightener:
    """The tight lower bound of one plan, computed operator by operator (the bound only rises, and every
    intermediate value is itself a lower bound), so that auto stops as soon as a candidate is ruled out.

    Start: the cheap bound (each instance charged its compute roofline + dispatch + one barrier). Each
    ``step`` raises the charge of every instance of one more distinct operator (the largest share of the cheap
    bound first: instances x (compute roofline + fixed charge), so that operators run many times, whose fixed
    costs dominate on many-chip views, come before a few large ones) to the least any plan of its table
    executes in (op_floor_s): with ``exec_floor`` (a simulator that
    times each operator at least cost/op_time.exec_time, the analytic one) the whole execution, otherwise only
    compute + barriers + dispatch, which every physical simulator charges one after another. An instance whose
    smallest plan may not fit the SRAM left by the most activations the compiler can keep live across it (no
    residency variant keeps more than keeping them all) may be streamed in passes (a plan outside the table)
    and keeps the cheap charge. A view without HBM (no scheduler choices) keeps the cheap bound.

    The first step (issue 17a, sixth session) raises every instance's charge at once to its compute floor
    (compute_floor_s, from the core model without a plan table) + dispatch + one barrier, which holds for
    streamed plans too: a few ms for a whole candidate where a plan table costs about as much per operator.
    Later steps raise an instance to its table floor only where that is higher."""

    def __init__(self, plan: ParallelPlan, overlap: bool, rotation: bool, exec_floor: bool = True) -> None:
        from elk_dse.compiler.traffic import residency

        self.plan, self.overlap, self.rotation, self.exec_floor = plan, overlap, rotation, exec_floor
        view = plan.view
        self._hbm, self._total, self._rest, self._links, self._io = _stage_parts(plan)  # _total: so far
        self._fixed = view.overheads.dispatch_s + float(barrier_time_s(view, 1))
        self._pending: list[tuple[bool, float, int, int, Operator, np.ndarray, np.ndarray]] = []
        peak = view.peak_flops_per_s
        if view.hbm is not None:  # a view without HBM has no scheduler choices: it keeps the cheap bound
            for s, stage in enumerate(plan.stages):
                ops = [op for _, _, op in stage.graph.instances()]
                live = residency(ops, view.sram_bytes_per_core, view.num_cores, can_spill=False).live_bytes
                free_min = view.sram_bytes_per_core - np.asarray(live, dtype=np.float64) / view.num_cores
                groups: dict[tuple, list[int]] = {}
                for i, op in enumerate(ops):
                    groups.setdefault(op.signature, []).append(i)
                for k, idx in enumerate(groups.values()):
                    op = ops[idx[0]]
                    at = np.asarray(idx)
                    share = len(idx) * (op.flops / peak + self._fixed)  # its instances' cheap charges
                    # On one chip's view, operators on the matrix unit first (issue 17a, sixth session): there a
                    # vector operator's floor is its cheap charge within a few percent (dispatch and one barrier
                    # dominate both), so its plan table buys almost nothing; on a view of several chips its
                    # barriers and network cross chips and it can gain as much as a matmul (docs/parallelism.md, "auto").
                    later = view.num_chips == 1 and not op.uses_matrix_unit
                    self._pending.append((later, -share, s, k, op, free_min[at], np.full(len(idx), op.flops)))
        self._pending.sort(key=lambda p: (p[0], p[1], p[2], p[3]))
        self._pending.reverse()  # pop() takes the largest first
        self._charge: dict[tuple[int, int], float] = {}  # (stage, group) -> its instances' charge after step 0
        self._compute_pass = bool(self._pending)  # step 0 (compute floors) still to do

    @property
    def done(self) -> bool:
        return not self._pending and not self._compute_pass

    def bound_s(self) -> float:
        return _compose_s(self.plan, self.overlap, self._hbm, self._total, self._rest, self._links, self._io)

    def step(self) -> float:
        """Tighten one more distinct operator (the first step: every operator's compute floor); the new bound."""
        view = self.plan.view
        if self._compute_pass:
            self._compute_pass = False
            spatial: dict[tuple[int, int], int] = {}
            for _, _, s, k, op, _, flops in self._pending:
                cheap = op.flops / view.peak_flops_per_s + self._fixed
                floor, spatial[(s, k)] = _spatial_floor(op, view)
                charge = max(cheap, floor + self._fixed)
                self._charge[(s, k)] = charge
                self._total[s] += (charge - cheap) * len(flops)
            # Then the table steps by share per spatial split (a plan table's rows grow with its spatial splits):
            # cheap tables with a large share first. The order changes only the work, never a bound.
            self._pending.sort(key=lambda p: (p[0], p[1] / spatial[(p[2], p[3])], p[2], p[3]), reverse=True)
            return self.bound_s()
        _, _, s, k, op, free_min, flops = self._pending.pop()
        fastest, fixed, smallest = op_floor_s(op, view, self.rotation)
        floor = fastest if self.exec_floor else fixed
        base = self._charge.get((s, k), op.flops / view.peak_flops_per_s + self._fixed)
        self._total[s] += float(np.where(smallest <= free_min, np.maximum(floor, base) - base, 0.0).sum())
        return self.bound_s()

    def tighten(self, until_s: float = math.inf) -> float:
        """Step until the bound exceeds ``until_s`` or nothing is left; the bound."""
        bound = self.bound_s()
        while not self.done and bound <= until_s:
            bound = self.step()
        return bound


def lower_bound_s(plan: ParallelPlan, overlap: bool = True, rotation: bool | None = None,
                  exec_floor: bool = True) -> float:
    """A latency no simulator can beat for ``plan`` (module docstring); ``overlap``: see _compose_s;
    ``rotation`` (whether plans may rotate, SchedulerConfig.plans == "t10"): given, the tight bound
    (:class:`Tightener`, ``exec_floor`` as there), which reads (and fills) the compiler's plan tables; None,
    the cheap one."""
    if rotation is not None:
        return Tightener(plan, overlap, rotation, exec_floor).tighten()
    return _compose_s(plan, overlap, *_stage_parts(plan))


_TIE_ORDER = ("tp", "pp", "ep", "dp", "all_core")  # among equal bounds, the deployed software's usual choice first


def _rank(name: str) -> int:
    return _TIE_ORDER.index(name) if name in _TIE_ORDER else len(_TIE_ORDER)


def candidates(work: Workload, system: Chip, overlap: bool = True) -> list[tuple[float, str, ParallelPlan | Infeasible]]:
    """(lower bound, name, plan or Infeasible) of every other strategy, best bound first (Infeasible last);
    ``overlap``: whether the scheduler may load one operator's data while another runs (_compose_s)."""
    out: list[tuple[float, str, ParallelPlan | Infeasible]] = []
    for name, cls in sorted(PARALLELISMS.items()):
        if name == "auto":
            continue
        strategy: Parallelism = cls()
        degree = int(getattr(system.chips, name, 0) or system.num_chips)
        plan = plan_workload(strategy, work, as_all_core(system) if name == "all_core" else system, degree)
        if isinstance(plan, ParallelPlan):
            plan = _fits(plan)
        out.append((lower_bound_s(plan, overlap) if isinstance(plan, ParallelPlan) else math.inf, name, plan))
    out.sort(key=lambda c: (c[0], _rank(c[1]), c[1]))
    return out


def _fits(plan: ParallelPlan) -> ParallelPlan | Infeasible:
    """``plan``, or the compiler's capacity verdict on its largest stage without compiling it (the check
    compile.py makes first: weights and KV cache against one view's HBM)."""
    from elk_dse.compiler.compile import resident_bytes
    from elk_dse.units import format_bytes

    view = plan.view
    if view.hbm is None:
        return plan
    need = max(resident_bytes(stage.graph) for stage in plan.stages)
    if need > view.hbm_capacity_bytes:
        return Infeasible("hbm_capacity", f"weights and KV cache need {format_bytes(need)}, HBM holds "
                          f"{format_bytes(view.hbm_capacity_bytes)}")
    return plan


def _reasons(cands: list[tuple[float, str, ParallelPlan | Infeasible]]) -> str:
    return "; ".join(f"{name}: {plan.detail}" for _, name, plan in cands if isinstance(plan, Infeasible))


def choose(work: Workload, system: Chip, scheduler: SchedulerConfig, timer: Any = None) -> Program | Infeasible:
    """The fastest feasible strategy's Program (module docstring): best-first over the candidates' bounds,
    cheap bounds tightened before a candidate is compiled."""
    from elk_dse.compiler.parallel import assemble

    # A scheduler without plan choices loads every operator straight into the SRAM it runs in (DIRECT plans):
    # its loads cannot overlap other operators' execution.
    overlap = SCHEDULERS[scheduler.name].needs_choices
    rotation = scheduler.plans == "t10"
    if work.rebuild is not None:  # dp and pp's micro-batches often rebuild the same batch: build it once
        work = Workload(work.graph, lru_cache(maxsize=None)(work.rebuild))
    cands = candidates(work, system, overlap)
    best: tuple[float, Program] | None = None
    report: list[dict[str, Any]] = []
    failures: list[str] = []
    # Best first: (bound, tie-break, name, plan, tightener, report entry). A popped candidate is tightened
    # until its bound passes the next one (or the best latency): then it goes back, or, fully tightened, it is
    # compiled and timed. Bounds only rise, so the first popped bound >= the best latency ends the search.
    exec_floor = bool(getattr(timer, "exec_floor", False))
    heap: list[tuple[float, int, str, ParallelPlan, Tightener | None, dict[str, Any]]] = []
    for bound, name, plan in cands:
        entry: dict[str, Any] = {"strategy": name, "bound_s": bound if math.isfinite(bound) else None,
                                 "latency_s": None}
        report.append(entry)
        if isinstance(plan, Infeasible):
            entry["reason"] = plan.detail
            failures.append(f"{name}: {plan.detail}")
            continue
        heap.append((bound, _rank(name), name, plan, None, entry))
    heapq.heapify(heap)
    while heap:
        bound, rank, name, plan, tight, entry = heapq.heappop(heap)
        if best is not None and (timer is None or bound >= best[0]):
            break  # nothing left can beat what was found
        if timer is not None and (tight is None or not tight.done) and (heap or best is not None):
            tight = tight or Tightener(plan, overlap, rotation, exec_floor)
            limit = min(heap[0][0] if heap else math.inf, best[0] if best is not None else math.inf)
            bound = max(bound, tight.tighten(limit))
            entry["bound_s"] = bound
            heapq.heappush(heap, (bound, rank, name, plan, tight, entry))
            continue
        program = assemble(plan, scheduler)
        if isinstance(program, Infeasible):
            entry["reason"] = program.detail
            failures.append(f"{name}: {program.detail}")
            continue
        latency = timer(program) if timer is not None else bound
        entry["latency_s"] = latency
        if best is None or latency < best[0]:
            best = (latency, program)
    if best is None:
        reason = "hbm_capacity" if any("HBM holds" in f for f in failures) else "parallelism"
        return Infeasible(reason, "parallelism=auto: no strategy fits: " + "; ".join(failures))
    program = best[1]
    program.meta["parallel_candidates"] = report
    program.meta["parallelism_requested"] = "auto"
    return program
