"""Pipeline parallelism: consecutive layers in pp stages, one chip each, the batch in micro-batches.

Stages are cut between layer instances (a repeated decoder layer may be split between stages) so that their
roofline times on one chip (max of FLOPs / peak and weight + KV bytes / HBM bandwidth) are as even as a
contiguous cut allows; the embedding goes with the first stage, the head with the last. Every stage ends with a
send_recv of its output activations to the next stage's chip (the chips in ring order, so neighbours are linked).
The batch runs in m micro-batches (the largest divisor of the batch <= pp, when the model can be rebuilt at the
micro-batch size; else 1): cost/pipeline.py composes the stage times, sum + (m - 1) x the slowest, the same for
every simulator. Each stage's chip stores its layers' share of the model's stored bytes (in proportion to the
weight bytes they read: embedding and MoE tables are spread the same way, an approximation).
"""

from __future__ import annotations

from elk_dse.compiler.parallel.base import (
    Parallelism,
    ParallelPlan,
    Stage,
    Workload,
    one_chip_view,
    rebuilt,
    register_parallelism,
    ring_order,
)
from elk_dse.cost.collectives import Collective
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import Graph, Layer, Role
from elk_dse.program import Infeasible


def microbatches(batch: int, pp: int) -> int:
    """The largest divisor of ``batch`` that is at most ``pp``."""
    return max(m for m in range(1, min(batch, pp) + 1) if batch % m == 0)


@register_parallelism("pp")
class PipelineParallel(Parallelism):
    """Stages of consecutive layers (module docstring)."""

    def plan(self, work: Workload, system: Chip, degree: int) -> ParallelPlan | Infeasible:
        graph = work.graph
        m = microbatches(graph.batch, degree) if work.rebuild is not None else 1
        micro = work.at_batch(graph.batch // m)
        if micro is None or micro.num_op_instances != graph.num_op_instances:
            m, micro = 1, graph
        view = one_chip_view(system)
        units = [(li, rep) for li, layer in enumerate(micro.layers) for rep in range(layer.repeat)]
        if len(units) < degree:
            return Infeasible("parallelism", f"pp={degree} stages but {graph.name} has {len(units)} layer instances")
        cost = [_unit_s(micro.layers[li], view) for li, _ in units]
        cuts = _contiguous_cuts(cost, degree)
        order = ring_order(system)
        total_w = micro.weight_bytes or 1.0
        stages = []
        first = 0
        for s in range(degree):
            last = cuts[s]
            mine = units[first:last]
            runs: list[list[int]] = []  # [layer index, instances] of consecutive instances of one layer
            for li, _rep in mine:
                if runs and runs[-1][0] == li:
                    runs[-1][1] += 1
                else:
                    runs.append([li, 1])
            layers = [Layer(micro.layers[li].name, micro.layers[li].ops, count) for li, count in runs]
            ops_before = sum(len(micro.layers[li].ops) for li, _ in units[:first])
            n = sum(len(micro.layers[li].ops) for li, _ in mine)
            part = Graph(micro.name, micro.phase, tuple(layers), 0.0, micro.batch, micro.seq_len, micro.kv_len,
                         micro.meta)
            stored = micro.parameter_bytes * part.weight_bytes / total_w
            part = rebuilt(part, part.layers, stored)
            handoff = None
            if s + 1 < degree:
                out = layers[-1].ops[-1]
                handoff = Collective("send_recv", out.output_bytes, (order[s], order[s + 1]))
            stages.append(Stage(part, (order[s],), tuple(range(ops_before, ops_before + n)), (1.0,) * n,
                                handoff=handoff))
            first = last
        return ParallelPlan("pp", (("pp", degree),), view, system, tuple(stages), microbatches=m)


def _unit_s(layer: Layer, view: Chip) -> float:
    """Roofline seconds of one instance of ``layer`` on one chip (the stage balancer's weight)."""
    flops = sum(op.flops for op in layer.ops)
    hbm = sum(op.bytes_by_role(Role.WEIGHT) + op.bytes_by_role(Role.KV_CACHE) for op in layer.ops)
    bw = view.hbm_bytes_per_s or float("inf")
    return max(flops / view.peak_flops_per_s, hbm / bw, 1e-12)


def _contiguous_cuts(cost: list[float], parts: int) -> list[int]:
    """End indices of ``parts`` contiguous, non-empty groups of ``cost`` with the largest group sum as small as
    a greedy cut at the running share allows: group s ends where the prefix sum first reaches (s+1)/parts of
    the total, leaving at least one unit for each later group."""
    total = sum(cost)
    cuts, acc, i = [], 0.0, 0
    for s in range(parts - 1):
        target = total * (s + 1) / parts
        start = i
        while i < len(cost) - (parts - 1 - s) and (i == start or acc + cost[i] / 2 <= target):
            acc += cost[i]
            i += 1
        cuts.append(i)
    cuts.append(len(cost))
    return cuts
