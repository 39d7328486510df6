"""``all_core``: the system as one big chip. Every operator is partitioned over all cores of all chips by the
T10/Elk compiler, its cross-chip bytes on the chip links (the behaviour before issue 17, and the Elk paper's
IPU-POD4 setting). One stage, compiled for the system itself (the view is the system)."""

from __future__ import annotations

from elk_dse.compiler.parallel.base import Parallelism, ParallelPlan, Stage, Workload, register_parallelism
from elk_dse.hw.chip import Chip
from elk_dse.program import Infeasible


@register_parallelism("all_core")
class AllCore(Parallelism):
    """The whole system compiles as one chip; no collectives (the partition's traffic is in the operators)."""

    trains = True  # the compiler's training graph, partitioned like any other

    def plan(self, work: Workload, system: Chip, degree: int) -> ParallelPlan | Infeasible:
        n = work.graph.num_op_instances
        # One view (the system) runs every operator in full: share 1 of the view, which spans all chips.
        return ParallelPlan("all_core", (), system, system,
                            (Stage(work.graph, (0,), tuple(range(n)), (1.0,) * n),))
