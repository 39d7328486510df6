"""``elk_dyn``: Elk's inductive scheduling of preload depth and SRAM split, in the default load order."""

from __future__ import annotations

from dataclasses import dataclass

from elk_dse.compiler.elk import induction
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
        return induction(list(problem.choices), list(problem.free_bytes), list(range(problem.num_ops)),
                         self.depth(problem, self.knobs.max_preload_depth), self.knobs.margin)
