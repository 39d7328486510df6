"""Conformance suite every registered scheduler must pass (the protocol: elk_dse/compiler/schedulers/base.py).

Use it like ``optuna.testing``: parametrize a test over ``SCHEDULERS`` x ``conformance_cases()`` and call
``check_scheduler(name, case)``; a new scheduler module is picked up without editing the suite or the test.
Each check raises :class:`ConformanceError` naming the scheduler, the case and the broken rule:

1. determinism: the same problem gives the same schedule;
2. window ends never decrease along the program, every window covers the operator's own load, and the
   Program's load dependencies are the window ends' (a load waits for the last operator whose window ends
   before it);
3. SRAM: at every moment -- while each operator runs, from the simulated timeline -- its plan plus the idle
   layouts resident then (loads started, operator not yet run) fit SRAM beside the live activations (the
   reference with ``separate_preload_space`` gets a second SRAM for its preloads);
4. never below the roofline bound (cost/roofline.py) in the analytic simulator;
5. ``ideal`` is never slower than the scheduler on the same program.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elk_dse.compiler.compile import compile_graph, scheduling_problem
from elk_dse.compiler.elk import load_dependencies
from elk_dse.compiler.schedulers import DIRECT, SCHEDULERS, Schedule, SchedulerConfig
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import Chip, chip_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Infeasible, Program
from elk_dse.sim import simulate

REL = 1e-9  # relative slack for floating-point sums


class ConformanceError(AssertionError):
    """A scheduler broke a rule of the protocol."""


@dataclass(frozen=True)
class Case:
    """One program to schedule: a small chip with HBM and a small decode workload."""

    name: str
    chip: dict[str, Any]
    model: ModelConfig

    def build(self) -> tuple[Any, Chip]:
        return build_model(self.model), chip_from_dict(self.chip)


def _mesh16(sram_kib: int, hbm_gb_s: float) -> dict[str, Any]:
    return {
        "name": "conformance16", "clock_ghz": 1.0,
        "cores": {"count": 16, "grid": [4, 4], "sram_kib": sram_kib, "model": "systolic", "matrix_rows": 16,
                  "matrix_cols": 16, "vector_lanes": 32, "op_overhead_cycles": 50, "overlap_compute_comm": True},
        "interconnect": {"topology": "mesh", "link_bytes_per_cycle": 32, "hop_latency_cycles": 2,
                         "barrier_cycles": 100},
        "hbm": {"bandwidth_gb_s": hbm_gb_s, "capacity_gib": 64, "channels": 8, "attach": "edge"},
    }


def conformance_cases() -> tuple[Case, ...]:
    """Small programs (a second each at most): roomy SRAM, and SRAM tight enough that preloading competes with
    execution for space."""
    return (
        Case("roomy", _mesh16(2048, 800), ModelConfig("llama3_2_1b", batch=8, kv_len=512)),
        Case("tight", _mesh16(512, 3200), ModelConfig("llama3_2_1b", batch=8, kv_len=1024)),
        # issue 18e: the Elk artifact's plan rules (conventions=paper): its integer spatial factors and the Max
        # Cold idle layouts every preloading scheduler may choose instead of the compact ones
        Case("artifact_rules", {**_mesh16(512, 3200), "plan_rules": "artifact"},
             ModelConfig("llama3_2_1b", batch=8, kv_len=1024)),
    )


def _fail(name: str, case: Case, rule: str) -> ConformanceError:
    return ConformanceError(f"scheduler {name} on case {case.name}: {rule}")


def check_schedule(name: str, case: Case, config: SchedulerConfig | None = None) -> Schedule:
    """Rules 1-2 and the schedule's own SRAM split, on the Schedule the scheduler returns for ``case``."""
    config = config or SchedulerConfig(name=name)
    graph, chip = case.build()
    problem = scheduling_problem(graph, chip, config)
    if isinstance(problem, Infeasible):
        raise _fail(name, case, f"no scheduling problem: {problem}")
    cls = SCHEDULERS[name]
    sched = cls.from_config(config).schedule(problem)
    if sched is None:
        raise _fail(name, case, "found no schedule on a case every scheduler must fit")
    if cls.from_config(config).schedule(problem) != sched:
        raise _fail(name, case, "the same problem gave a different schedule (not deterministic)")
    n = problem.num_ops
    if sorted(sched.load_order) != list(range(n)):
        raise _fail(name, case, "the load order is not a permutation of the operators")
    for field_ in ("plan_index", "window_end", "exec_budget_bytes", "preload_bytes"):
        if len(getattr(sched, field_)) != n:
            raise _fail(name, case, f"{field_} has {len(getattr(sched, field_))} entries for {n} operators")
    pos = {op: p for p, op in enumerate(sched.load_order)}
    for i in range(n):
        if i and sched.window_end[i] < sched.window_end[i - 1]:
            raise _fail(name, case, f"window end decreases at operator {i} "
                                    f"({sched.window_end[i - 1]} -> {sched.window_end[i]})")
        if sched.window_end[i] < pos[i]:
            raise _fail(name, case, f"operator {i}'s window ends at load position {sched.window_end[i]}, "
                                    f"before its own load at {pos[i]}")
        fi = sched.plan_index[i]
        if fi == DIRECT:
            if sched.preload_bytes[i] > 0:
                raise _fail(name, case, f"operator {i} is loaded into its active layout yet preloads others")
            continue
        if fi == -1:
            continue  # the streaming fallback: sized by the compiler for the free SRAM at depth 0
        c = (sched.choices or problem.choices)[i]  # a schedule may name its own (Max Cold) choices
        mem = (c.ideal_mem if sched.ideal else c.mem)[fi]
        room = problem.free_bytes[i] if cls.separate_preload_space else problem.free_bytes[i] - sched.preload_bytes[i]
        if mem > room * (1 + REL):
            raise _fail(name, case, f"operator {i}'s plan needs {mem:.0f} B per core, {room:.0f} B are left")
    return sched


def _idle_bytes(op) -> float:
    return op.weight_bytes + op.kv_cache_bytes


def check_program(name: str, case: Case, config: SchedulerConfig | None = None) -> Program:
    """Rules 2-4 on the compiled Program and its analytic timeline."""
    config = config or SchedulerConfig(name=name)
    graph, chip = case.build()
    program = compile_graph(graph, chip, config)
    if not isinstance(program, Program):
        raise _fail(name, case, f"infeasible on a case every scheduler must fit: {program}")
    cls = SCHEDULERS[name]
    ops = program.ops
    n = len(ops)
    sram = chip.sram_bytes_per_core
    # Rule 2 on the Program: reconstruct each position's freeing operator; it never moves backwards.
    order = program.load_order
    freed_by = [max(ops[j].load_after, default=-1) for j in order]
    for p in range(1, n):
        if freed_by[p] < freed_by[p - 1]:
            raise _fail(name, case, f"load at position {p} waits for operator {freed_by[p]}, an earlier one than "
                                    f"the load before it ({freed_by[p - 1]}): window ends decrease")
    for p, j in enumerate(order):
        if freed_by[p] >= j:
            raise _fail(name, case, f"operator {j}'s load waits for operator {freed_by[p]}, not before it")
    ends = []
    for i in range(n):  # window end of i: the last position whose load may start before i ends
        e = -1
        while e + 1 < n and freed_by[e + 1] < i:
            e += 1
        ends.append(e)
    if [tuple(d) for d in load_dependencies(tuple(ends), order)] != [tuple(op.load_after) for op in ops]:
        raise _fail(name, case, "the Program's load dependencies are not those of its window ends")
    # Rule 3: SRAM at every moment.
    used = float(program.meta.get("sram_used_bytes_per_core", 0.0))
    if used > sram * (1 + REL):
        raise _fail(name, case, f"uses {used:.0f} B per core, SRAM holds {sram:.0f}")
    result = simulate(program, "analytic")
    t = result.timings
    for i, op in enumerate(ops):
        resident = sum(_idle_bytes(ops[j]) for j in range(i + 1, n)
                       if t[j].load_s > 0 and t[j].load_start_s < t[i].end_s * (1 - REL)) / chip.num_cores
        if cls.separate_preload_space:
            if resident > sram * (1 + REL) or op.sram_exec_bytes > sram * (1 + REL):
                raise _fail(name, case, f"operator {i}: {resident:.0f} B preloaded or a {op.sram_exec_bytes:.0f} B "
                                        f"plan in a {sram:.0f} B SRAM")
            continue
        if resident > op.sram_preload_bytes * (1 + REL) + 1e-6:
            raise _fail(name, case, f"while operator {i} runs, {resident:.0f} B per core of idle layouts are "
                                    f"resident, its SRAM split reserves {op.sram_preload_bytes:.0f}")
        if op.sram_exec_bytes + op.sram_preload_bytes > sram * (1 + REL):
            raise _fail(name, case, f"operator {i}: plan {op.sram_exec_bytes:.0f} B + preload "
                                    f"{op.sram_preload_bytes:.0f} B exceed SRAM {sram:.0f} B")
    return program


def check_scheduler(name: str, case: Case) -> None:
    """Every rule for the registered scheduler ``name`` on ``case``; ConformanceError on the first broken one."""
    if name not in SCHEDULERS:
        raise ConformanceError(f"scheduler {name} is not registered")
    check_schedule(name, case)
    check_program(name, case)
    graph, chip = case.build()
    mine = evaluate_graph(graph, chip, SchedulerConfig(name=name), include_ops=False)
    if not mine["feasible"]:
        raise _fail(name, case, f"infeasible: {mine.get('infeasible_reason')}")
    bound = mine["roofline_latency_s"]
    if mine["latency_s"] < bound * (1 - REL):
        raise _fail(name, case, f"latency {mine['latency_s']:.6g} s beats the roofline bound {bound:.6g} s")
    ideal = evaluate_graph(graph, chip, SchedulerConfig(name="ideal"), include_ops=False)
    if ideal["latency_s"] > mine["latency_s"] * (1 + REL):
        raise _fail(name, case, f"ideal ({ideal['latency_s']:.6g} s) is slower than {name} "
                                f"({mine['latency_s']:.6g} s)")
