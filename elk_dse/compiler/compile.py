"""Compile a workload Graph for a Chip into a Program: capacity checks, per-operator plans (cached by
shape), the cross-operator traffic analysis (traffic.py), then the chosen scheduler's dependencies."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from elk_dse.compiler.elk import OpChoices, load_dependencies, op_choices, stream_fallbacks
from elk_dse.compiler.inplace import in_place_graph
from elk_dse.compiler.parallel import Workload, compile_parallel
from elk_dse.compiler.partition import NoFit, PlanChoice
from elk_dse.compiler.schedulers import DIRECT, SCHEDULERS, Scheduler, SchedulerConfig, SchedulingProblem
from elk_dse.compiler.select import choose_plan, plan_of, table_work, work_of
from elk_dse.compiler.t10 import plan_table
from elk_dse.compiler.tradeoff import GroupOptions, group_options, trade_off
from elk_dse.compiler.traffic import Residency, account, residency
from elk_dse.cost.host_io import host_logits_bytes, record_host_batch_io
from elk_dse.errors import ConfigError, nearest
from elk_dse.hw.chip import KIB, Chip
from elk_dse.ir.graph import Graph, Operator, Role
from elk_dse.program import Infeasible, OpWork, Program, ProgramOp
from elk_dse.units import format_bytes

_PLAN_CACHE: OrderedDict[tuple, PlanChoice | NoFit] = OrderedDict()
_PLAN_CACHE_MAX = 50_000
# Preloading choices hold each operator's plan table (numpy, ~12 KiB on average, up to MBs for big ops):
# measured 1,560 entries after 160 default-sweep trials in one process (18 MiB of arrays, +44 MiB RSS). A
# sweep's trials mostly differ in the chip, so entries rarely outlive their trial: 2,048 (LRU) keep a
# design point's operators and a few neighbours while bounding the driver of an in-process sweep.
_CHOICES_MAX = 2_048


@dataclass(frozen=True)
class CompileStats:
    """How much planning work a compile did (for tests and benchmarks)."""

    op_instances: int
    plans_computed: int
    plan_cache_hits: int


def clear_plan_cache() -> None:
    """Forget all cached operator plans and preloading choices (tests use this to count planning work)."""
    _PLAN_CACHE.clear()
    _CHOICES.clear()


def _cached_plan(op: Operator, chip: Chip, budget: float, pinned: bool, rotation: bool,
                 stats: dict) -> PlanChoice | NoFit:
    # Budgets are bucketed to whole KiB so that layers with equal live data share plans.
    budget_kib = int(budget // KIB)
    key = (op.signature, chip, budget_kib, pinned, rotation)
    hit = _PLAN_CACHE.get(key)
    if hit is not None:
        stats["hits"] += 1
        _PLAN_CACHE.move_to_end(key)
        return hit
    stats["computed"] += 1
    result = choose_plan(op, chip, budget_kib * KIB, pinned, rotation)
    _PLAN_CACHE[key] = result
    if len(_PLAN_CACHE) > _PLAN_CACHE_MAX:
        _PLAN_CACHE.popitem(last=False)
    return result


def resident_bytes(graph: Graph) -> float:
    """Bytes that must be stored between passes: all parameters, the KV cache (read and appended) and, for a
    training step, the weight gradients and the optimizer state."""
    return (graph.parameter_bytes + graph.kv_cache_read_bytes + graph.kv_cache_write_bytes + graph.gradient_bytes
            + graph.optimizer_state_bytes)


def compile_graph(graph: Graph, chip: Chip, scheduler: SchedulerConfig | None = None, *,
                  rebuild: Callable[[int], Graph] | None = None,
                  timer: Callable[[Program], float] | None = None) -> Program | Infeasible:
    """Compile ``graph`` for ``chip``; an Infeasible (with reason) when it cannot run there.

    On a system of chips, ``chip.chips.parallelism`` decides how the graph is spread over them
    (compiler/parallel/): ``all_core`` compiles it for all cores of all chips as one chip (below); the other
    strategies compile each chip's share on one chip's view. ``rebuild(batch)``: the same model at another
    batch (data parallelism, micro-batches); ``timer``: the evaluator's latency of a Program, which
    ``parallelism: auto`` compares candidates with.
    """
    scheduler = scheduler or SchedulerConfig()
    if scheduler.name not in SCHEDULERS:
        raise ConfigError("scheduler.name", scheduler.name,
                          "one of " + ", ".join(SCHEDULERS) + nearest(scheduler.name, SCHEDULERS))
    if chip.num_chips > 1 and chip.chips.parallelism != "all_core":
        return compile_parallel(Workload(graph, rebuild), chip, scheduler, timer)
    return compile_single(graph, chip, scheduler)


def compile_single(graph: Graph, chip: Chip, scheduler: SchedulerConfig) -> Program | Infeasible:
    """Compile ``graph`` for ``chip`` as one chip (all its cores, of all its chips): the T10/Elk compiler."""
    program, _ = compile_with_stats(graph, chip, scheduler)
    if isinstance(program, Program):  # issue 17t (seventh session): the logits the host reads back per step
        logits = host_logits_bytes(graph, chip.overheads)  # (cost/host_io.py; 0 when it samples on the device)
        if logits:
            program.meta["host_logits_bytes"] = logits
        # issue 17g (eighth session): what the host writes and reads per batch under the stack (cost/host_io.py)
        record_host_batch_io(program.meta, graph, chip.overheads)
    return program


def compile_with_stats(graph: Graph, chip: Chip,
                       scheduler: SchedulerConfig) -> tuple[Program | Infeasible, CompileStats]:
    """Like compile_graph, and report how many plans were computed versus reused."""
    stats = {"hits": 0, "computed": 0}
    n_instances = sum(len(layer.ops) * layer.repeat for layer in graph.layers)

    def done(result):
        return result, CompileStats(n_instances, stats["computed"], stats["hits"])

    # Capacity first: these totals are per layer x repeat, while everything below walks every instance (a
    # config with num_hidden_layers=1000000 took 170 s and 4.7 GB to be told it does not fit; ninth session, 17u).
    stored = resident_bytes(graph)
    pinned = chip.hbm is None
    if pinned and stored > chip.total_sram_bytes:
        return done(Infeasible(
            "sram_capacity",
            f"chip has no HBM: weights and KV cache need {format_bytes(stored)}, "
            f"on-chip SRAM holds {format_bytes(chip.total_sram_bytes)}"))
    if not pinned and stored > chip.hbm_capacity_bytes:
        return done(Infeasible(
            "hbm_capacity",
            f"weights and KV cache need {format_bytes(stored)}, HBM holds {format_bytes(chip.hbm_capacity_bytes)}"))
    graph = in_place_graph(graph, chip)  # issue 17j: outputs written over inputs that die with them
    instances = [(f"{graph.layers[li].name}", op) for li, _, op in graph.instances()]
    reps = [rep for _, rep, _ in graph.instances()]

    ops = [op for _, op in instances]

    def resident(**kw) -> Residency:
        return residency(ops, chip.sram_bytes_per_core, chip.num_cores, can_spill=not pinned, **kw)

    res = resident(cross_op=scheduler.cross_op)
    program = _compile_resident(graph, chip, scheduler, instances, reps, res, pinned, stats)
    if not pinned and scheduler.cross_op:
        # Keeping activations on chip takes SRAM from plans and preloads: it can squeeze operators into
        # streamed (multi-pass) plans that move more than spilling would, shrink the preload space, or leave
        # no plan at all. Then also try spilling what is live across the squeezed operators, and spilling
        # everything, and keep the program estimated fastest (see _estimate_s).
        alts: list[Residency] = []
        if isinstance(program, Program):
            squeezed = frozenset(op.index for op in program.ops
                                 if op.plan.num_passes > 1 and res.live_bytes[op.index] > 0)
            crowded = float(res.live_bytes.max(initial=0.0)) / chip.num_cores > LIVE_SHARE * chip.sram_bytes_per_core
            if squeezed:
                alts.append(resident(relieve=squeezed))
            if squeezed or crowded:
                alts.append(resident(cross_op=False))
        elif program.reason == "sram_capacity":
            alts = [resident(cross_op=False)]
        for alt in alts:
            cand = _compile_resident(graph, chip, scheduler, instances, reps, alt, pinned, stats)
            if isinstance(cand, Program) and (not isinstance(program, Program)
                                              or _estimate_s(cand) < _estimate_s(program)):
                program = cand
    return done(program)


# Live activations taking less than this share of a core's SRAM cannot change a plan or a preload window
# noticeably: the residency alternatives are compiled only above it (or when an operator was squeezed).
LIVE_SHARE = 0.01


def _estimate_s(program: Program) -> float:
    """Time estimate to choose between residencies (seconds): the preloading scheduler's own estimate plus the
    activation traffic it does not see, at full HBM bandwidth; without one (sequential), HBM bytes at that
    bandwidth."""
    hbm_s = program.chip.hbm_bytes_per_s
    if "schedule_estimate_s" in program.meta:
        return float(program.meta["schedule_estimate_s"]) + float(program.meta["activation_hbm_bytes"]) / hbm_s
    return program.hbm_bytes / hbm_s


def _compile_resident(graph: Graph, chip: Chip, scheduler: SchedulerConfig, instances, reps, res: Residency,
                      pinned: bool, stats: dict) -> Program | Infeasible:
    """Plans, cross-operator traffic and dependencies for one residency decision: the registered scheduler's
    on a chip with HBM; without HBM everything stays on chip and T10's global trade-off decides the plans."""
    rotation = scheduler.plans == "t10"
    if not pinned:
        return _scheduled_program(graph, chip, scheduler, instances, reps, res, rotation, stats)
    on_chip = _on_chip_choices(graph, chip, instances, rotation, stats)
    if isinstance(on_chip, Infeasible):
        return on_chip
    choices, sram_used = on_chip
    works = [c.work for c in choices]
    n = len(instances)
    ops = []
    for i, ((layer, op), choice, work) in enumerate(zip(instances, choices, works, strict=True)):
        ops.append(_program_op(i, layer, op, reps[i], choice, work, (i - 1,) if i else (), 0.0))
    program = Program(chip=chip, model=graph.name, phase=graph.phase, scheduler=scheduler.name,
                      ops=tuple(ops), parameter_bytes=graph.parameter_bytes, batch=graph.batch,
                      meta={**dict(graph.meta), "sram_used_bytes_per_core": sram_used,
                            **_traffic_meta(choices, works, res, scheduler)},
                      load_order=tuple(range(n)))
    program.check()
    return program


def _program_op(i: int, layer: str, op: Operator, repetition: int, choice: PlanChoice, work: OpWork,
                load_after: tuple[int, ...], preload_bytes: float) -> ProgramOp:
    return ProgramOp(
        index=i, name=op.name, kind=op.kind, layer=layer, repetition=repetition, dims=op.dims, flops=op.flops,
        weight_bytes=op.bytes_by_role(Role.WEIGHT), kv_cache_bytes=op.bytes_by_role(Role.KV_CACHE),
        plan=choice.plan, work=work, load_after=load_after, exec_after=(i - 1,) if i else (),
        sram_exec_bytes=float(choice.plan.sram_bytes_per_core), sram_preload_bytes=preload_bytes)


def _no_fit(op: Operator, choice: NoFit, sram: float) -> Infeasible:
    return Infeasible(
        "sram_capacity",
        f"operator {op.name} needs at least {format_bytes(choice.min_bytes_per_core)} per core, "
        f"{format_bytes(max(choice.budget_bytes_per_core, 0))} of the {format_bytes(sram)} are free")


_CHOICES: OrderedDict[tuple, OpChoices] = OrderedDict()


def _op_choices(op: Operator, chip: Chip, rotation: bool, stats: dict) -> OpChoices:
    key = (op.signature, chip, rotation)
    hit = _CHOICES.get(key)
    if hit is not None:
        stats["hits"] += 1
        _CHOICES.move_to_end(key)
        return hit
    stats["computed"] += 1
    result = op_choices(op, chip, rotation)
    _CHOICES[key] = result
    if len(_CHOICES) > _CHOICES_MAX:
        _CHOICES.popitem(last=False)
    return result


def _default_depth(graph: Graph) -> int:
    """The preload depth ``max_preload_depth = 0`` stands for: one repeated layer's operators."""
    repeated = [len(layer.ops) for layer in graph.layers if layer.repeat > 1] or [len(layer.ops) for layer in graph.layers]
    return max(repeated)


def _problem(graph: Graph, chip: Chip, ops: list[Operator], res: Residency, rotation: bool, with_choices: bool,
             stats: dict) -> SchedulingProblem | Infeasible:
    """The scheduling problem of ``ops`` (program order) with the live activations of ``res``."""
    sram = chip.sram_bytes_per_core
    free = [float(sram - res.live_bytes[i] / chip.num_cores) for i in range(len(ops))]
    choices: list[OpChoices] = []
    if with_choices:
        choices = [_op_choices(op, chip, rotation, stats) for op in ops]
        if not stream_fallbacks(choices, ops, chip, free):
            worst = int(np.argmax([c.mem[0] - f if c.mem else np.inf for c, f in zip(choices, free, strict=True)]))
            return _no_fit(ops[worst], NoFit(choices[worst].mem[0] if choices[worst].mem else np.inf, free[worst]),
                           sram)
    return SchedulingProblem(tuple(choices), tuple(free), graph.layers, _default_depth(graph), float(sram))


def scheduling_problem(graph: Graph, chip: Chip, config: SchedulerConfig) -> SchedulingProblem | Infeasible:
    """The problem ``config``'s scheduler is given for ``graph`` on ``chip`` (a chip with HBM), with the first
    residency decision the compiler tries (for tests and the conformance suite)."""
    if chip.hbm is None:
        raise ValueError(f"chip {chip.name} has no HBM: nothing to schedule, T10's trade-off places everything")
    graph = in_place_graph(graph, chip)
    ops = [op for _, _, op in graph.instances()]
    res = residency(ops, chip.sram_bytes_per_core, chip.num_cores, can_spill=True, cross_op=config.cross_op)
    needs = SCHEDULERS[config.name].needs_choices
    return _problem(graph, chip, ops, res, config.plans == "t10", needs, {"hits": 0, "computed": 0})


def _scheduled_program(graph: Graph, chip: Chip, config: SchedulerConfig, instances, reps, res: Residency,
                       rotation: bool, stats: dict) -> Program | Infeasible:
    """Program of the registered scheduler ``config.name`` on a chip with HBM (the protocol: schedulers/base.py)."""
    scheduler: Scheduler = SCHEDULERS[config.name].from_config(config)
    sram = chip.sram_bytes_per_core
    live = res.live_bytes
    ops = [op for _, op in instances]
    problem = _problem(graph, chip, ops, res, rotation, scheduler.needs_choices, stats)
    if isinstance(problem, Infeasible):
        return problem
    choices, free = problem.choices, problem.free_bytes
    sched = scheduler.schedule(problem)
    if sched is None:
        return Infeasible("sram_capacity", f"scheduler {config.name} found no schedule whose plans fit SRAM "
                          f"({format_bytes(sram)} per core)")
    deps = load_dependencies(sched.window_end, sched.load_order)
    plan_choices: list[PlanChoice] = []
    for i, op in enumerate(ops):
        fi = sched.plan_index[i]
        if fi == DIRECT:
            # Loaded straight into the active layout: the fastest plan in all free SRAM, its load inside it.
            direct = _cached_plan(op, chip, free[i], False, rotation, stats)
            if isinstance(direct, NoFit):
                return _no_fit(op, direct, sram)
            plan_choices.append(direct)
            continue
        c = (sched.choices or choices)[i]
        if fi < 0:
            if c.stream is None:
                raise ValueError(f"{op.name}: plan index -1 (the streaming fallback) but it has none")
            plan_choices.append(c.stream)
            continue
        row = (c.ideal_rows if sched.ideal else c.rows)[fi]
        plan_choices.append(PlanChoice(plan_of(c.table, row), c.work_of(fi, sched.ideal), 0.0))
    works = account(ops, plan_choices, res)
    program_ops = []
    for i, ((layer, op), choice, work) in enumerate(zip(instances, plan_choices, works, strict=True)):
        # The ideal reference preloads into space of its own (bounded by SRAM, not shared with execution).
        program_ops.append(_program_op(i, layer, op, reps[i], choice, work, deps[i],
                                       0.0 if scheduler.separate_preload_space else float(sched.preload_bytes[i])))
    used = max(op.sram_exec_bytes + op.sram_preload_bytes + live[op.index] / chip.num_cores for op in program_ops)
    estimate = ({"schedule_estimate_s": sched.latency_s,
                 "preload_depth": config.max_preload_depth or problem.default_depth}
                if scheduler.needs_choices else {})
    program = Program(chip=chip, model=graph.name, phase=graph.phase, scheduler=config.name, ops=tuple(program_ops),
                      parameter_bytes=graph.parameter_bytes, batch=graph.batch,
                      meta={**dict(graph.meta), "sram_used_bytes_per_core": float(used), **estimate,
                            **_traffic_meta(plan_choices, works, res, config)},
                      load_order=sched.load_order)
    program.check()
    return program


def instance_groups(graph: Graph) -> dict[tuple[int, int], list[int]]:
    """Instance indices of each (layer, position) operator: the repetitions of one op in a repeated layer."""
    positions: dict[tuple[int, int], list[int]] = {}
    i = 0
    for li, layer in enumerate(graph.layers):
        for _rep in range(layer.repeat):
            for k, _op in enumerate(layer.ops):
                positions.setdefault((li, k), []).append(i)
                i += 1
    return positions


def tradeoff_groups(graph: Graph, chip: Chip, rotation: bool = True) -> list[GroupOptions]:
    """The T10 trade-off's option groups of ``graph`` on ``chip`` (one per (layer, position) operator)."""
    graph = in_place_graph(graph, chip)
    instances = [op for _, _, op in graph.instances()]
    # Without HBM nothing spills: every activation stays on chip.
    live = residency(instances, chip.sram_bytes_per_core, chip.num_cores, can_spill=False).live_bytes
    groups = []
    for (li, k), idx in instance_groups(graph).items():
        op = graph.layers[li].ops[k]
        groups.append(group_options(op, chip, len(idx), float(live[idx].max()) / chip.num_cores, rotation))
    return groups


def _on_chip_choices(graph: Graph, chip: Chip, instances: list[tuple[str, Operator]], rotation: bool,
                     stats: dict) -> tuple[list[PlanChoice], float] | Infeasible:
    """Plans for a chip without HBM: T10's global trade-off over idle/active layouts of all operators.
    Returns the per-instance choices and the SRAM bytes per core they need."""
    positions = instance_groups(graph)
    keys = list(positions)
    groups = tradeoff_groups(graph, chip, rotation)
    stats["computed"] += len(groups)
    result = trade_off(groups, chip.sram_bytes_per_core)
    if not result.fits:
        # Name the operator whose smallest active layout leaves the least room.
        idle_total = sum(g.multiplicity * float(g.idle.min()) for g in groups)
        extra = [float((g.active - g.idle).min()) + g.live_bytes for g in groups]
        worst = int(np.argmax(extra))
        return Infeasible(
            "sram_capacity",
            f"operator {groups[worst].op.name} needs at least {format_bytes(extra[worst])} per core while it runs, "
            f"on top of {format_bytes(idle_total)} of idle weights; SRAM has "
            f"{format_bytes(chip.sram_bytes_per_core)} per core (best trade-off needs "
            f"{format_bytes(result.requirement_bytes)})")
    choices: list[PlanChoice | None] = [None] * len(instances)
    for g, key in enumerate(keys):
        opt = int(result.choice[g])
        group = groups[g]
        table = plan_table(group.op, chip, rotation)
        row, hot = int(group.row[opt]), bool(group.hot[opt])
        w = table_work(table, chip, pinned=True, hot=hot)
        choice = PlanChoice(plan_of(table, row), work_of(w, row, table), float(group.seconds[opt]))
        for j in positions[key]:
            choices[j] = choice
    return [c for c in choices if c is not None], result.requirement_bytes


def _traffic_meta(choices: list[PlanChoice], works: list[OpWork], res: Residency,
                  scheduler: SchedulerConfig) -> dict[str, object]:
    """What the cross-operator analysis decided: bytes it added across HBM (activation traffic between
    operators, both directions) and how many producer outputs were spilled."""
    added = sum(w.hbm_bytes - c.work.hbm_bytes for c, w in zip(choices, works, strict=True))
    return {"cross_op": scheduler.cross_op, "residency": res.policy, "activation_hbm_bytes": float(added),
            "spilled_outputs": len(res.spilled)}
