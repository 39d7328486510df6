"""Conformance suite every registered parallelism strategy must pass (the protocol:
elk_dse/compiler/parallel/base.py).

Parametrize a test over ``PARALLELISMS`` x ``conformance_cases()`` and call ``check_parallelism(name, case)``; a
new strategy module is picked up without editing the suite or the test. A strategy may answer Infeasible (with a
reason) for a case it does not apply to; everything it plans must satisfy, raising :class:`ConformanceError`
naming the strategy, the case and the rule:

1. determinism: the same workload and system give the same plan;
2. structure: stages on distinct, existing chips; ``origin`` / ``share`` cover every stage instance; every
   collective names an existing instance and existing chips; an operator whose reduction dim is split over
   the chips is followed by an all_reduce or reduce_scatter (its partial sums must meet), right after it or,
   fused, after later operators none of which reads its output (or reads it linearly: ``LINEAR_READERS``);
3. FLOPs conserved: each stage instance computes at least ``share`` and at most all of the instance it comes
   from (of the graph at the micro-batch size), every workload instance is covered (shares x chips >= 1),
   and the chips together compute at least the workload's FLOPs;
4. weights conserved: each stage instance reads at most the weights of its origin and the chips together at
   least all of them; the chips together store at least the model's stored bytes;
5. HBM: a compiled plan respects one view's HBM capacity in every stage;
6. collectives: the bytes a collective moves are its operator's output (all_reduce, all_gather, send_recv;
   not for a ``stats`` payload, a norm's statistics), and
   the Program carries exactly the plan's collectives: its chip-link bytes equal the sum of their link bytes
   (cost/collectives.py), each at least the closed form of a one-hop ring (all_reduce 2(n-1)B, all_gather,
   reduce_scatter and all_to_all (n-1)B, send_recv B, for B bytes per chip);
7. never below the roofline bound of the whole system (analytic simulator), and ``auto`` never slower than any
   fixed strategy it could have chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from elk_dse.compiler.compile import resident_bytes
from elk_dse.compiler.parallel import (
    PARALLELISMS,
    ParallelPlan,
    Workload,
    assemble,
    degree_of,
    get_parallelism,
    plan_workload,
)
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.collectives import collective_cost
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import Chip, chip_from_dict
from elk_dse.ir.graph import Graph, Role
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Infeasible, Program

REL = 1e-9


class ConformanceError(AssertionError):
    """A strategy broke a rule of the protocol."""


@dataclass(frozen=True)
class Case:
    """A small workload on a small system of chips."""

    name: str
    chip: dict[str, Any]
    model: ModelConfig

    def workload(self) -> Workload:
        return Workload(build_model(self.model), lambda b: build_model(replace(self.model, batch=b)))

    def system(self, parallelism: str = "all_core") -> Chip:
        data = {**self.chip, "chips": {**self.chip["chips"], "parallelism": parallelism}}
        return chip_from_dict(data)


def small_system(chips: int, topology: str = "ring", grid: list[int] | None = None,
                 hbm_gib: float = 4.0) -> dict[str, Any]:
    """A system of ``chips`` 16-core chips with HBM (a few ms to compile a small model on)."""
    return {
        "name": f"conformance{chips}x16", "clock_ghz": 1.0,
        "cores": {"count": 16, "grid": [4, 4], "sram_kib": 1024, "model": "systolic", "matrix_rows": 16,
                  "matrix_cols": 16, "vector_lanes": 32, "op_overhead_cycles": 50, "overlap_compute_comm": True},
        "interconnect": {"topology": "mesh", "link_bytes_per_cycle": 32, "hop_latency_cycles": 2,
                         "barrier_cycles": 100},
        "hbm": {"bandwidth_gb_s": 400, "capacity_gib": hbm_gib, "channels": 8, "attach": "edge"},
        "chips": {"count": chips, "topology": topology, "link_gb_s": 50.0, "link_latency_ns": 1000.0,
                  **({"grid": grid} if grid else {})},
        "overheads": {"dispatch_us_per_op": 2.0},
    }


_DECODER = (("hidden_size", 512), ("intermediate_size", 1024), ("num_hidden_layers", 4), ("vocab_size", 4096))
_MOE = (("hidden_size", 512), ("intermediate_size", 1024), ("num_hidden_layers", 2), ("vocab_size", 2048))
_ENCODER = (("hidden_size", 256), ("intermediate_size", 1024), ("num_hidden_layers", 2),
            ("num_attention_heads", 4))


def conformance_cases() -> tuple[Case, ...]:
    """A GQA decoder on a 2x2 mesh of chips, the same with more chips than KV heads (16 chips: KV heads
    replicated), a mixture of experts on a ring of 4, an encoder on 2 chips."""
    return (
        Case("decoder_mesh4", small_system(4, "mesh", [2, 2]),
             ModelConfig("llama3_2_1b", batch=8, kv_len=256, arch=_DECODER)),
        Case("decoder_kv_replicated16", small_system(16, "mesh", [4, 4]),
             ModelConfig("llama3_2_1b", batch=16, kv_len=128, arch=_DECODER)),
        Case("moe_ring4", small_system(4), ModelConfig("mixtral_8x7b", batch=8, kv_len=128, arch=_MOE)),
        Case("encoder2", small_system(2), ModelConfig("bert_base", phase="prefill", batch=4, seq_len=64,
                                                      arch=_ENCODER)),
    )


def _fail(name: str, case: Case, rule: str) -> ConformanceError:
    return ConformanceError(f"parallelism {name} on case {case.name}: {rule}")


def check_plan(name: str, case: Case) -> ParallelPlan | Infeasible:
    """Rules 1-4 on the plan strategy ``name`` makes for ``case`` (an Infeasible needs a reason)."""
    work, system = case.workload(), case.system(name)
    strategy = get_parallelism(name)
    degree = degree_of(system, name)
    plan = plan_workload(strategy, work, system, degree)
    if isinstance(plan, Infeasible):
        if not plan.reason or not plan.detail:
            raise _fail(name, case, "an Infeasible answer needs a reason and a sentence")
        return plan
    if plan_workload(strategy, work, system, degree) != plan:
        raise _fail(name, case, "two plans of the same workload differ")
    n = system.num_chips
    used: set[int] = set()
    for s, stage in enumerate(plan.stages):
        if not stage.chips or set(stage.chips) & used or min(stage.chips) < 0 or max(stage.chips) >= n:
            raise _fail(name, case, f"stage {s} runs on chips {stage.chips}: not distinct existing chips")
        used |= set(stage.chips)
        count = stage.graph.num_op_instances
        if len(stage.origin) != count or len(stage.share) != count:
            raise _fail(name, case, f"stage {s}: origin/share do not cover its {count} instances")
        if any(not 0 < x <= 1 for x in stage.share):
            raise _fail(name, case, f"stage {s}: shares must be in (0, 1]")
        for point in stage.collectives:
            c = point.collective
            if not 0 <= point.after < count or max(c.group) >= n:
                raise _fail(name, case, f"stage {s}: collective after {point.after} on {c.group} is out of range")
    ref = _micro_graph(work, plan)
    ref_ops = [op for _, _, op in ref.instances()]
    covered = [0.0] * len(ref_ops)
    chip_flops = 0.0
    stored = 0.0
    for s, stage in enumerate(plan.stages):
        copies = len(stage.chips)
        chip_flops += stage.graph.flops * copies * plan.microbatches
        stored += stage.graph.parameter_bytes * copies
        for i, (op, o, share) in enumerate(zip((op for _, _, op in stage.graph.instances()), stage.origin,
                                               stage.share, strict=True)):
            orig = ref_ops[o]
            if op.flops < share * orig.flops * (1 - REL) or op.flops > orig.flops * (1 + REL):
                raise _fail(name, case, f"stage {s} op {i} {op.name}: {op.flops:.6g} FLOPs is not between its "
                            f"share {share:.4g} and all of the {orig.flops:.6g} of {orig.name}")
            if op.bytes_by_role(Role.WEIGHT) > orig.bytes_by_role(Role.WEIGHT) * (1 + REL):
                raise _fail(name, case, f"stage {s} op {i} {op.name}: reads more weights than {orig.name} has")
            cut = [d for d in orig.reduction_dims if op.sizes.get(d, 0) < orig.sizes[d]]
            if cut and copies > 1 and not _partials_meet(stage, i):
                raise _fail(name, case, f"stage {s} op {i} {op.name}: reduction dim {cut[0]} is split over the "
                            "chips but no all_reduce / reduce_scatter follows: its partial sums never meet")
            covered[o] += share * copies
            weights = op.bytes_by_role(Role.WEIGHT) * copies
            if weights < orig.bytes_by_role(Role.WEIGHT) * min(share * copies, 1.0) * (1 - REL):
                raise _fail(name, case, f"stage {s} op {i} {op.name}: the chips read less than its weights")
    missing = [i for i, c in enumerate(covered) if c < 1 - REL]
    if missing:
        raise _fail(name, case, f"workload instance {missing[0]} ({ref_ops[missing[0]].name}) is not fully computed")
    if chip_flops < work.graph.flops * (1 - REL):
        raise _fail(name, case, f"the chips compute {chip_flops:.6g} FLOPs, the workload has {work.graph.flops:.6g}")
    if stored < work.graph.parameter_bytes * (1 - REL):
        raise _fail(name, case, f"the chips store {stored:.6g} bytes of the model's {work.graph.parameter_bytes:.6g}")
    return plan


# Operators linear in the input that carries partial sums, with their other inputs whole on every chip: the
# reduction of the partial sums may wait until after them (issue 17x). expert_combine: y[t, h] = sum over k of
# p[t, k] x[t, k, h], the router weights p replicated, so sum over chips of y(x_c) = y(sum over chips of x_c).
LINEAR_READERS = frozenset({"expert_combine"})


def _partials_meet(stage: Any, i: int) -> bool:
    """Whether the first collective after stage instance ``i`` (at ``i`` or later) is an all_reduce or a
    reduce_scatter and no instance before it reads ``i``'s output (a fused reduce_scatter may follow the last of
    several projections, as tp2d's after q/k/v). A reader linear in it (``LINEAR_READERS``: the MoE combine
    before tp's all_reduce) passes the partial sums on: then no instance before the collective may read its
    output either, unless it is linear too."""
    later = sorted((p for p in stage.collectives if p.after >= i and p.payload == "output"), key=lambda p: p.after)
    if not later or later[0].collective.kind not in ("all_reduce", "reduce_scatter"):
        return False
    instances = [op for _, _, op in stage.graph.instances()]
    partial = {instances[i].output.name}  # tensors holding partial sums before the collective
    for op in instances[i + 1:later[0].after + 1]:
        if any(t.name in partial for t in op.inputs):
            if op.name not in LINEAR_READERS:
                return False
            partial.add(op.output.name)
    return True


def _micro_graph(work: Workload, plan: ParallelPlan) -> Graph:
    if plan.microbatches == 1:
        return work.graph
    g = work.at_batch(work.graph.batch // plan.microbatches)
    if g is None:
        raise ConformanceError(f"{plan.strategy}: micro-batches without a rebuildable workload")
    return g


def check_program(name: str, case: Case, plan: ParallelPlan) -> Program | Infeasible:
    """Rules 5-6 on the Program assembled from ``plan``."""
    program = assemble(plan, SchedulerConfig(name="sequential"))
    if isinstance(program, Infeasible):
        return program
    if plan.view.hbm is not None:
        for s, stage in enumerate(plan.stages):
            if resident_bytes(stage.graph) > plan.view.hbm_capacity_bytes:
                raise _fail(name, case, f"stage {s} stores more than one chip's HBM and still compiled")
    coll_ops = [op for op in program.ops if op.kind == "collective"]
    planned = plan.collectives
    carried = tuple(c for op in coll_ops for c in op.work.collectives)
    if carried != planned:
        raise _fail(name, case, f"the Program carries {len(carried)} collectives, the plan has {len(planned)}")
    system = plan.system
    link = sum(collective_cost(c, system).link_bytes for c in planned)
    ops_link = sum(op.work.chip_link_bytes + op.work.shift_cross_bytes + op.work.warm_cross_bytes
                   for op in program.ops)
    if abs(program.chip_link_bytes - (ops_link + link)) > REL * max(link, 1.0):
        raise _fail(name, case, f"Program chip-link bytes {program.chip_link_bytes:.6g} != operators' "
                    f"{ops_link:.6g} + collectives' {link:.6g}")
    for stage in plan.stages:
        instances = [op for _, _, op in stage.graph.instances()]
        for point in stage.collectives:
            c, op = point.collective, instances[point.after]
            if point.payload == "regather":  # issue 17t: every chip ends with the operator's whole output
                if c.kind != "all_gather" or abs(c.bytes_per_chip - op.output_bytes) > REL * op.output_bytes:
                    raise _fail(name, case, f"a regather after {op.name} is a {c.kind} of {c.bytes_per_chip:.6g} B "
                                f"per chip, not an all_gather of its output {op.output_bytes:.6g} B")
                continue
            if point.payload != "output":
                continue
            # all_reduce: each chip's buffer is the operator's (partial) output; all_gather: every chip ends
            # with all chips' outputs.
            want = {"all_reduce": op.output_bytes, "all_gather": op.output_bytes * len(c.group)}.get(c.kind)
            if want is not None and abs(c.bytes_per_chip - want) > REL * want:
                raise _fail(name, case, f"{c.kind} after {op.name} has {c.bytes_per_chip:.6g} B per chip, not "
                            f"{want:.6g} B")
        if stage.handoff is not None and stage.handoff.bytes_per_chip != instances[-1].output_bytes:
            raise _fail(name, case, "a stage's handoff is not its last operator's output")
    for c in planned:
        g = len(c.group)
        floor = {"all_reduce": 2 * (g - 1), "all_gather": g - 1, "all_to_all": g - 1, "send_recv": 1,
                 "reduce_scatter": g - 1, "broadcast": g - 1}[c.kind] * c.bytes_per_chip
        got = collective_cost(replace(c, algorithm="ring") if c.kind != "send_recv" else c, system).link_bytes
        if got < floor * (1 - REL):
            raise _fail(name, case, f"{c.kind} of {c.bytes_per_chip:.6g} B over {g} chips moves {got:.6g} B on "
                        f"the links, below the ring's closed form {floor:.6g}")
    return program


def check_parallelism(name: str, case: Case) -> None:
    """Every rule for strategy ``name`` on ``case``."""
    if name == "auto":
        _check_auto(case)
        return
    plan = check_plan(name, case)
    if isinstance(plan, Infeasible):
        return
    program = check_program(name, case, plan)
    if isinstance(program, Infeasible):
        return
    out = evaluate_graph(case.workload().graph, case.system(name), SchedulerConfig(name="sequential"),
                         "analytic", include_ops=False, rebuild=case.workload().rebuild)
    if out["feasible"] and out["latency_s"] < out["roofline_latency_s"] * (1 - REL):
        raise _fail(name, case, f"latency {out['latency_s']:.6g} s beats the roofline {out['roofline_latency_s']:.6g} s")


def _check_auto(case: Case) -> None:
    work = case.workload()
    fixed = {}
    for name in PARALLELISMS:
        if name == "auto":
            continue
        out = evaluate_graph(work.graph, case.system(name), SchedulerConfig(name="sequential"), "analytic",
                             include_ops=False, rebuild=work.rebuild)
        if out["feasible"]:
            fixed[name] = out["latency_s"]
    out = evaluate_graph(work.graph, case.system("auto"), SchedulerConfig(name="sequential"), "analytic",
                         include_ops=False, rebuild=work.rebuild)
    if not fixed:
        if out["feasible"]:
            raise _fail("auto", case, "feasible although no strategy is")
        return
    if not out["feasible"]:
        raise _fail("auto", case, f"infeasible although {sorted(fixed)} are feasible: {out['infeasible_detail']}")
    best = min(fixed.values())
    if out["latency_s"] > best * (1 + 1e-6):
        raise _fail("auto", case, f"chose {out['parallelism']['strategy']} at {out['latency_s']:.6g} s, "
                    f"{min(fixed, key=fixed.__getitem__)} takes {best:.6g} s")
    if out["latency_s"] < out["roofline_latency_s"] * (1 - REL):
        raise _fail("auto", case, "beats the roofline")
