"""Collectives on the chips' graph: the standard algorithms and their alpha-beta cost. The one place it lives.

A :class:`Collective` is what a compiled operator asks the chips to do (all_reduce, reduce_scatter, all_gather,
all_to_all, send_recv, broadcast) over a group of chips. An *algorithm* turns it into a schedule: phases of
identical steps, each step a set of chip-to-chip flows (source and destination positions in the group, every
flow carrying the same fraction of ``bytes_per_chip``). :func:`collective_cost` routes one step of every phase
on the chips' topology (``Chip.chip_topology``: a ring of chips embedded in a 2x4 mesh uses the mesh links it
routes over) and prices it (docs/collectives.md):

    time = startup + sum over phases of  steps x (max_links(bytes on link / link bandwidth) + max route hops x
                                                  chips.link_latency_ns)

``startup`` is ``overheads.collective_startup_us`` (once per collective). Link bandwidth: ``chips.link_gb_s`` is
a chip's total per direction, shared by the links leaving it in proportion to their capacity (a chip of a ring
has two links of half each; a chip of a 2-chip ring one; a switch port carries the whole). So a unidirectional
ring uses half of a ring chip's bandwidth and a bidirectional ring all of it. The chips' output and input
ports (``link_gb_s`` each) are never the tighter limit, since a chip's links share exactly that total.

Algorithms are registered functions (``@register_algorithm("name")``): ``(kind, n, shape) -> Schedule | None``
(None: the algorithm does not do that kind or that group). ``auto`` picks the fastest applicable one for the
size, ties broken by registration order. The conformance check every registered algorithm passes is
``elk_dse.testing.collectives``. Both simulators time collectives through :func:`collective_cost` (the event
simulator replays the same phases as routed jobs on the chips' links, with contention).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from elk_dse.errors import ConfigError
from elk_dse.hw.chip import GB, Chip
from elk_dse.hw.resources import routed, routing_key
from elk_dse.hw.topology import Topology

KINDS = ("all_reduce", "reduce_scatter", "all_gather", "all_to_all", "send_recv", "broadcast")
PAIRWISE_MAX_CHIPS = 1024  # schedules with a flow per ordered pair of chips (direct, ring all_to_all): n(n-1) flows


@dataclass(frozen=True)
class Collective:
    """One collective over ``group`` (chip ids, in ring order; send_recv: (src, dst); broadcast: root first).

    ``bytes_per_chip``: all_reduce / broadcast: the buffer each chip holds; reduce_scatter: each chip's input;
    all_gather: each chip's output; all_to_all: what each chip sends in total; send_recv: what the sender sends.
    ``algorithm``: a registered algorithm name or ``auto`` (the fastest for this size on this system).
    ``replicas``: further groups, each as long as ``group`` and disjoint from it and each other, that run the
    same collective at the same time on their own buffers (2-D tensor parallelism reduces along every row of a
    mesh of chips at once, compiler/parallel/tp2d.py): their flows share the links with the group's, so the cost
    sees their contention and the link bytes count every group.
    """

    kind: str
    bytes_per_chip: float
    group: tuple[int, ...]
    algorithm: str = "auto"
    replicas: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError("collective.kind", self.kind, "one of " + ", ".join(KINDS))
        if not (self.bytes_per_chip >= 0 and math.isfinite(self.bytes_per_chip)):
            raise ConfigError("collective.bytes_per_chip", self.bytes_per_chip, "a finite number of bytes >= 0")
        if not self.group or len(set(self.group)) != len(self.group) or min(self.group) < 0:
            raise ConfigError("collective.group", self.group, "distinct chip ids >= 0, at least one")
        if self.kind == "send_recv" and len(self.group) != 2:
            raise ConfigError("collective.group", self.group, "send_recv takes (source, destination)")
        if self.algorithm != "auto" and self.algorithm not in ALGORITHMS:
            raise ConfigError("collective.algorithm", self.algorithm,
                              "auto or one of " + ", ".join(ALGORITHMS))
        if self.replicas:
            every = [i for g in (self.group, *self.replicas) for i in g]
            if any(len(g) != len(self.group) for g in self.replicas) or len(set(every)) != len(every) \
                    or min(every) < 0:
                raise ConfigError("collective.replicas", self.replicas,
                                  f"groups of {len(self.group)} distinct chip ids >= 0, disjoint from the group")

    @property
    def chips(self) -> tuple[int, ...]:
        """Every chip taking part: the group, then the replicas' groups."""
        return tuple(i for g in (self.group, *self.replicas) for i in g)


@dataclass(frozen=True)
class CollectiveCost:
    """What a collective costs on a system.

    ``algorithm``: the one used (``auto`` resolved); ``time_s``: startup + latency + bandwidth, seconds;
    ``link_bytes``: bytes summed over the chip-to-chip links they cross (a byte routed over 3 links counts 3);
    ``max_port_bytes``: the most bytes any chip's output or input port carries; ``steps``: communication rounds;
    ``bandwidth_s`` / ``latency_s`` / ``startup_s``: the parts of ``time_s``.
    """

    algorithm: str
    time_s: float
    link_bytes: float
    max_port_bytes: float
    steps: int
    bandwidth_s: float = 0.0
    latency_s: float = 0.0
    startup_s: float = 0.0


@dataclass(frozen=True)
class Phase:
    """``steps`` identical rounds; in each, flow k goes from group position ``src[k]`` to ``dst[k]`` carrying
    ``fraction`` x bytes_per_chip."""

    src: tuple[int, ...]
    dst: tuple[int, ...]
    fraction: float
    steps: int = 1


Schedule = tuple[Phase, ...]
Algorithm = Callable[[str, int, tuple[int, int]], Schedule | None]
ALGORITHMS: dict[str, Algorithm] = {}
# issue 17t: algorithms ``auto`` never picks: they model one software stack's own choice (named explicitly by the
# strategy that issues them under that stack), not a candidate for the fastest schedule.
EXPLICIT_ONLY: set[str] = set()


def register_algorithm(name: str, auto: bool = True) -> Callable[[Algorithm], Algorithm]:
    """Register ``fn(kind, n, shape) -> Schedule | None`` under ``name`` (shape: the group as rows x cols).
    ``auto=False``: only used when a Collective names it (``auto`` skips it)."""

    def deco(fn: Algorithm) -> Algorithm:
        ALGORITHMS[name] = fn
        if not auto:
            EXPLICIT_ONLY.add(name)
        return fn

    return deco


# ---- the algorithms --------------------------------------------------------------------------------------
def _shift(n: int, by: int, members: np.ndarray | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Flows from every member to the member ``by`` places later (members: positions; default all n)."""
    m = np.arange(n) if members is None else np.asarray(members)
    return tuple(m.tolist()), tuple(np.roll(m, -by).tolist())


@register_algorithm("ring")
def ring(kind: str, n: int, shape: tuple[int, int]) -> Schedule | None:
    """Ring in group order (Patarasuk & Yuan 2009): reduce_scatter and all_gather are n-1 steps in which every
    chip sends 1/n of the buffer to its successor; all_reduce is both (2(n-1) steps, 2(n-1)/n of the buffer sent
    per chip). all_to_all: n-1 pairwise shifts, step k sends the piece for the chip k places on (1/n each)."""
    if n < 2:
        return None
    s, d = _shift(n, 1)
    if kind in ("reduce_scatter", "all_gather"):
        return (Phase(s, d, 1.0 / n, n - 1),)
    if kind == "all_reduce":
        return (Phase(s, d, 1.0 / n, 2 * (n - 1)),)
    if kind == "all_to_all" and n <= PAIRWISE_MAX_CHIPS:
        return tuple(Phase(*_shift(n, k), 1.0 / n, 1) for k in range(1, n))
    return None


@register_algorithm("bidir_ring")
def bidir_ring(kind: str, n: int, shape: tuple[int, int]) -> Schedule | None:
    """Two rings in opposite directions, each on half of the buffer: the same steps as ``ring``, every chip
    sending 1/(2n) of the buffer to each neighbour per step (both of a ring chip's links busy)."""
    if n < 3 or kind not in ("reduce_scatter", "all_gather", "all_reduce"):
        return None
    s, fwd = _shift(n, 1)
    _, bwd = _shift(n, -1)
    steps = 2 * (n - 1) if kind == "all_reduce" else n - 1
    return (Phase(s + s, fwd + bwd, 0.5 / n, steps),)


@register_algorithm("line")
def line(kind: str, n: int, shape: tuple[int, int]) -> Schedule | None:
    """A line (a chain without the wrap-around link) in group order, both directions at once: what tt-metal's
    ``line_reduce_scatter`` / ``line_all_gather`` / ``line_all_reduce`` run along one axis of a mesh of chips
    (models/demos/llama3_70b_galaxy/tt/llama_ccl.py; ccl Topology.Linear). reduce_scatter and all_gather: n-1
    steps, in each every chip passes 1/n of the buffer to each neighbour it has (a piece travels one hop per
    step, so the farthest chip is reached after n-1); all_reduce: both (2(n-1) steps). On a ring or a torus
    axis ``ring``/``bidir_ring`` use the wrap link as well; on a mesh axis their wrap edge crosses n-1 links."""
    if n < 2 or kind not in ("reduce_scatter", "all_gather", "all_reduce"):
        return None
    right = tuple(range(n - 1))
    left = tuple(range(1, n))
    steps = 2 * (n - 1) if kind == "all_reduce" else n - 1
    return (Phase(right + left, left + right, 1.0 / n, steps),)


@register_algorithm("line_gather", auto=False)
def line_gather(kind: str, n: int, shape: tuple[int, int]) -> Schedule | None:
    """all_reduce as tt-metal's tt_transformers runs it on a 2-D mesh of chips (issue 17t): an all_gather of every
    chip's whole partial buffer along a line (``ttnn.experimental.all_gather_async``, Topology.Linear), then a
    local sum on each chip (``ttnn.experimental.fast_reduce_nc``): models/tt_transformers/tt/ccl.py
    ``tt_all_reduce``, the ``not use_composite`` branch (docs/parallelism.md). n-1 steps, in each every chip
    passes one whole buffer to each neighbour it has; each chip receives (n-1) buffers (a ring all_reduce:
    2(n-1)/n of one). Not an ``auto`` candidate: fewer steps than ``line`` for tiny buffers, but it is this one
    stack's choice."""
    if n < 2 or kind != "all_reduce":
        return None
    right = tuple(range(n - 1))
    left = tuple(range(1, n))
    return (Phase(right + left, left + right, 1.0, n - 1),)


@register_algorithm("ring_2d")
def ring_2d(kind: str, n: int, shape: tuple[int, int]) -> Schedule | None:
    """Rings along the rows, then along the columns of the group laid out rows x cols (row-major): all_reduce =
    reduce_scatter on the rows (c-1 steps of 1/c), reduce_scatter on the columns (r-1 steps of 1/n), then the
    all_gathers in reverse; each chip sends 2(c-1)/c + 2(r-1)/n of the buffer in 2(r-1) + 2(c-1) steps."""
    r, c = shape
    if r < 2 or c < 2 or kind not in ("reduce_scatter", "all_gather", "all_reduce"):
        return None
    grid = np.arange(n).reshape(r, c)
    row = _concat_shifts([grid[i] for i in range(r)])
    col = _concat_shifts([grid[:, j] for j in range(c)])
    rs = (Phase(*row, 1.0 / c, c - 1), Phase(*col, 1.0 / n, r - 1))
    ag = (Phase(*col, 1.0 / n, r - 1), Phase(*row, 1.0 / c, c - 1))
    if kind == "reduce_scatter":
        return rs
    if kind == "all_gather":
        return ag
    return rs + ag


def _concat_shifts(rings: list[np.ndarray]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    src: list[int] = []
    dst: list[int] = []
    for m in rings:
        s, d = _shift(len(m), 1, m)
        src.extend(s)
        dst.extend(d)
    return tuple(src), tuple(dst)


@register_algorithm("tree")
def tree(kind: str, n: int, shape: tuple[int, int]) -> Schedule | None:
    """Binomial tree rooted at group position 0 (good for small buffers: ceil(log2 n) steps each way).
    all_reduce: reduce (round k: positions with bit k set and lower bits clear send the whole buffer to the
    position with bit k cleared), then broadcast (the rounds in reverse); broadcast: the second half alone."""
    if n < 2 or kind not in ("all_reduce", "broadcast"):
        return None
    rounds = math.ceil(math.log2(n))
    reduce_phases = []
    for k in range(rounds):
        senders = [p for p in range(n) if p % (2 << k) == (1 << k)]
        reduce_phases.append(Phase(tuple(senders), tuple(p - (1 << k) for p in senders), 1.0, 1))
    bcast = tuple(Phase(ph.dst, ph.src, 1.0, 1) for ph in reversed(reduce_phases))
    return bcast if kind == "broadcast" else (*reduce_phases, *bcast)


@register_algorithm("direct")
def direct(kind: str, n: int, shape: tuple[int, int]) -> Schedule | None:
    """Every transfer at once, each on its own route (a switch: one hop between any two chips).
    reduce_scatter / all_gather / all_to_all: one step, every chip sends 1/n of the buffer to every other;
    all_reduce: both (2 steps); broadcast: the root sends the buffer to every other chip; send_recv: one flow."""
    if n < 2:
        return None
    if kind == "send_recv":
        return (Phase((0,), (1,), 1.0, 1),)
    if n > PAIRWISE_MAX_CHIPS:
        return None
    if kind == "broadcast":
        return (Phase((0,) * (n - 1), tuple(range(1, n)), 1.0, 1),)
    src = np.repeat(np.arange(n), n - 1)
    dst = (src + np.tile(np.arange(1, n), n)) % n
    every = Phase(tuple(src.tolist()), tuple(dst.tolist()), 1.0 / n, 1)
    if kind in ("reduce_scatter", "all_gather", "all_to_all"):
        return (every,)
    if kind == "all_reduce":
        return (every, every)
    return None


# ---- cost ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Routed:
    """Per byte of bytes_per_chip, per step of each phase: the load on every loaded directed chip link / its
    bandwidth-share (max), hops, link bytes, port bytes."""

    link_s_per_byte: tuple[float, ...]  # per phase: max over links of load / link bandwidth, for 1 byte (s/byte)
    hops: tuple[int, ...]  # per phase: the longest route of a step
    link_bytes: float  # per byte of bytes_per_chip, whole schedule
    max_port_bytes: float  # per byte of bytes_per_chip: busiest output or input port over the whole collective
    phase_steps: tuple[int, ...]  # per phase: its steps

    @property
    def steps(self) -> int:
        return sum(self.phase_steps)


def link_table(topology: Topology) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source node, destination node, share of the source chip's bandwidth) of every directed link of the
    chips' graph. A port fabric (links listed as self-pairs, e.g. all_to_all) has one output and one input port
    per chip, each the chip's whole bandwidth; destination -1 marks an input port (its node is the source)."""
    links = topology.links()
    nl = topology.num_directed_links
    src = np.full(nl, -1, dtype=np.int64)
    dst = np.full(nl, -1, dtype=np.int64)
    share = np.ones(nl)
    if links.size and np.all(links[:, 0] == links[:, 1]):  # a port fabric: output ports, then input ports
        n = topology.num_cores
        src[:n] = np.arange(n)
        src[n:] = np.arange(n)
        return src, dst, share
    a = np.concatenate([links[:, 0], links[:, 1]])
    b = np.concatenate([links[:, 1], links[:, 0]])
    t, r = topology.route(a, b)
    src[r], dst[r] = a[t], b[t]
    cap = topology.link_capacity()
    out_cap = np.bincount(src[src >= 0], weights=cap[src >= 0], minlength=topology.num_nodes)
    share = np.where(src >= 0, cap / np.where(src >= 0, out_cap[np.maximum(src, 0)], 1.0), 1.0)
    return src, dst, share


def _route_schedule(system: Chip, group: tuple[int, ...], schedule: Schedule) -> _Routed:
    topo = system.chip_topology
    src_node, dst_node, share = link_table(topo)
    ports = np.zeros(2 * topo.num_nodes)  # output port, input port per chip, whole collective
    per_s: list[float] = []
    hops: list[int] = []
    link_bytes = 0.0
    g = np.asarray(group, dtype=np.int64)
    for ph in schedule:
        s, d = g[np.asarray(ph.src, dtype=np.int64)], g[np.asarray(ph.dst, dtype=np.int64)]
        loads = topo.link_loads(s, d, ph.fraction)
        per_s.append(float((loads / share).max()) if loads.size else 0.0)
        hops.append(int(topo.hops(s, d).max()) if s.size else 0)
        fabric = dst_node < 0
        link_bytes += ph.steps * float(loads[~fabric].sum() + loads[fabric].sum() / 2)
        used = src_node >= 0
        wire = used & ~fabric
        out = np.bincount(src_node[wire], weights=loads[wire], minlength=topo.num_nodes).astype(np.float64)
        inn = np.bincount(dst_node[wire], weights=loads[wire], minlength=topo.num_nodes).astype(np.float64)
        if fabric.any():  # port fabric: the first half of the ports are outputs, the second inputs
            half = topo.num_cores
            out += np.bincount(src_node[:half], weights=loads[:half], minlength=topo.num_nodes)
            inn += np.bincount(src_node[half:], weights=loads[half:], minlength=topo.num_nodes)
        ports += ph.steps * np.concatenate([out, inn])
    return _Routed(tuple(per_s), tuple(hops), link_bytes, float(ports.max()) if ports.size else 0.0,
                   tuple(ph.steps for ph in schedule))


def group_shape(system: Chip, group: tuple[int, ...]) -> tuple[int, int]:
    """The group as rows x cols for 2-D algorithms: the chips' grid when the group is every chip in id order
    on a 2-D grid, else the most square factorization of its size (rows <= cols; 1 x n for a prime)."""
    n = len(group)
    grid = system.chips.grid
    if grid is not None and len(grid) == 2 and n == system.num_chips and group == tuple(range(n)):
        return int(grid[0]), int(grid[1])
    r = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return r, n // r


def grid_ring(grid: tuple[int, ...]) -> tuple[int, ...] | None:
    """A Hamiltonian cycle of a 2-D grid of chips (ids row-major) when one exists (a side of even length, both
    sides >= 2): row 0 left to right, then the other rows snaking over columns 1.., back up column 0. Every
    ring edge is one grid link. None otherwise."""
    if len(grid) != 2:
        return None
    r, c = int(grid[0]), int(grid[1])
    if r < 2 or c < 2 or (r % 2 and c % 2):
        return None
    if r % 2:  # make the row count even by walking the transpose
        cyc = grid_ring((c, r))
        return None if cyc is None else tuple((i % r) * c + i // r for i in cyc)
    order = list(range(c))
    for i in range(1, r):
        cols = range(c - 1, 0, -1) if i % 2 else range(1, c)
        order.extend(i * c + j for j in cols)
    order.extend(i * c for i in range(r - 1, 0, -1))
    return tuple(order)


ORDER_FREE = ("all_reduce", "reduce_scatter", "all_gather")  # any ring order gives every chip its result


def members(system: Chip, c: Collective, name: str) -> tuple[int, ...]:
    """The chips at the schedule's group positions. A ring algorithm for a kind whose result does not depend on
    the ring order, over every chip of a 2-D grid of chips, walks a Hamiltonian cycle of the grid
    (:func:`grid_ring`) when its edges cross fewer links on the chips' topology than id order does (on a 2x4
    mesh id order's 3 -> 4 edge crosses 4 links; on a ring of chips id order is already the ring); else the
    group as given."""
    if c.replicas:
        return c.chips
    grid = system.chips.grid
    if name not in ("ring", "bidir_ring") or c.kind not in ORDER_FREE or grid is None:
        return c.group
    if sorted(c.group) != list(range(system.num_chips)):
        return c.group
    cyc = grid_ring(grid)
    if cyc is None:
        return c.group
    topo = system.chip_topology

    def ring_hops(order: tuple[int, ...]) -> int:
        a = np.asarray(order, dtype=np.int64)
        return int(topo.hops(a, np.roll(a, -1)).sum())

    return cyc if ring_hops(cyc) < ring_hops(c.group) else c.group


def _schedule(c: Collective, name: str, shape: tuple[int, int]) -> Schedule | None:
    """The algorithm's schedule over the group; with replicas, every phase repeated on each replica's positions
    (members() lists the group, then the replicas)."""
    sched = ALGORITHMS[name](c.kind, len(c.group), shape)
    if sched is None or not c.replicas:
        return sched
    n, k = len(c.group), 1 + len(c.replicas)
    return tuple(Phase(tuple(p + r * n for r in range(k) for p in ph.src),
                       tuple(p + r * n for r in range(k) for p in ph.dst), ph.fraction, ph.steps) for ph in sched)


def _routed(system: Chip, c: Collective, name: str, shape: tuple[int, int]) -> _Routed | None:
    key = (*routing_key(system), "collective", c.kind, name, c.group, c.replicas, shape)

    def compute() -> _Routed | None:
        sched = _schedule(c, name, shape)
        return None if sched is None else _route_schedule(system, members(system, c, name), sched)

    value = routed(key, lambda: compute() or False)  # False: cached "not applicable"
    return value or None


def collective_cost(c: Collective, system: Chip) -> CollectiveCost:
    """Cost of ``c`` on ``system`` (the whole system of chips): the named algorithm, or for ``auto`` the
    fastest applicable one (ties: registration order). ConfigError if the group names a chip the system lacks
    or the named algorithm does not do this kind."""
    n = len(c.group)
    if max(c.chips) >= system.num_chips:
        raise ConfigError("collective.group", c.group, f"chip ids in [0, {system.num_chips - 1}]")
    if n < 2 or c.bytes_per_chip <= 0:
        return CollectiveCost(c.algorithm if c.algorithm != "auto" else "none", 0.0, 0.0, 0.0, 0)
    shape = group_shape(system, c.group)
    names = [k for k in ALGORITHMS if k not in EXPLICIT_ONLY] if c.algorithm == "auto" else [c.algorithm]
    best: CollectiveCost | None = None
    for name in names:
        r = _routed(system, c, name, shape)
        if r is None:
            continue
        cost = _price(system, c, name, r)
        if best is None or cost.time_s < best.time_s:
            best = cost
    if best is None:
        raise ConfigError("collective.algorithm", c.algorithm, f"it does not do {c.kind} on {n} chips; "
                          "use auto or one of " + ", ".join(
                              k for k in ALGORITHMS if _routed(system, c, k, shape) is not None))
    return best


def _price(system: Chip, c: Collective, name: str, r: _Routed) -> CollectiveCost:
    bw = system.chips.link_gb_s * GB
    b = c.bytes_per_chip
    steps = r.phase_steps
    bandwidth_s = sum(k * s * b / bw for k, s in zip(steps, r.link_s_per_byte, strict=True))
    latency_s = sum(k * h for k, h in zip(steps, r.hops, strict=True)) * system.chips.link_latency_ns * 1e-9
    startup_s = system.overheads.collective_startup_s
    return CollectiveCost(name, startup_s + latency_s + bandwidth_s, r.link_bytes * b, r.max_port_bytes * b,
                          r.steps, bandwidth_s, latency_s, startup_s)


def collective_schedule(c: Collective, system: Chip, algorithm: str) -> tuple[Schedule, tuple[int, ...]]:
    """The phases of ``c`` under ``algorithm`` (a resolved name) on ``system`` and the chips at their group
    positions (for the event simulator and the conformance checks)."""
    sched = _schedule(c, algorithm, group_shape(system, c.group))
    if sched is None:
        raise ValueError(f"algorithm {algorithm} does not do {c.kind} on {len(c.group)} chips")
    return sched, members(system, c, algorithm)


def collectives_time_s(collectives, system: Chip) -> float:
    """Seconds of an operator's collectives, run one after the other."""
    return float(sum(collective_cost(c, system).time_s for c in collectives))


def collectives_link_bytes(collectives, system: Chip) -> float:
    """Bytes an operator's collectives put on the chip-to-chip links (summed over the links they cross)."""
    return float(sum(collective_cost(c, system).link_bytes for c in collectives))
