"""Expert parallelism for mixture-of-experts models: the experts spread over the chips, the rest data-parallel.

Each chip owns E/ep experts and runs attention and every other non-expert operator on its 1/ep of the batch
(the model rebuilt at batch / ep, weights of those operators replicated). Before the experts an all_to_all
dispatches every token-expert pair to the chip owning its expert; after them a second all_to_all combines the
outputs back to the token's chip. With tokens routed uniformly, each chip computes 1/ep of all pairs (the
per-chip graph's pair count is exactly that) and loads the experts of its own that any of the step's T tokens
chose, (E/ep) x (1 - (1 - k/E)^T) expected -- 1/ep of the whole step's loaded experts, folded into the
stacked expert tensors' bytes per element as models/transformer.py does. Each all_to_all's buffer is a chip's pairs'
activations, (ep - 1)/ep of which go to other chips. Needs ep dividing the batch and the experts.
"""

from __future__ import annotations

from dataclasses import replace

from elk_dse.compiler.parallel.base import (
    CollectivePoint,
    Parallelism,
    ParallelPlan,
    Stage,
    Workload,
    instance_layers,
    meta_int,
    one_chip_view,
    rebuilt,
    register_parallelism,
    ring_order,
)
from elk_dse.cost.collectives import Collective
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import Operator, Role
from elk_dse.models.transformer import expected_experts
from elk_dse.program import Infeasible

DISPATCH_BEFORE = "expert_gate_proj"  # the first expert operator: tokens must be at their experts' chips
COMBINE_AFTER = "expert_down_proj"  # the last one: outputs go back to the tokens' chips


@register_parallelism("ep")
class ExpertParallel(Parallelism):
    """Experts over chips with all_to_all dispatch and combine (module docstring)."""

    needs_rebuild = True

    def plan(self, work: Workload, system: Chip, degree: int) -> ParallelPlan | Infeasible:
        graph = work.graph
        experts, top_k = meta_int(graph, "experts"), meta_int(graph, "top_k")
        if not experts:
            return Infeasible("parallelism", f"ep needs a mixture-of-experts model; {graph.name} has no experts")
        if experts % degree:
            return Infeasible("parallelism", f"ep={degree} does not divide the {experts} experts")
        if graph.batch % degree:
            return Infeasible("parallelism", f"ep={degree} does not divide the batch of {graph.batch}")
        part = work.at_batch(graph.batch // degree)
        if part is None or part.num_op_instances != graph.num_op_instances:
            return Infeasible("parallelism", "ep needs the model rebuilt at batch / ep (this workload is a fixed "
                              "graph)")
        full_ops = {op.name: op for layer in graph.layers for op in layer.ops}
        layers = tuple(replace(layer, ops=tuple(_own_experts(op, full_ops.get(op.name), degree)
                                                for op in layer.ops)) for layer in part.layers)
        group = ring_order(system)
        points: list[CollectivePoint] = []
        instances = instance_layers(replace(part, layers=layers))
        for i, (_li, _k, op) in enumerate(instances):
            nxt = instances[i + 1][2] if i + 1 < len(instances) else None
            if degree > 1 and nxt is not None and nxt.name == DISPATCH_BEFORE:
                # bytes_per_chip of an all_to_all: the chip's whole buffer, 1/ep of which stays on the chip
                points.append(CollectivePoint(i, Collective("all_to_all", _pair_bytes(nxt), group)))
            if degree > 1 and op.name == COMBINE_AFTER:
                points.append(CollectivePoint(i, Collective("all_to_all", op.output_bytes, group)))
        stored = _stored_bytes(graph, experts, top_k, degree)
        n = len(instances)
        chip_graph = rebuilt(part, layers, stored)
        return ParallelPlan("ep", (("ep", degree),), one_chip_view(system), system,
                            (Stage(chip_graph, tuple(range(system.num_chips)), tuple(range(n)),
                                   (1.0 / degree,) * n, tuple(points)),))


def _own_experts(op: Operator, full: Operator | None, ep: int) -> Operator:
    """An expert operator of the per-chip graph with the stacked expert tensors holding this chip's expected
    loaded experts: the full batch's loaded experts / ep (the per-chip graph's own count is for batch / ep
    tokens over all E experts)."""
    if full is None or not op.name.startswith("expert_") or op.kind != "matmul":
        return op
    inputs = []
    for t, ft in zip(op.inputs, full.inputs, strict=True):
        if t.role == Role.WEIGHT and t.name.startswith("experts."):
            t = replace(t, bytes_per_element=ft.bytes_per_element / ep)
        inputs.append(t)
    return replace(op, inputs=tuple(inputs))


def _pair_bytes(op: Operator) -> float:
    """Activation bytes of the token-expert pairs entering expert operator ``op``."""
    return sum(op.tensor_bytes(t) for t in op.inputs if t.role == Role.ACTIVATION)


def _stored_bytes(graph, experts: int, top_k: int, ep: int) -> float:
    """One chip's stored bytes: everything but the expert tables replicated, the tables' 1/ep."""
    tables = 0.0
    for layer in graph.layers:
        for op in layer.ops:
            for t in op.inputs:
                if t.role == Role.WEIGHT and t.name.startswith("experts."):
                    tokens = max(dict(op.dims).get("t", 1) // max(top_k, 1), 1)
                    tables += op.tensor_bytes(t) * layer.repeat * experts / expected_experts(experts, top_k, tokens)
    return graph.parameter_bytes - tables * (1 - 1 / ep)


