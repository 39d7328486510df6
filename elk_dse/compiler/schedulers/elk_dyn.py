"""``elk_dyn``: Elk's inductive scheduling of preload depth and SRAM split, in the default load order."""

from __future__ import annotations

from dataclasses import dataclass

from elk_dse.compiler.elk import induction, induction_per_op_cold
from elk_dse.compiler.schedulers.base import Schedule, Scheduler, SchedulingProblem, register_scheduler


@dataclass(frozen=True)
class ElkDynKnobs:
    """max_preload_depth: most operators preloaded ahead (0 = one repeated layer's worth). margin: fraction
    added to every preloaded idle size (Elk uses 1%)."""

    max_preload_depth: int = 0
    margin: float = 0.01


@register_scheduler("elk_dyn")
class ElkDyn(Scheduler):
    """From the last operator backwards every depth k is tried and the one maximizing the operator's latest
    start kept (compiler/elk.py ``induction``)."""

    description = "inductive scheduling of preload depth and SRAM split in the default load order"
    rank = 3
    Knobs = ElkDynKnobs

    def schedule(self, problem: SchedulingProblem) -> Schedule | None:
        free, depth = list(problem.free_bytes), self.depth(problem, self.knobs.max_preload_depth)
        order = list(range(problem.num_ops))
        if any(c.cold_mem is not None for c in problem.choices):
            # conventions=paper (issues 18e, 18f): the artifact's ICBM Ordered preloads replicated cold layouts too
            # (reference layer: 52.3 KiB per core for the QKV Dot, its min cold 26.1), chosen per operator.
            return induction_per_op_cold(list(problem.choices), free, order, depth, self.knobs.margin)
        return induction(list(problem.choices), free, order, depth, self.knobs.margin)
