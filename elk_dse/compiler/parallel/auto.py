"""``auto``: the fastest feasible strategy, found cheaply (branch and bound).

Every other registered strategy plans the workload at the chip count (planning reshapes graphs; it does not
compile). Each feasible plan gets a lower bound on its latency: per stage the roofline of its graph on the view
(cost/roofline.py), plus the fixed dispatch and barrier charges of its operator instances and layers, composed over micro-batches as
cost/pipeline.py does, plus the time of its collectives (cost/collectives.py; identical collectives costed
once). Candidates are compiled and timed (with the evaluator's simulator, ``timer``) in increasing order of
bound; the search stops when the next bound is no better than the best latency found, so a clearly best strategy
costs one compile. Without a timer the bound itself ranks them. The chosen Program's
``meta["parallel_candidates"]`` lists every candidate with its bound, latency (None: not compiled) or reason.
"""

from __future__ import annotations

import math
from typing import Any

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
from elk_dse.ir.graph import Graph
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


def lower_bound_s(plan: ParallelPlan, overlap: bool = True) -> float:
    """A latency no simulator can beat for ``plan`` (module docstring); ``overlap``: see _graph_bound_s."""
    if plan.view is plan.system:
        return sum(_graph_bound_s(stage.graph, plan.view, overlap=overlap) for stage in plan.stages)
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
        stage_s.append(_graph_bound_s(stage.graph, plan.view, coll, overlap))
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
        plan = plan_workload(strategy, work, system, degree)
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
    """The fastest feasible strategy's Program (module docstring)."""
    from elk_dse.compiler.parallel import assemble

    # A scheduler without plan choices loads every operator straight into the SRAM it runs in (DIRECT plans):
    # its loads cannot overlap other operators' execution.
    overlap = SCHEDULERS[scheduler.name].needs_choices
    cands = candidates(work, system, overlap)
    best: tuple[float, Program] | None = None
    report: list[dict[str, Any]] = []
    failures: list[str] = []
    for bound, name, plan in cands:
        entry: dict[str, Any] = {"strategy": name, "bound_s": bound if math.isfinite(bound) else None,
                                 "latency_s": None}
        report.append(entry)
        if isinstance(plan, Infeasible):
            entry["reason"] = plan.detail
            failures.append(f"{name}: {plan.detail}")
            continue
        if best is not None and (timer is None or bound >= best[0]):
            continue  # cannot beat what was found
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
