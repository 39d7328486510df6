"""Parallelism across chips as a compiler choice (issue 17): ``chip.chips.parallelism``.

One module per strategy, each a :class:`~elk_dse.compiler.parallel.base.Parallelism` registered in
``PARALLELISMS`` (the protocol is in base.py); every module of this package is imported here, so a new strategy
is one module, and the conformance suite (elk_dse/testing/parallelism.py) picks it up. :func:`compile_parallel`
turns a strategy's :class:`ParallelPlan` into one Program: each stage's graph compiled by the T10/Elk compiler on
the plan's view, the collectives inserted after the operators they follow (ProgramOps of kind ``collective``),
the stages one after another (PP: joined by their send_recv handoffs).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from elk_dse.compiler.parallel.base import (
    PARALLELISMS,
    CollectivePoint,
    DeviceOp,
    Parallelism,
    ParallelPlan,
    Stage,
    Workload,
    get_parallelism,
    plan_workload,
    register_parallelism,
)
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.collectives import Collective
from elk_dse.cost.host_io import host_logits_bytes, record_host_batch_io
from elk_dse.hw.chip import Chip
from elk_dse.program import Infeasible, OpWork, Plan, Program, ProgramOp

__all__ = ["PARALLELISMS", "CollectivePoint", "ParallelPlan", "Parallelism", "SimTimer", "Stage", "Workload",
           "assemble", "compile_parallel", "degree_of", "get_parallelism", "plan_workload",
           "register_parallelism"]

# A function giving a Program's latency in seconds (the evaluator passes its simulator's): ``auto`` compares
# candidates with it. The compiler never imports a simulator; without one, ``auto`` uses its lower bounds.
Timer = Callable[[Program], float]


@dataclass(frozen=True)
class SimTimer:
    """A Timer that also says which lower bounds hold for its simulator: ``exec_floor`` (the simulator's
    ``Simulator.exec_floor``) lets ``auto`` bound a candidate by its plans' whole execution times."""

    time: Timer
    exec_floor: bool = False

    def __call__(self, program: Program) -> float:
        return self.time(program)


def degree_of(system: Chip, name: str) -> int:
    """The degree strategy ``name`` runs at on ``system``: its configured degree, else the chip count."""
    return int(getattr(system.chips, name, 0) or system.num_chips)


def compile_parallel(work: Workload, system: Chip, scheduler: SchedulerConfig,
                     timer: Timer | None = None) -> Program | Infeasible:
    """Compile ``work`` for ``system`` under its ``chips.parallelism`` (a single chip: the graph as it is)."""
    name = system.chips.parallelism if system.num_chips > 1 else "all_core"
    strategy = get_parallelism(name)
    if name == "auto":
        from elk_dse.compiler.parallel.auto import choose

        return choose(work, system, scheduler, timer)
    plan = plan_workload(strategy, work, system, degree_of(system, name))
    if isinstance(plan, Infeasible):
        return plan
    return assemble(plan, scheduler)


def assemble(plan: ParallelPlan, scheduler: SchedulerConfig) -> Program | Infeasible:
    """One Program from ``plan``: each stage compiled on ``plan.view``, its collectives inserted after the
    operators they follow, the stages one after another (a stage's operators load after the previous stage's
    handoff, so every stage is timed as the chip that runs it sees it)."""
    from elk_dse.compiler.compile import compile_single

    ops: list[ProgramOp] = []
    load_order: list[int] = []
    meta: dict[str, Any] = {}
    stage_ends: list[int] = []
    sram_used = 0.0
    for s, stage in enumerate(plan.stages):
        program = compile_single(stage.graph, plan.view, scheduler)
        if isinstance(program, Infeasible):
            where = f"stage {s} of {len(plan.stages)}, " if len(plan.stages) > 1 else ""
            return replace(program, detail=f"{plan.strategy} ({where}one chip's share): {program.detail}")
        if s == 0:
            meta = dict(program.meta)
        sram_used = max(sram_used, float(program.meta.get("sram_used_bytes_per_core", 0.0)))
        after: dict[int, list[tuple[Collective, bool, tuple[DeviceOp, ...]]]] = {}
        for point in stage.collectives:
            after.setdefault(point.after, []).append((point.collective, point.overlap, point.device_ops))
        if stage.handoff is not None:
            after.setdefault(len(program.ops) - 1, []).append((stage.handoff, False, ()))
        barrier = len(ops) - 1  # the previous stage's last operation (-1: none)
        base: dict[int, int] = {}  # the stage's op index -> its index in the joined Program
        follows: dict[int, int] = {}  # the stage's op index -> the last collective inserted after it
        inserted: dict[int, list[int]] = {}  # the stage's op index -> the collectives inserted after it
        side = -1  # the last overlapped (concurrent) collective not yet waited for by a later collective
        fused = -1  # an overlapped collective the next operator runs beside (it waits for the op before only)
        join = -1  # an overlapped collective the operator after that one waits for
        for op in program.ops:
            base[op.index] = new = len(ops)
            extra = {barrier} if barrier >= 0 else set()
            waits = {join} if join >= 0 else set()
            join, fused = fused, -1
            load_after = tuple(sorted({base[d] for d in op.load_after} | extra))
            exec_after = tuple(sorted({base[d] if follows.get(d) == join >= 0 else follows.get(d, base[d])
                                       for d in op.exec_after} | extra | waits))
            ops.append(replace(op, index=new, load_after=load_after, exec_after=exec_after))
            for c, overlap, device_ops in after.get(op.index, ()):
                # A collective waits for the op it follows and for an overlapped collective still running on
                # the links (collectives take the chips' links one at a time).
                deps = (len(ops) - 1,) if side < 0 else tuple(sorted({len(ops) - 1, side}))
                ops.append(_collective_op(len(ops), c, op, deps, plan.view, overlap))
                follows[op.index] = len(ops) - 1
                inserted.setdefault(op.index, []).append(len(ops) - 1)
                side = fused = len(ops) - 1 if overlap else -1
                for d in device_ops:  # issue 17t: the software's local ops around it, one after the other
                    ops.append(_device_op(len(ops), d, op, (len(ops) - 1,), plan.view))
                    follows[op.index] = len(ops) - 1
                    inserted[op.index].append(len(ops) - 1)
        # A collective "loads" (nothing) right after the operator it follows.
        order = [k for j in program.load_order for k in (base[j], *inserted.get(j, ()))]
        load_order += order
        stage_ends.append(len(ops) - 1)
    meta.update({
        "sram_used_bytes_per_core": sram_used,
        "parallelism": plan.strategy,
        "parallel_degrees": dict(plan.degrees),
        "parallel_copies": len(plan.stages[0].chips) if plan.stages else 1,
        "microbatches": plan.microbatches,
        "stage_ends": tuple(stage_ends),
        "collectives": len(plan.collectives),
    })
    if len(plan.stages) == 1 and not plan.stages[0].collectives and plan.view is plan.system:
        meta["parallel_copies"] = 1  # all_core: the view is the system
    # issue 17t (seventh session): the logits the host reads back per step (cost/host_io.py), from the stage with the
    # LM head; every data-parallel copy reads its own
    logits = host_logits_bytes(plan.stages[-1].graph, plan.system.overheads, int(dict(plan.degrees).get("dp", 1)))
    if logits:
        meta["host_logits_bytes"] = logits
    # issue 17g (eighth session): the host's per-batch writes and reads, per data-parallel copy (cost/host_io.py)
    record_host_batch_io(meta, plan.stages[0].graph, plan.system.overheads, int(dict(plan.degrees).get("dp", 1)))
    graph = plan.stages[0].graph
    # What one chip runs, stage after stage, in the Program's order (collectives aside): the energy model's
    # per-operator input (cost/energy.system_energy).
    meta["parallel_graph"] = replace(graph, layers=tuple(layer for st in plan.stages for layer in st.graph.layers))
    joined = Program(chip=plan.view, model=graph.name, phase=graph.phase, scheduler=scheduler.name, ops=tuple(ops),
                     parameter_bytes=graph.parameter_bytes, batch=graph.batch, meta=meta,
                     load_order=tuple(load_order), system=None if plan.view is plan.system else plan.system)
    _check_joined(joined)
    return joined


def _check_joined(program: Program) -> None:
    """What assembling changes, checked (each stage's Program passed Program.check when compiled): dependencies
    point backwards and the load order is a permutation of the operations."""
    if sorted(program.load_order) != list(range(len(program.ops))):
        raise ValueError("assembled load order is not a permutation of the operations")
    for op in program.ops:
        if any(not 0 <= d < op.index for d in (*op.load_after, *op.exec_after)):
            raise ValueError(f"assembled op {op.index} {op.name}: a dependency is not earlier")


def _collective_op(index: int, c: Collective, follows: ProgramOp, after: tuple[int, ...], view: Chip,
                   concurrent: bool = False) -> ProgramOp:
    """A ProgramOp that runs collective ``c`` after the operations ``after`` (the first: the one it follows, of
    layer instance ``follows``): no compute, no HBM; the simulators time it through cost/collectives.py on the
    Program's system. ``concurrent``: the operators after it do not wait for its end (CollectivePoint.overlap)."""
    return ProgramOp(
        index=index, name=c.kind, kind="collective", layer=follows.layer, repetition=follows.repetition, dims=(),
        flops=0.0, weight_bytes=0.0, kv_cache_bytes=0.0,
        plan=Plan(spatial=(), cores_used=view.num_cores, sram_bytes_per_core=0),
        work=OpWork(compute_cycles=0.0, collectives=(c,), collective_op=True), load_after=(), exec_after=after,
        concurrent=concurrent)


def _device_op(index: int, d: DeviceOp, follows: ProgramOp, after: tuple[int, ...], view: Chip) -> ProgramOp:
    """A ProgramOp (kind ``device_op``) that runs the local device operation ``d`` on every chip after the
    operations ``after`` (issue 17t, second session): no FLOPs, no HBM; its on-chip bytes spread over the chip's
    cores, so the simulators charge it what cost/op_time.py charges every operator: the per-operator dispatch
    (``overheads.dispatch_us_per_op``) plus its network time."""
    cores = view.num_cores
    return ProgramOp(
        index=index, name=d.name, kind="device_op", layer=follows.layer, repetition=follows.repetition, dims=(),
        flops=0.0, weight_bytes=0.0, kv_cache_bytes=0.0,
        plan=Plan(spatial=(), cores_used=cores, sram_bytes_per_core=0),
        work=OpWork(compute_cycles=0.0, noc_bytes=d.noc_bytes, noc_max_core_bytes=d.noc_bytes / cores),
        load_after=(), exec_after=after)


for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
