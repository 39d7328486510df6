"""``sequential``: load an operator's data straight into its active layout, then run it; nothing overlaps."""

from __future__ import annotations

from elk_dse.compiler.schedulers.base import (
    DIRECT,
    Schedule,
    Scheduler,
    SchedulingProblem,
    register_scheduler,
)


@register_scheduler("sequential")
class Sequential(Scheduler):
    """Every window ends at the operator itself (no preloading): the load of operator i waits for operator
    i-1 to end. Plans are DIRECT: the fastest plan in all free SRAM with the load inside the execution."""

    description = "load an operator's data, then run it; no overlap"
    rank = 0
    needs_choices = False

    def schedule(self, problem: SchedulingProblem) -> Schedule:
        n = problem.num_ops
        return Schedule(plan_index=(DIRECT,) * n, window_end=tuple(range(n)), load_order=tuple(range(n)),
                        exec_budget_bytes=tuple(problem.free_bytes), preload_bytes=(0.0,) * n, latency_s=0.0)
