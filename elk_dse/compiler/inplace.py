"""In-place outputs: an operator may write its output over an input activation that dies with it (issue 17j).

A buffer-assignment rule every deployed compiler applies to elementwise-like operators: when an input
activation is indexed exactly as the output (``Operator.can_overwrite``: same axes, at least as wide per
element, no reduction dims) and no later operator reads it, the output can take that input's buffer, element
by element (or row by row: a norm or softmax reads its row before writing it). tt-metal's encoder demos
request it explicitly (``ttnn.transformer.attention_softmax_``, the in-place attention softmax, and
``LayerNormShardedMultiCoreProgramConfig(inplace=True)``; docs/core_models.md, issue 17j); XLA's buffer
assignment shares an operand's buffer with an elementwise user of the same shape when the operand is not live
after it (``HloDataflowAnalysis::CanShareOperandBufferWithUser``, hlo_dataflow_analysis.cc @002b42c1).

Without it every such operator's plan held its output block beside its input block, so an operator whose
activations fill most of SRAM (BERT-large's attention softmax at batch 8 from sequence 448 on a Wormhole
n150) needed twice the room it needs, fell back to a multi-pass plan through DRAM, and the predicted time
jumped (x2.0 for x1.17 the tokens; docs/core_models.md).

The decision is the compiler's: whether the input's last use is this operator depends on the whole program
(the instances in execution order), not on the operator. It is made here once per compile, per (layer,
position) operator: every repetition of it must agree, else the operator keeps its separate output.
"""

from __future__ import annotations

from dataclasses import replace

from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import Graph, Operator


def dying_inputs(ops: list[Operator]) -> list[frozenset[str]]:
    """Per instance (execution order), the names of its inputs that no later instance reads before a new
    producer of that name (or the instance itself) overwrites them: their last use is this instance."""
    alive: set[str] = set()  # names read later, as the value live at this point of the walk
    out: list[frozenset[str]] = [frozenset()] * len(ops)
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        produced = op.output.name
        alive.discard(produced)  # reads after i see i's output, not the value i's inputs hold
        out[i] = frozenset(t.name for t in op.inputs if t.name not in alive)
        alive.update(t.name for t in op.inputs)
    return out


def in_place_choice(op: Operator, dying: frozenset[str]) -> str:
    """The input ``op`` writes its output over (the first that qualifies and dies here), or ""."""
    for t in op.inputs:
        if t.name in dying and op.can_overwrite(t):
            return t.name
    return ""


def in_place_graph(graph: Graph, chip: Chip) -> Graph:
    """``graph`` with ``Operator.in_place`` set wherever an output can overwrite a dying input in every
    repetition of its layer. Unchanged under the Elk artifact's planning rules (``conventions=paper``: its
    memory accounting is kept as it was reconciled, docs/elk_reconciliation.md)."""
    if chip.plan_rules == "artifact":
        return graph
    keys = [(li, k) for li, layer in enumerate(graph.layers) for _ in range(layer.repeat) for k in range(len(layer.ops))]
    ops = [op for _, _, op in graph.instances()]
    choice: dict[tuple[int, int], str | None] = {}
    for key, op, dying in zip(keys, ops, dying_inputs(ops), strict=True):
        name = in_place_choice(op, dying)
        choice[key] = name if choice.get(key, name) == name else None  # repetitions disagree: none
    if not any(choice.values()):
        return graph
    layers = []
    for li, layer in enumerate(graph.layers):
        new_ops = tuple(replace(op, in_place=choice[(li, k)] or "") if choice[(li, k)] and op.in_place != choice[(li, k)]
                        else op for k, op in enumerate(layer.ops))
        layers.append(layer if all(a is b for a, b in zip(new_ops, layer.ops, strict=True))
                      else replace(layer, ops=new_ops))
    return replace(graph, layers=tuple(layers))
