"""``auto``: the fastest feasible strategy, found cheaply (branch and bound).

Every other registered strategy plans the workload at the chip count (planning reshapes graphs; it does not
compile). Each feasible plan gets a cheap lower bound on its latency: per stage the roofline of its graph on the
view (cost/roofline.py), plus the fixed dispatch and barrier charges of its operator instances and layers,
composed over micro-batches as cost/pipeline.py does, plus the time of its collectives (cost/collectives.py;
identical collectives costed once). Best-first search (a heap ordered by bound): a candidate popped with its
cheap bound gets its **tight** bound and goes back; one popped with its tight bound is compiled and timed (with
the evaluator's simulator, ``timer``); the search stops when the next bound is no better than the best latency
found. The tight bound replaces each operator instance's fixed charge by the fastest execution any plan the
compiler could give it has (``op_floor_s``: the minimum over its plan table in both load modes, from the
compiler's cached choices, which the compile of that candidate then reuses). So a clearly best strategy costs
one compile plus plan tables. Without a timer the cheap bound ranks them. The chosen Program's
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
    Parallelism,
    ParallelPlan,
    Workload,
    plan_workload,
    register_parallelism,
)
from elk_dse.compiler.schedulers import SCHEDULERS, SchedulerConfig
from elk_dse.cost.collectives import Collective, collective_cost
from elk_dse.cost.network import barrier_time_s
from elk_dse.cost.pipeline import pipeline_latency_s
from elk_dse.cost.roofline import roofline_bound
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import Graph, Operator
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
        assert isinstance(plan, ParallelPlan)
        return plan


def _graph_bound_s(graph: Graph, chip: Chip, serial_s: float = 0.0, overlap: bool = True) -> float:
    """Operators execute one after another, each paying its dispatch and at least one barrier, and every layer
    instance its sync, while
    HBM loads may overlap them: max(HBM roofline, compute roofline + dispatches + syncs + ``serial_s`` of
    further executed time). ``overlap=False`` (a scheduler whose every plan loads straight into the SRAM its
    operator runs in, so a load waits for the previous operator): the two add up."""
    roof = roofline_bound(chip, graph.flops, graph.must_weight_bytes, graph.kv_cache_read_bytes,
                          graph.kv_cache_write_bytes)
    layers = sum(layer.repeat for layer in graph.layers)
    # Every compiled operator synchronises its cores at least once (compiler/select.py, partition.py).
    fixed = chip.overheads.dispatch_s + float(barrier_time_s(chip, 1))
    executed = roof.compute_s + graph.num_op_instances * fixed + layers * chip.overheads.layer_sync_s + serial_s
    return max(roof.hbm_s, executed) if overlap else roof.hbm_s + executed


def as_all_core(system: Chip) -> Chip:
    """``system`` as a fixed ``all_core`` point sees it: parallelism all_core (no degrees), and the stack's
    cross-chip sync per layer that apply_stack holds back on an auto system paid per layer (hw/chip.OverheadSpec)."""
    o = system.overheads
    if system.chips.parallelism == "all_core" and not o.all_core_sync_us_per_layer:
        return system
    return replace(system, chips=replace(system.chips, parallelism="all_core", tp=0, pp=0, ep=0, dp=0),
                   overheads=replace(o, sync_us_per_layer=o.sync_us_per_layer + o.all_core_sync_us_per_layer,
                                     all_core_sync_us_per_layer=0.0))


def op_floor_s(op: Operator, chip: Chip, rotation: bool) -> tuple[float, float]:
    """(fastest execution, in seconds, of any plan in ``op``'s plan table on ``chip``, in either load mode;
    the memory per core of its smallest plan in the worse mode). The compiler's cached choices
    (compile._op_choices, keyed by operator signature, chip and rotation) hold both frontiers; each frontier's
    last plan is the fastest of the whole table. A chosen plan's cross-operator traffic (traffic.account) only
    adds HBM bytes, which do not shorten execution."""
    from elk_dse.compiler.compile import _op_choices

    c = _op_choices(op, chip, rotation, {"hits": 0, "computed": 0})
    floor = min(min(c.exec_s, default=math.inf), min(c.ideal_exec_s, default=math.inf))
    smallest = max(c.mem[0] if c.mem else math.inf, c.ideal_mem[0] if c.ideal_mem else math.inf)
    return float(floor), float(smallest)


def _tight_graph_bound_s(graph: Graph, chip: Chip, rotation: bool, serial_s: float = 0.0,
                         overlap: bool = True) -> float:
    """_graph_bound_s with each operator instance's charge raised to the fastest plan it can get (op_floor_s)
    where that is known to bound it: an instance whose smallest plan may not fit the SRAM left by the most
    activations the compiler can keep live across it (no residency variant keeps more than keeping them all)
    may be streamed in passes (a plan outside the table), and keeps the cheap charge. Chips without HBM (no
    scheduler choices) keep the cheap bound."""
    if chip.hbm is None:
        return _graph_bound_s(graph, chip, serial_s, overlap)
    from elk_dse.compiler.traffic import residency

    roof = roofline_bound(chip, graph.flops, graph.must_weight_bytes, graph.kv_cache_read_bytes,
                          graph.kv_cache_write_bytes)
    ops = [op for _, _, op in graph.instances()]
    live = residency(ops, chip.sram_bytes_per_core, chip.num_cores, can_spill=False).live_bytes
    free_min = chip.sram_bytes_per_core - np.asarray(live, dtype=np.float64) / chip.num_cores
    fixed = chip.overheads.dispatch_s + float(barrier_time_s(chip, 1))
    peak = chip.peak_flops_per_s
    floors: dict[tuple, tuple[float, float]] = {}
    total = 0.0
    for i, op in enumerate(ops):
        key = op.signature
        if key not in floors:
            floors[key] = op_floor_s(op, chip, rotation)
        floor, smallest = floors[key]
        cheap = op.flops / peak + fixed
        total += max(floor, cheap) if smallest <= free_min[i] else cheap
    layers = sum(layer.repeat for layer in graph.layers)
    executed = total + layers * chip.overheads.layer_sync_s + serial_s
    return max(roof.hbm_s, executed) if overlap else roof.hbm_s + executed


def lower_bound_s(plan: ParallelPlan, overlap: bool = True, rotation: bool | None = None) -> float:
    """A latency no simulator can beat for ``plan`` (module docstring); ``overlap``: see _graph_bound_s;
    ``rotation`` (whether plans may rotate, SchedulerConfig.plans == "t10"): given, the tight bound
    (_tight_graph_bound_s), which reads (and fills) the compiler's plan tables; None, the cheap one."""

    def graph_bound(graph: Graph, serial_s: float = 0.0) -> float:
        if rotation is None:
            return _graph_bound_s(graph, plan.view, serial_s, overlap)
        return _tight_graph_bound_s(graph, plan.view, rotation, serial_s, overlap)

    if plan.view is plan.system:
        return sum(graph_bound(stage.graph) for stage in plan.stages)
    costs: dict[Collective, float] = {}

    def cost(c: Collective) -> float:
        if c not in costs:
            costs[c] = collective_cost(c, plan.system).time_s
        return costs[c]

    stage_s = []
    for stage in plan.stages:
        coll = sum(cost(p.collective) for p in stage.collectives)
        if stage.handoff is not None:
            coll += cost(stage.handoff)
        stage_s.append(graph_bound(stage.graph, coll))
    return pipeline_latency_s(stage_s, plan.microbatches)


def candidates(work: Workload, system: Chip, overlap: bool = True) -> list[tuple[float, str, ParallelPlan | Infeasible]]:
    """(lower bound, name, plan or Infeasible) of every other strategy, best bound first (Infeasible last);
    ``overlap``: whether the scheduler may load one operator's data while another runs (_graph_bound_s)."""
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
    order = {n: i for i, n in enumerate(("tp", "pp", "ep", "dp", "all_core"))}
    out.sort(key=lambda c: (c[0], order.get(c[1], len(order)), c[1]))
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
    order = {n: i for i, n in enumerate(("tp", "pp", "ep", "dp", "all_core"))}
    best: tuple[float, Program] | None = None
    report: list[dict[str, Any]] = []
    failures: list[str] = []
    # (bound, tight?, tie-break, name, plan, report entry); a tight bound sorts after an equal cheap one.
    heap: list[tuple[float, bool, int, str, ParallelPlan, dict[str, Any]]] = []
    for bound, name, plan in cands:
        entry: dict[str, Any] = {"strategy": name, "bound_s": bound if math.isfinite(bound) else None,
                                 "latency_s": None}
        report.append(entry)
        if isinstance(plan, Infeasible):
            entry["reason"] = plan.detail
            failures.append(f"{name}: {plan.detail}")
            continue
        heap.append((bound, False, order.get(name, len(order)), name, plan, entry))
    heapq.heapify(heap)
    while heap:
        bound, tight, rank, name, plan, entry = heapq.heappop(heap)
        if best is not None and (timer is None or bound >= best[0]):
            break  # nothing left can beat what was found
        if timer is not None and not tight:
            tighter = max(bound, lower_bound_s(plan, overlap, rotation))
            entry["bound_s"] = tighter
            heapq.heappush(heap, (tighter, True, rank, name, plan, entry))
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
