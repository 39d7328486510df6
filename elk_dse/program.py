"""The compiled artifact: what runs where, what it moves, and what waits for what.

The compiler produces a :class:`Program`; simulators read only this (and the chip description). Resource
demands (cycles, bytes per resource class, barriers) are recorded per operator instance; times are the
simulators' business, computed from the shared formulas in ``elk_dse.cost``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from elk_dse.cost.collectives import Collective, collectives_link_bytes
from elk_dse.hw.chip import Chip


@dataclass(frozen=True)
class Plan:
    """How one operator is distributed over the cores.

    ``spatial``: cores each dim is split over (dims not listed: 1). ``rotation``: (tensor, dim, factor) for
    every input that T10-style rotates instead of being replicated: each core of its ring holds 1/factor of its
    block along ``dim`` and the pieces shift around the ring. ``steps``: compute-shift steps; ``inner_dim``:
    innermost stepped dim of the loop nest. ``passes``: when even that does not fit, the sequential blocks each
    output dim is cut into, with the operator's tensors streaming through HBM. ``padding``: executed points /
    true points. ``sram_bytes_per_core``: peak footprint on one core.
    """

    spatial: tuple[tuple[str, int], ...]
    cores_used: int
    sram_bytes_per_core: int
    passes: tuple[tuple[str, int], ...] = ()
    rotation: tuple[tuple[str, str, int], ...] = ()
    steps: int = 1
    inner_dim: str = ""
    padding: float = 1.0

    @property
    def num_passes(self) -> int:
        """Sequential blocks the operator runs in (1 = everything at once)."""
        n = 1
        for _, p in self.passes:
            n *= p
        return n

    def to_dict(self) -> dict[str, Any]:
        return {
            "spatial": dict(self.spatial),
            "rotation": {t: {"dim": d, "factor": f} for t, d, f in self.rotation},
            "steps": self.steps,
            "inner_dim": self.inner_dim,
            "cores_used": self.cores_used,
            "sram_bytes_per_core": self.sram_bytes_per_core,
            "passes": dict(self.passes),
            "padding": self.padding,
        }


@dataclass(frozen=True)
class OpWork:
    """Resource demands of one operator instance.

    compute_cycles: the busiest core's cycles, all steps and passes. steps: compute-shift steps; shift_*:
    bytes rotated in total, by the busiest core, times hops, across chips, and on the busiest link; overlap: whether the core runs
    compute beside the shifts (from the chip description). warm_*: replica copies made before execution from
    an aligned idle layout (total, busiest core, x hops, across chips). noc_bytes: core-to-core bytes (redistribution,
    reductions); noc_max_core_bytes: the most any one core sends or receives; chip_link_bytes: part of the
    core-to-core traffic that crosses chips. hbm_read_bytes / hbm_write_bytes cross the HBM interface;
    hbm_delivered_bytes: bytes ejected at cores from HBM, multicast copies included. barriers: chip-wide syncs.
    rings: the transfers behind shift_* and warm_* as (kind "shift" | "warm", core-id stride between ring
    neighbours, ring length, bytes each core sends), for simulators that route them core by core.
    collectives: chip-to-chip collectives the operator runs after its compute (cost/collectives.py), one after
    the other; timed by ``collective_cost`` on the Program's system in both simulators.
    stream_passes: a multi-pass (streamed) plan whose HBM traffic is double-buffered over this many passes:
    the load phase moves the first pass's share (1 / stream_passes of the bytes), the rest streams during
    execution, each pass's transfer overlapping the previous pass's compute (cost/op_time.py). 1: the whole
    load precedes execution.
    """

    compute_cycles: float
    steps: int = 1
    shift_bytes: float = 0.0
    shift_core_bytes: float = 0.0
    shift_link_bytes: float = 0.0
    shift_cross_bytes: float = 0.0
    shift_maxlink_bytes: float = 0.0
    overlap: bool = False
    warm_bytes: float = 0.0
    warm_core_bytes: float = 0.0
    warm_link_bytes: float = 0.0
    warm_cross_bytes: float = 0.0
    warm_maxlink_bytes: float = 0.0
    noc_bytes: float = 0.0
    noc_max_core_bytes: float = 0.0
    chip_link_bytes: float = 0.0
    hbm_read_bytes: float = 0.0
    hbm_write_bytes: float = 0.0
    hbm_delivered_bytes: float = 0.0
    barriers: int = 0
    rings: tuple[tuple[str, int, int, float], ...] = ()
    collectives: tuple[Collective, ...] = ()
    stream_passes: int = 1
    # issue 17c (sixth session): the operation runs only chip-to-chip collectives (compile_parallel's collective
    # ops): its fixed charge is the stack's ``overheads.ccl_dispatch_s``, not the per-operator dispatch
    # (cost/network.op_sync_time_s).
    collective_op: bool = False

    @property
    def hbm_bytes(self) -> float:
        return self.hbm_read_bytes + self.hbm_write_bytes


_WORK_FIELDS = fields(OpWork)


@dataclass(frozen=True)
class ProgramOp:
    """One operator instance in execution order, with its plan, work and dependencies.

    Its HBM load (if any) starts after the execution of every op in ``load_after`` has ended (and after the
    loads before it in the Program's load order); its execution starts after its own load and after the
    execution of every op in ``exec_after``. ``sram_exec_bytes`` / ``sram_preload_bytes``: the per-core SRAM
    split while it runs (its active layout / idle layouts of operators preloaded meanwhile). ``concurrent``: it
    runs beside the operators after it, which wait for its start but not its end (a collective fused with or
    overlapped by the next operator's compute, e.g. tt-metal's ``llama_rs_matmul``; cost/timeline.py); the
    operators that need its result, and the next collective on the chips' links, list it in ``exec_after``.
    """

    index: int
    name: str
    kind: str
    layer: str
    repetition: int
    dims: tuple[tuple[str, int], ...]
    flops: float
    weight_bytes: float
    kv_cache_bytes: float
    plan: Plan
    work: OpWork
    load_after: tuple[int, ...] = ()
    exec_after: tuple[int, ...] = ()
    sram_exec_bytes: float = 0.0
    sram_preload_bytes: float = 0.0
    concurrent: bool = False


@dataclass(frozen=True)
class Program:
    """A workload compiled for a chip by a scheduler.

    ``system``: the whole system of chips when ``chip`` is one chip's view the ops were compiled for (tensor or
    pipeline parallelism compiles each operator for one chip); None means ``chip`` is the system. Collectives
    are timed on ``system or chip``.
    """

    chip: Chip
    model: str
    phase: str
    scheduler: str
    ops: tuple[ProgramOp, ...]
    parameter_bytes: float
    batch: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    load_order: tuple[int, ...] = ()
    system: Chip | None = None

    @property
    def whole_system(self) -> Chip:
        """The system the collectives run on: ``system``, or ``chip`` when that is the system."""
        return self.system if self.system is not None else self.chip

    @property
    def flops(self) -> float:
        return float(sum(op.flops for op in self.ops))

    @property
    def hbm_bytes(self) -> float:
        return float(sum(op.work.hbm_bytes for op in self.ops))

    @property
    def noc_bytes(self) -> float:
        """On-chip bytes: core-to-core traffic plus HBM data delivered over the network."""
        return float(sum(op.work.noc_bytes + op.work.shift_bytes + op.work.warm_bytes + op.work.hbm_delivered_bytes
                         for op in self.ops))

    @property
    def chip_link_bytes(self) -> float:
        """Bytes crossing chip-to-chip links: the operators' cross-chip traffic plus their collectives' link
        bytes (summed over the links they cross)."""
        system = self.whole_system
        return float(sum(op.work.chip_link_bytes + op.work.shift_cross_bytes + op.work.warm_cross_bytes
                         + (collectives_link_bytes(op.work.collectives, system) if op.work.collectives else 0.0)
                         for op in self.ops))

    @property
    def weight_bytes(self) -> float:
        return float(sum(op.weight_bytes for op in self.ops))

    @property
    def kv_cache_bytes(self) -> float:
        return float(sum(op.kv_cache_bytes for op in self.ops))

    def check(self) -> None:
        """Verify the Program's invariants (dependencies point backwards, non-negative work, SRAM split within
        SRAM, load order a permutation); raise :class:`ProgramInvariantError` naming the first bad op.

        A broken invariant is a compiler bug, not bad input: the CLI reports it as an internal error (exit 1).
        """
        if sorted(self.load_order) != list(range(len(self.ops))):
            raise ProgramInvariantError("load order is not a permutation of the ops")
        sram = self.chip.sram_bytes_per_core
        cores = self.chip.num_cores
        for op in self.ops:
            where = f"op {op.index} {op.name}"
            if op.sram_exec_bytes + op.sram_preload_bytes > sram * (1 + 1e-9):
                raise ProgramInvariantError(
                    f"{where}: SRAM split {op.sram_exec_bytes} + {op.sram_preload_bytes} B exceeds {sram} B/core")
            for dep in (*op.load_after, *op.exec_after):
                if not 0 <= dep < op.index:
                    raise ProgramInvariantError(f"{where}: dependency {dep} is not an earlier op")
            bad = {f.name: v for f in _WORK_FIELDS if isinstance(v := getattr(op.work, f.name), int | float)
                   and not isinstance(v, bool) and v < 0}
            if bad:
                raise ProgramInvariantError(f"{where}: negative work {bad}")
            if op.plan.sram_bytes_per_core > sram:
                raise ProgramInvariantError(
                    f"{where}: plan uses {op.plan.sram_bytes_per_core} B/core > {sram} B/core of SRAM")
            if not 1 <= op.plan.cores_used <= cores:
                raise ProgramInvariantError(f"{where}: plan uses {op.plan.cores_used} cores; the chip has {cores}")


class ProgramInvariantError(RuntimeError):
    """A compiled :class:`Program` breaks one of its invariants (a compiler bug, never a user's input)."""


@dataclass(frozen=True)
class Infeasible:
    """A design point on which the workload cannot run, with a machine-readable reason and a sentence.

    reason codes: ``sram_capacity`` (an operator's smallest plan does not fit), ``hbm_capacity`` (weights and
    KV cache exceed HBM, or exceed on-chip SRAM on a chip without HBM), ``no_plan``.
    """

    reason: str
    detail: str
