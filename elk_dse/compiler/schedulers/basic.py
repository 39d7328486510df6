"""``basic``: while an operator runs, preload only the next one (the paper's Basic / the artifact's Naive)."""

from __future__ import annotations

from dataclasses import dataclass

from elk_dse.compiler.elk import INFEASIBLE, best_of_cold_variants, fixed_window_schedule
from elk_dse.compiler.schedulers.base import Schedule, Scheduler, SchedulingProblem, register_scheduler


@dataclass(frozen=True)
class BasicKnobs:
    """margin: fraction added to every preloaded idle size."""

    margin: float = 0.01


@register_scheduler("basic")
class Basic(Scheduler):
    """Depth 1 everywhere, no cap on the execution space: the next operator is preloaded if the running
    operator still has a plan in what is left."""

    description = "preload only the next operator"
    rank = 1
    Knobs = BasicKnobs

    def schedule(self, problem: SchedulingProblem) -> Schedule | None:
        free = list(problem.free_bytes)
        # conventions=paper (choices with cold layouts, issue 18e): the artifact's Naive also runs with Max Cold
        # layouts, each sized for SRAM minus the preloaded next operator's cold bytes (DNNProgram.py:1643-1645;
        # the last operator: all SRAM, :1568; issue 18i), and keeps the faster (launch.py:199-204)
        return best_of_cold_variants(lambda ch: fixed_window_schedule(ch, free, 1, INFEASIBLE, self.knobs.margin),
                                     list(problem.choices), free, self.knobs.margin)
