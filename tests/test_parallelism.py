"""Parallelism across chips (issue 17, compiler/parallel/): every registered strategy passes the conformance
suite shipped in elk_dse.testing.parallelism, and the suite catches a strategy that breaks its rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from elk_dse.compiler.parallel import PARALLELISMS, Parallelism, ParallelPlan, Stage, register_parallelism
from elk_dse.hw import chip
from elk_dse.testing.parallelism import ConformanceError, check_parallelism, check_plan, conformance_cases

CASES = {c.name: c for c in conformance_cases()}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list(PARALLELISMS))
def test_every_registered_strategy_conforms(name, case):
    check_parallelism(name, CASES[case])


@pytest.fixture
def registered():
    """Register strategies for one test and remove them afterwards."""
    added: list[str] = []

    def add(name: str, cls: type[Parallelism]) -> None:
        register_parallelism(name)(cls)
        added.append(name)

    yield add
    for name in added:
        PARALLELISMS.pop(name, None)
        chip.PARALLELISMS.remove(name)


def _halving_tp(plan: ParallelPlan) -> ParallelPlan:
    """TP's plan with every chip computing half of what TP gives it: work is lost."""
    stage = plan.stages[0]
    layers = tuple(replace(layer, ops=tuple(replace(op, dims=tuple((d, max(n // 2, 1)) if d == "t" else (d, n)
                                                                   for d, n in op.dims)) for op in layer.ops))
                   for layer in stage.graph.layers)
    return replace(plan, stages=(replace(stage, graph=replace(stage.graph, layers=layers)),))


def test_suite_catches_lost_flops(registered):
    class Lossy(Parallelism):
        def plan(self, work, system, degree):
            return _halving_tp(PARALLELISMS["tp"]().plan(work, system, degree))

    registered("lossy_test", Lossy)
    with pytest.raises(ConformanceError, match="FLOPs is not between"):
        check_plan("lossy_test", CASES["decoder_mesh4"])


def test_suite_catches_a_chip_used_twice_and_missing_collectives(registered):
    class TwoStagesOneChip(Parallelism):
        def plan(self, work, system, degree):
            plan = PARALLELISMS["pp"]().plan(work, system, degree)
            first = plan.stages[0]
            return replace(plan, stages=(first, replace(plan.stages[1], chips=first.chips), *plan.stages[2:]))

    class NoCollectives(Parallelism):
        def plan(self, work, system, degree):
            plan = PARALLELISMS["tp"]().plan(work, system, degree)
            return replace(plan, stages=(Stage(**{**plan.stages[0].__dict__, "collectives": ()}),))

    registered("two_stages_test", TwoStagesOneChip)
    registered("no_collectives_test", NoCollectives)
    with pytest.raises(ConformanceError, match="not distinct existing chips"):
        check_plan("two_stages_test", CASES["decoder_mesh4"])
    # Without its all-reduces TP still conserves FLOPs and weights per chip, but o_proj's partial sums never meet.
    with pytest.raises(ConformanceError, match="o_proj: reduction dim h is split"):
        check_plan("no_collectives_test", CASES["decoder_mesh4"])


def test_suite_lets_partial_sums_meet_after_a_linear_combine_only(registered):
    # Issue 17x: tp all-reduces the experts' partial sums after expert_combine (linear in them: a router-weighted
    # sum); one operator later, after the residual add (not linear in them), they would meet too late.
    class LateMoeReduce(Parallelism):
        def plan(self, work, system, degree):
            plan = PARALLELISMS["tp"]().plan(work, system, degree)
            stage = plan.stages[0]
            names = [op.name for _, _, op in stage.graph.instances()]
            points = tuple(replace(p, after=p.after + 1) if names[p.after] == "expert_combine" else p
                           for p in stage.collectives)
            return replace(plan, stages=(replace(stage, collectives=points),))

    assert isinstance(check_plan("tp", CASES["moe_ring4"]), ParallelPlan)
    registered("late_moe_reduce_test", LateMoeReduce)
    with pytest.raises(ConformanceError, match="expert_down_proj: reduction dim h is split"):
        check_plan("late_moe_reduce_test", CASES["moe_ring4"])
