"""Cross-operator memory traffic: which activations stay on chip between operators, and what crosses HBM.

Every producer -> consumers edge (one operator instance's output, read by later instances) is decided in one
place, as an exact whole-program analysis does it (papers.md §3):

- ``cross_op`` on (the default): the output stays on chip from its producer to its last consumer, so neither
  a store nor a load happens. Capacity forces a spill only where the activations live across an instance,
  plus that instance's own activation operands spread perfectly over all cores (a lower bound of any plan's
  footprint), exceed the SRAM per core: then the crossing edges whose next use is farthest are spilled
  first (Belady) until it fits. Layout operators (Transpose, Concat, Slice... from the ONNX importer; kind
  ``layout``) are ordinary on-chip operators: their re-layout is network traffic in their plan, never an HBM
  round trip unless this rule spills their input or output.
- ``cross_op`` off (the layer-at-a-time baseline): every edge round-trips through HBM.
- Either way: a multi-pass (streamed) operator reads its activation inputs from and writes its output to
  HBM (its plan counts that), so its producers must have written them and its consumers read them back; a
  KV-cache output is written by its plan; model inputs (activations nobody produced) start in HBM.

A spilled edge costs its bytes written once (counted at the producer) and read once by every consumer
after the spill point. The
model's final output (role ``output``) is handed to the host and not counted. On a chip without HBM
nothing can spill: everything stays on chip and ``cross_op`` has no effect.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from elk_dse.compiler.partition import PlanChoice
from elk_dse.ir.graph import Operator, Role
from elk_dse.program import OpWork

_ON_CHIP_ROLES = (Role.ACTIVATION, Role.OUTPUT)


@dataclass(frozen=True)
class Edge:
    """One producer's output and the later instances that read it (indices in execution order)."""

    producer: int
    consumers: tuple[int, ...]
    nbytes: float  # bytes of the produced tensor


@dataclass(frozen=True)
class Residency:
    """Where activations live between operators.

    ``live_bytes[i]``: bytes (whole chip) of on-chip activations produced before instance i and read after
    it (not its own operands: they are part of its plan); ``spilled``: producer index -> the first instance
    from which its output lives in HBM (consumers from there on read it back; earlier ones read it on chip);
    ``edges``: every edge, by producer index; ``policy``: ``on_chip`` (spills only where capacity forces them),
    ``relieved`` (also everything live across the given operators), ``all_spilled`` (cross_op off) or
    ``pinned`` (no HBM).
    """

    live_bytes: np.ndarray
    spilled: dict[int, int]
    edges: dict[int, Edge]
    policy: str = "on_chip"


def edges_of(ops: list[Operator]) -> dict[int, Edge]:
    """Producer -> consumers edges of the instances ``ops`` (names resolve to their latest producer)."""
    producer: dict[str, int] = {}
    consumers: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        for t in op.inputs:
            if t.role in _ON_CHIP_ROLES and t.name in producer:
                users = consumers.setdefault(producer[t.name], [])
                if not users or users[-1] != i:
                    users.append(i)
        if op.output.role in (*_ON_CHIP_ROLES, Role.KV_CACHE):
            producer[op.output.name] = i
    return {p: Edge(p, tuple(c), ops[p].output_bytes) for p, c in consumers.items()}


def _own_activation_bytes(op: Operator) -> float:
    # An output written in place (issue 17j) takes no room beside the input it overwrites.
    own_out = op.output.role in _ON_CHIP_ROLES and op.in_place_input < 0
    return sum(op.tensor_bytes(t) for t in op.inputs if t.role in _ON_CHIP_ROLES) + (
        op.output_bytes if own_out else 0.0)


def residency(ops: list[Operator], sram_bytes_per_core: float, num_cores: int, *, cross_op: bool = True,
              can_spill: bool = True, relieve: frozenset[int] = frozenset()) -> Residency:
    """Decide, per edge, on chip or spilled (see the module docstring); ``can_spill`` is False without HBM.

    ``relieve``: instances across which nothing but their own operands may stay (the compiler passes the
    operators that keeping activations squeezed into streamed plans, to compare the two).
    """
    n = len(ops)
    edges = edges_of(ops)
    if can_spill and not cross_op:
        return Residency(np.zeros(n), {p: p + 1 for p in edges}, edges, "all_spilled")
    live = np.zeros(n + 1)
    for e in edges.values():
        # Live strictly between producer and last consumer: both ends hold it as an operand of their plan,
        # and so does every consumer in between.
        live[e.producer + 1:e.consumers[-1]] += e.nbytes
        for c in e.consumers[:-1]:
            live[c] -= e.nbytes
    live = live[:n]
    spilled: dict[int, int] = {}
    if can_spill:
        sram = sram_bytes_per_core * num_cores
        for i in np.flatnonzero(live + np.array([_own_activation_bytes(op) for op in ops]) > sram):
            need = live[i] + _own_activation_bytes(ops[i]) - sram
            # Candidates: live across i and not one of i's operands (those are part of i's plan).
            crossing = [e for e in edges.values() if e.producer < i < e.consumers[-1]
                        and e.producer not in spilled and i not in e.consumers]
            # Farthest next use first: the spill that frees the space for longest.
            crossing.sort(key=lambda e: -min(c for c in e.consumers if c > i))
            for e in crossing:
                if need <= 0:
                    break
                spilled[e.producer] = int(i)  # on chip until i needs the room; read back from then on
                _unlive(live, e, int(i))
                need -= e.nbytes
        for at in sorted(relieve):
            for e in edges.values():
                if e.producer < at < e.consumers[-1] and e.producer not in spilled and at not in e.consumers:
                    spilled[e.producer] = at
                    _unlive(live, e, at)
    policy = "pinned" if not can_spill else ("relieved" if relieve else "on_chip")
    return Residency(np.maximum(live, 0.0), spilled, edges, policy)


def _unlive(live: np.ndarray, e: Edge, start: int) -> None:
    """Remove edge ``e`` from the live bytes from instance ``start`` on (its later consumers, which did not
    count it, read it back from HBM as an operand)."""
    live[start:e.consumers[-1]] -= e.nbytes
    for c in e.consumers[:-1]:
        if c >= start:
            live[c] += e.nbytes


def account(ops: list[Operator], choices: list[PlanChoice], res: Residency) -> list[OpWork]:
    """Each instance's work with the cross-operator HBM traffic added: spilled (or streamed-through) outputs
    written by their producer, read back by each single-pass consumer; model inputs read from HBM."""
    streamed = [c.plan.num_passes > 1 for c in choices]
    extra_read = np.zeros(len(ops))
    extra_write = np.zeros(len(ops))
    for p, e in res.edges.items():
        # Consumers from ``first`` on read it from HBM: all of them after a streamed producer (only HBM holds
        # its output), those after the eviction point of a spill. A streamed consumer reads it from HBM
        # itself (its plan counts that) while the on-chip copy serves the others.
        first = p + 1 if streamed[p] else res.spilled.get(p, len(ops))
        # Somebody must write it, unless the producer's plan does (streamed, or a KV-cache append).
        needed = first < len(ops) or any(streamed[c] for c in e.consumers)
        if needed and not streamed[p] and ops[p].output.role != Role.KV_CACHE:
            extra_write[p] += e.nbytes
        for c in e.consumers:
            if c >= first and not streamed[c]:  # a streamed consumer's plan reads it
                    extra_read[c] += sum(ops[c].tensor_bytes(t) for t in ops[c].inputs
                                         if t.role in _ON_CHIP_ROLES and t.name == ops[p].output.name)
    produced: set[str] = set()
    for i, op in enumerate(ops):
        # A model input (nothing produced it yet) starts in HBM; a streamed consumer's plan reads it.
        if not streamed[i]:
            extra_read[i] += sum(op.tensor_bytes(t) for t in op.inputs
                                 if t.role in _ON_CHIP_ROLES and t.name not in produced)
        produced.add(op.output.name)
    works = []
    for choice, r, w in zip(choices, extra_read, extra_write, strict=True):
        work = choice.work
        if r or w:
            work = replace(work, hbm_read_bytes=work.hbm_read_bytes + r, hbm_write_bytes=work.hbm_write_bytes + w,
                           hbm_delivered_bytes=work.hbm_delivered_bytes + r)
        works.append(work)
    return works

