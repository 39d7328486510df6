"""``ideal``: the reference every scheduler is measured against (not a realizable schedule)."""

from __future__ import annotations

from elk_dse.compiler.elk import induction
from elk_dse.compiler.schedulers.base import Schedule, Scheduler, SchedulingProblem, register_scheduler


@register_scheduler("ideal")
class Ideal(Scheduler):
    """Every operator's best plan in its whole free SRAM (loaded straight into the active layout, no warm-up),
    loads costing only bytes / HBM bandwidth, preloading bounded only by SRAM in a space of its own."""

    description = "reference: best plans in all SRAM, loads cost only HBM bandwidth, preload bounded by SRAM"
    rank = 5
    separate_preload_space = True

    def schedule(self, problem: SchedulingProblem) -> Schedule | None:
        n = problem.num_ops
        return induction(list(problem.choices), list(problem.free_bytes), list(range(n)), n, 0.0, ideal=True)
