"""The parallelism protocol: how a workload is spread over the chips of a system (issue 17).

A strategy (one module of this package, registered in ``PARALLELISMS``) takes a :class:`Workload` (the Graph,
and a way to rebuild it at another batch) and the system :class:`~elk_dse.hw.chip.Chip` and returns a
:class:`ParallelPlan` or an :class:`~elk_dse.program.Infeasible` with the reason:

- the **view**: the chip every stage is compiled for. Strategies that give each chip its own share of the
  work compile for one chip (its cores, its SRAM, its HBM: ``chips.count = 1``); ``all_core`` compiles for the
  whole system as one big chip (the compiler partitions every operator over all cores of all chips).
- the **stages**: the per-chip graph(s). Every chip of a stage runs the stage's graph (TP, EP and DP: one stage
  on all chips; PP: one stage per chip, in order). ``origin`` / ``share`` map every operator instance of a
  stage back to the workload's instance and say which fraction of its FLOPs one chip computes (1 =
  replicated): the conformance suite (elk_dse/testing/parallelism.py) checks the split against them.
- the **collectives** between the chips (``Collective`` records of elk_dse/cost/collectives.py), each placed
  after an operator instance of its stage; a stage's ``handoff`` sends its output to the next stage.
- how the stages **compose**: ``microbatches`` (PP): the batch runs in that many micro-batches through the
  pipeline; the latency of all of them is cost/pipeline.py's (one place, for every simulator).

The compiler (compile_parallel in __init__.py) compiles each stage's graph with the T10/Elk compiler on the
view, inserts the collectives as ProgramOps of kind ``collective`` and fills ``Program.system``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

from elk_dse.cost.collectives import Collective
from elk_dse.errors import ConfigError, nearest
from elk_dse.hw.chip import Chip, ChipLinkSpec
from elk_dse.ir.graph import Graph, Layer, Operator, Role
from elk_dse.program import Infeasible
from elk_dse.registry import registrar

PARALLELISMS: dict[str, type[Parallelism]] = {}
_register = registrar(PARALLELISMS)


def register_parallelism(name: str) -> Callable[[type[Parallelism]], type[Parallelism]]:
    """Class decorator: register a strategy as ``name`` (and let ``chips.parallelism`` accept the name)."""
    from elk_dse.hw import chip

    if name not in chip.PARALLELISMS:
        chip.PARALLELISMS.append(name)
    return _register(name)


@dataclass(frozen=True)
class Workload:
    """What is parallelised: the graph, and ``rebuild(batch)`` giving the same model at another batch (data
    parallelism and micro-batches need it; None when only a graph is known, e.g. an ONNX file)."""

    graph: Graph
    rebuild: Callable[[int], Graph] | None = None

    def at_batch(self, batch: int) -> Graph | None:
        if batch == self.graph.batch:
            return self.graph
        return self.rebuild(batch) if self.rebuild is not None else None


@dataclass(frozen=True)
class DeviceOp:
    """A local device operation a stack's code runs on every chip around a collective (issue 17t, second session),
    e.g. tt_transformers' ``to_memory_config`` and ``fast_reduce_nc`` around its Galaxy all-reduce (ccl.py
    ``tt_all_reduce``). ``noc_bytes``: the bytes it moves over one chip's on-chip network (read and written, both
    counted); it is charged as every operator is (cost/op_time.py: the stack's per-operator dispatch plus its
    network time). Compute it may do is not charged (a local sum of a few buffers: below a microsecond)."""

    name: str
    noc_bytes: float

    def __post_init__(self) -> None:
        if not self.name or not self.noc_bytes >= 0.0:
            raise ValueError(f"device op {self.name!r}: a name and noc_bytes >= 0 are required")


@dataclass(frozen=True)
class CollectivePoint:
    """A collective that runs after operator instance ``after`` of its stage (index in Graph.instances() order)
    and before the operators that consume that instance's output. ``payload``: ``output`` (it moves the
    operator's output, or with a fused reduce_scatter the outputs of the operators since the previous
    collective), ``stats`` (a small side payload the operator needs from the other chips, e.g. a distributed
    norm's per-token statistics, compiler/parallel/tp2d.py) or ``regather`` (issue 17t: an all_gather that gives
    every chip the operator's whole output back after a reduce_scatter left 1/n of it on each, as tt_transformers
    gathers its fractured residual stream before a norm). ``overlap``: the collective runs beside the
    operators after it instead of before them (fused into the next operator, as tt-metal's ``llama_rs_matmul``
    runs the FF1 reduce_scatter beside the FF3 matmul): the Program marks its op ``concurrent``
    (cost/timeline.py), so the step pays max(that compute, the collective) instead of their sum; its readers
    and the next collective still wait for it."""

    after: int
    collective: Collective
    payload: str = "output"
    overlap: bool = False
    # issue 17t (second session): the local device operations the software runs around this collective on every
    # chip (DeviceOp), in the order they run after it; each becomes its own ProgramOp (compile_parallel's assemble).
    device_ops: tuple[DeviceOp, ...] = ()


@dataclass(frozen=True)
class Stage:
    """What every chip in ``chips`` runs: ``graph`` (one chip's share), the collectives among them, and the
    ``handoff`` to the next stage (PP). ``origin[i]``: the workload instance that stage instance i comes from;
    ``share[i]``: the fraction of its FLOPs (per micro-batch: of the micro-batch graph's) each chip computes."""

    graph: Graph
    chips: tuple[int, ...]
    origin: tuple[int, ...]
    share: tuple[float, ...]
    collectives: tuple[CollectivePoint, ...] = ()
    handoff: Collective | None = None


@dataclass(frozen=True)
class ParallelPlan:
    """A strategy's answer for one workload on one system (see the module docstring)."""

    strategy: str
    degrees: tuple[tuple[str, int], ...]
    view: Chip
    system: Chip
    stages: tuple[Stage, ...]
    microbatches: int = 1
    note: str = ""

    @property
    def collectives(self) -> tuple[Collective, ...]:
        """Every collective of one pass of one micro-batch, in program order (handoffs included)."""
        out: list[Collective] = []
        for stage in self.stages:
            out += [p.collective for p in stage.collectives]
            if stage.handoff is not None:
                out.append(stage.handoff)
        return tuple(out)


class Parallelism(ABC):
    """Protocol: ``plan(workload, system, degree)`` -> ParallelPlan | Infeasible.

    ``degree``: the strategy's degree (= the system's chip count; strategies span all chips). A wrong
    configuration (an unknown name, a degree other than the chip count) is a ConfigError when the chip
    description loads (hw/chip.py); a choice that does not fit this workload (tp not dividing the heads, a
    training step, no experts) is an Infeasible with the reason, so sweeps and ``auto`` go on; so is a share that
    does not fit one chip's HBM, which the compiler reports when it compiles the stage.
    ``needs_rebuild``: it builds per-chip graphs at another batch (DP, EP, micro-batches). ``trains``: it
    plans a training step too; callers go through :func:`plan_workload`, which refuses a training step to the
    strategies that do not (their backward pass and gradient collectives are not modelled).
    """

    name: ClassVar[str] = ""
    needs_rebuild: ClassVar[bool] = False
    trains: ClassVar[bool] = False

    @abstractmethod
    def plan(self, work: Workload, system: Chip, degree: int) -> ParallelPlan | Infeasible:
        ...


def plan_workload(strategy: Parallelism, work: Workload, system: Chip, degree: int) -> ParallelPlan | Infeasible:
    """``strategy.plan``, or an Infeasible naming the strategy for a training step it does not model."""
    if work.graph.phase == "train" and not strategy.trains:
        return Infeasible("parallelism", f"{strategy.name} for a training step is not modelled (its backward pass "
                          "and gradient collectives): use all_core")
    return strategy.plan(work, system, degree)


def get_parallelism(name: str) -> Parallelism:
    if name not in PARALLELISMS:
        raise ConfigError("chip.chips.parallelism", name, "one of " + ", ".join(sorted(PARALLELISMS))
                          + nearest(name, PARALLELISMS))
    return PARALLELISMS[name]()


# ---- helpers the strategies share ------------------------------------------------------------------------

def one_chip_view(system: Chip) -> Chip:
    """One chip of the system as the compiler sees it when it compiles one chip's share: its cores, SRAM and
    HBM, no chip links (``chips.count = 1``); overheads, energy and everything else as the system's."""
    return replace(system, chips=ChipLinkSpec())


def ring_order(system: Chip) -> tuple[int, ...]:
    """The chips in an order whose neighbours are linked on the chips' graph where one exists: id order on a
    ring or all_to_all; on a 2-D mesh/torus with an even number of rows or columns a Hamiltonian cycle (first
    row forwards, the other rows snaking back over the columns after the first, home down the first column),
    so a ring collective's every step is one hop; otherwise id order."""
    n = system.num_chips
    grid = system.chips.grid
    if grid is None or len(grid) != 2 or system.chips.topology not in ("mesh", "torus"):
        return tuple(range(n))
    rows, cols = grid
    transpose = rows % 2 and not cols % 2
    if transpose:
        rows, cols = cols, rows
    if rows % 2 or rows < 2 or cols < 2:
        return tuple(range(n))

    def cid(r: int, c: int) -> int:
        return c * grid[1] + r if transpose else r * cols + c

    order = [cid(0, c) for c in range(cols)]
    for r in range(1, rows):
        cs = range(cols - 1, 0, -1) if r % 2 else range(1, cols)
        order += [cid(r, c) for c in cs]
    order += [cid(r, 0) for r in range(rows - 1, 0, -1)]
    return tuple(order)


def split_dims(op: Operator, factors: dict[str, int]) -> Operator:
    """``op`` with each dim in ``factors`` cut into that many parts (the busiest part: ceil); tensors indexed
    by a cut dim shrink with it (the IR derives their bytes from the dims)."""
    dims = tuple((d, -(-n // factors[d]) if d in factors else n) for d, n in op.dims)
    return replace(op, dims=dims)


def scale_weights(op: Operator, prefix: str, factor: float) -> Operator:
    """``op`` with the bytes per element of its weight tensors named ``prefix``... scaled by ``factor`` (the
    stacked experts' tensors fold the number of loaded experts into their bytes per element)."""
    inputs = tuple(replace(t, bytes_per_element=t.bytes_per_element * factor)
                   if t.role == Role.WEIGHT and t.name.startswith(prefix) else t for t in op.inputs)
    return replace(op, inputs=inputs)


def instance_layers(graph: Graph) -> list[tuple[int, int, Operator]]:
    """(layer index, position in the layer, operator) of every instance, in Graph.instances() order."""
    out = []
    for li, layer in enumerate(graph.layers):
        for _rep in range(layer.repeat):
            out += [(li, k, op) for k, op in enumerate(layer.ops)]
    return out


def rebuilt(graph: Graph, layers: tuple[Layer, ...], parameter_bytes: float, batch: int | None = None) -> Graph:
    """``graph`` with other layers and stored bytes (a chip's share), its facts otherwise unchanged."""
    return replace(graph, layers=layers, parameter_bytes=float(parameter_bytes),
                   batch=graph.batch if batch is None else batch)


def meta_int(graph: Graph, key: str) -> int:
    return int(dict(graph.meta).get(key, 0) or 0)  # type: ignore[call-overload]
