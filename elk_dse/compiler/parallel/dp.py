"""Data parallelism: every chip runs the whole model on 1/dp of the batch, with its own copy of the weights.
Inference needs no collective (each chip's outputs are its own samples'); for encoders and CNNs, whose weights
fit one chip. Needs the model rebuilt at the per-chip batch (``Workload.rebuild``) and dp dividing the batch."""

from __future__ import annotations

from elk_dse.compiler.parallel.base import (
    Parallelism,
    ParallelPlan,
    Stage,
    Workload,
    one_chip_view,
    register_parallelism,
)
from elk_dse.hw.chip import Chip
from elk_dse.program import Infeasible


@register_parallelism("dp")
class DataParallel(Parallelism):
    """The batch split over the chips; weights replicated; no collectives at inference."""

    needs_rebuild = True

    def plan(self, work: Workload, system: Chip, degree: int) -> ParallelPlan | Infeasible:
        graph = work.graph
        if graph.batch % degree:
            return Infeasible("parallelism", f"dp={degree} does not divide the batch of {graph.batch}")
        part = work.at_batch(graph.batch // degree)
        if part is None:
            return Infeasible("parallelism", "dp needs the model rebuilt at a smaller batch; this workload is a "
                              "fixed graph (e.g. an ONNX file)")
        if part.num_op_instances != graph.num_op_instances:
            return Infeasible("parallelism", "dp: the model at the per-chip batch has other operators")
        n = part.num_op_instances
        # Every chip computes 1/dp of every operator (its samples); the weights are replicated.
        share = (1.0 / degree,) * n
        return ParallelPlan("dp", (("dp", degree),), one_chip_view(system), system,
                            (Stage(part, tuple(range(system.num_chips)), tuple(range(n)), share),))
