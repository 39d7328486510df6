"""Network topologies: the protocol every network of cores (on chip) or of chips implements, and the registry.

A topology owns its graph and its routing: nodes (cores first, ids ``0 .. num_cores-1``, then any switch
nodes), directed links (ids ``0 .. num_directed_links-1``, each with a capacity relative to the interconnect's
reference link), hop counts, the route every flow takes, and the per-link loads of a set of flows. The cost
models and both simulators read only this protocol; no topology name is special-cased outside its own class.
Regular topologies keep closed forms (hop counts, mean hops, bisection) and route vectorized (difference
arrays over the grid lines: O(flows + links), no loop per hop), which is what makes 10^6-core wafers cheap.
Bandwidths are not known here: hw.chip multiplies the relative capacities by the link description.

A new topology is one module: subclass :class:`Topology`, decorate it with ``@register_topology("name")``
and import it from ``elk_dse.hw.topologies`` (the conformance suite ``elk_dse.testing.topology`` picks it up).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import ClassVar

import numpy as np

from elk_dse.registry import registrar

TOPOLOGIES: dict[str, type[Topology]] = {}
register_topology = registrar(TOPOLOGIES)


class Topology(ABC):
    """A network over ``prod(grid)`` cores numbered row-major over ``grid``.

    ``tie``: which way a flow goes round a wrapping axis when both ways are equally short: ``"sign"`` (on-chip
    networks: the sign of the coordinate difference) or ``"forward"`` (networks of chips: always forward).
    ``path``: the file a topology described by a file reads (``interconnect.graph``); unused by regular ones.
    """

    name: ClassVar[str] = ""
    needs_grid: bool = False  # the config must give the cores' (or chips') grid
    needs_file: bool = False  # the config must name a graph file (interconnect.graph)
    symmetric: bool = True  # every node sees the same network: uniform traffic loads every port alike
    io_bypasses_network: bool = True  # a core's own HBM port reaches it without crossing the network

    def __init__(self, grid: tuple[int, ...], tie: str = "sign", path: str = ""):
        self.grid = tuple(int(g) for g in grid)
        self.num_cores = int(np.prod(self.grid))
        if tie not in ("sign", "forward"):
            raise ValueError(f"tie={tie!r}: 'sign' or 'forward'")
        self.tie = tie
        self.path = path

    @classmethod
    def examples(cls) -> list[tuple[tuple[int, ...], str]]:
        """Small instances (grid, file) the conformance suite (elk_dse.testing.topology) checks."""
        return [((4, 4), ""), ((3, 5), "")]

    # ---- identity ------------------------------------------------------------------------------------
    @property
    def key(self) -> tuple:
        """What routes depend on (for caches): class, grid and tie-break (graph files add their content)."""
        return (self.name, self.grid, self.tie)

    @property
    def num_nodes(self) -> int:
        """Cores plus switch nodes (cores are ``0 .. num_cores-1``)."""
        return self.num_cores

    def coords(self, cores: np.ndarray) -> np.ndarray:
        """Grid coordinates (n, len(grid)) of core ids."""
        return np.stack(np.unravel_index(np.asarray(cores), self.grid), axis=-1)

    def check_cores(self, count: int) -> None:
        """ConfigError unless the file has ``count`` cores (``cores.count`` of the chip). Only a topology read
        from a file (``needs_file``) implements it; a regular one is built from the grid."""
        raise NotImplementedError(f"topology {self.name} is not read from a file")

    # ---- the graph ---------------------------------------------------------------------------------
    @abstractmethod
    def links(self) -> np.ndarray:
        """Undirected links as an (L, 2) array of node ids (a port fabric lists (core, core) self-pairs)."""

    @property
    @abstractmethod
    def num_directed_links(self) -> int:
        """Directed link resources of one network (link ids ``0 .. num_directed_links-1``)."""

    def link_capacity(self) -> np.ndarray:
        """Capacity of each directed link relative to the reference link (``interconnect.link_bytes_per_cycle``)."""
        return np.ones(self.num_directed_links)

    def directed_link_capacity(self) -> float:
        """Aggregate directed link capacity, in reference links (the network roof)."""
        return 2.0 * len(self.links())

    def core_ports(self) -> float:
        """Reference links' worth of ports through which one core sends (and receives) at the same time."""
        return 2.0 * len(self.grid)

    def out_ports(self) -> np.ndarray:
        """Per node: reference links' worth of links leaving it (where injected data can enter the network)."""
        return np.bincount(self.links().ravel(), minlength=self.num_nodes).astype(np.float64)

    def phys_per_node(self) -> float:
        """Mean link endpoints (PHYs) per node: what a chip-to-chip network costs in area per die."""
        return 2.0 * len(self.links()) / self.num_nodes

    def cut_capacity(self, inside: np.ndarray) -> float:
        """Reference links' worth of links (one direction) between the cores in ``inside`` (a bool mask over
        cores) and every other node."""
        mask = np.zeros(self.num_nodes, dtype=bool)
        mask[: inside.size] = inside
        links = self.links()
        return float(np.count_nonzero(mask[links[:, 0]] != mask[links[:, 1]]))

    def local_port_links(self, cores: np.ndarray) -> np.ndarray:
        """Links data from a core's own HBM port crosses to reach that core (none unless the fabric is ports)."""
        return np.zeros(0, dtype=np.int64)

    # ---- distances -----------------------------------------------------------------------------------
    @abstractmethod
    def hops(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Minimal hop count between node ids src and dst (broadcasting arrays)."""

    @abstractmethod
    def bisection_links(self) -> float:
        """Reference links crossing the minimum balanced cut of the cores (per direction)."""

    @abstractmethod
    def mean_hops(self) -> float:
        """Mean hop count over all ordered pairs of distinct cores."""

    @cached_property
    def diameter(self) -> int:
        """Largest hop count between any two cores."""
        return int(sum(self._axis_hop_stats(axis)[1] for axis in range(len(self.grid))))

    def nearest_hops(self, sources: np.ndarray) -> np.ndarray:
        """Per core: hops from the nearest of ``sources`` (core ids). Default: the hop function, in chunks of
        1,024 cores so that the (cores x sources) matrix stays bounded."""
        sources = np.asarray(sources, dtype=np.int64)
        cores = np.arange(self.num_cores)
        best = np.empty(cores.size, dtype=np.int64)
        for lo in range(0, cores.size, 1024):
            block = cores[lo : lo + 1024]
            best[lo : lo + block.size] = self.hops(block[:, None], sources[None, :]).min(axis=1)
        return best

    def diameter_latency_cycles(self, hop_latency_cycles: float) -> float:
        """Pipeline latency of the longest route, cycles (every link: ``hop_latency_cycles``)."""
        return self.diameter * hop_latency_cycles

    def boundary_cores(self) -> np.ndarray:
        """Core ids on the outer boundary of the grid (for edge-attached HBM), around the perimeter."""
        ids = np.arange(self.num_cores)
        c = self.coords(ids)
        on_edge = np.zeros(self.num_cores, dtype=bool)
        for axis, size in enumerate(self.grid):
            if size > 1:
                on_edge |= (c[:, axis] == 0) | (c[:, axis] == size - 1)
        if len(self.grid) == 1 or all(g == 1 for g in self.grid):
            on_edge[:] = True
        edge = ids[on_edge]
        if len(self.grid) == 2 and edge.size > 1:
            # Order around the perimeter, so that evenly spaced picks spread over every side of the die.
            rc = c[on_edge].astype(np.float64)
            centre = (np.array(self.grid, dtype=np.float64) - 1) / 2
            angle = np.arctan2(rc[:, 0] - centre[0], rc[:, 1] - centre[1])
            edge = edge[np.lexsort((edge, angle))]
        return edge

    def _axis_hops(self, axis: int) -> np.ndarray:
        size = self.grid[axis]
        i = np.arange(size)
        return self._axis_distance(i[:, None], i[None, :], size)

    def _axis_hop_stats(self, axis: int) -> tuple[float, int]:
        """(sum over ordered pairs, maximum) of the hop distance along one axis. From the distance matrix here
        (O(size^2) memory); translation-invariant grids override it with closed forms, so a ring of 65,536
        chips does not need a 32 GiB matrix."""
        hops = self._axis_hops(axis)
        return float(hops.sum()), int(hops.max())

    def _axis_distance(self, a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
        return np.abs(a - b)

    # ---- routing -------------------------------------------------------------------------------------
    @abstractmethod
    def node_hops(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The route of every flow src -> dst as node-to-node hops, in order: (flow index, from, to)."""

    def route(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow index, directed link id) of every link each flow src -> dst crosses (hop by hop)."""
        t, a, b = self.node_hops(src, dst)
        return t, self.link_index(a, b)

    @abstractmethod
    def link_index(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Directed link id of the link from node a to its neighbour b."""

    def link_loads(self, src: np.ndarray, dst: np.ndarray, weight=1.0) -> np.ndarray:
        """Load on every directed link (length ``num_directed_links``) when each flow src -> dst carries
        ``weight`` (scalar or per flow). Default: summed over :meth:`route`; regular topologies vectorize."""
        src = np.asarray(src, dtype=np.int64)
        t, r = self.route(src, np.asarray(dst, dtype=np.int64))
        if np.ndim(weight) == 0:
            return np.bincount(r, minlength=self.num_directed_links).astype(np.float64) * float(weight)
        w = np.broadcast_to(np.asarray(weight, dtype=np.float64), src.shape)
        return np.bincount(r, weights=w[t], minlength=self.num_directed_links)

    def busiest_link_share(self, src: np.ndarray, dst: np.ndarray, weight=1.0) -> float:
        """Largest load / relative capacity over the links (in bytes per reference-link byte)."""
        loads = self.link_loads(src, dst, weight)
        return float((loads / self.link_capacity()).max()) if loads.size else 0.0

    # ---- the traffic patterns of the cost models: busiest link per byte -----------------------------
    def ring_shift_share(self, stride: int, length: int, cores: int) -> float:
        """Bytes on the busiest link per byte each core sends when cores ``[0, cores)`` all shift to their
        ring neighbour, rings of ``length`` cores ``stride`` apart (compute-shift plans)."""
        if length < 2 or cores < 2:
            return 0.0
        from elk_dse.hw.patterns import ring_shift_flows

        return self.busiest_link_share(*ring_shift_flows(stride, length, cores, self.num_cores))

    def delivery_share(self, sources: np.ndarray) -> float:
        """Bytes on the busiest link per byte delivered when every entry of ``sources`` (HBM channels' attach
        cores; repeats count) sends equally to every core. One source at a time: bounded memory."""
        from elk_dse.hw.patterns import delivery_flows

        sources = np.asarray(sources, dtype=np.int64)
        dst = np.arange(self.num_cores)
        counts = np.zeros(self.num_directed_links)
        uniq, repeats = np.unique(sources, return_counts=True)
        for a, k in zip(uniq.tolist(), repeats.tolist(), strict=True):
            counts += k * self.link_loads(*delivery_flows(np.array([a]), dst), 1.0)  # integer flow counts
        if not counts.size or not sources.size:
            return 0.0
        return float((counts / self.link_capacity()).max() * (1.0 / (sources.size * dst.size)))

    def uniform_share(self) -> float:
        """Bytes on the busiest link per byte of uniform traffic (every ordered pair of distinct cores alike).
        Default: from the routes, one source at a time."""
        n = self.num_cores
        if n < 2:
            return 0.0
        counts = np.zeros(self.num_directed_links)
        dst = np.arange(n)
        for a in range(n):
            counts += self.link_loads(np.full(n, a), dst, 1.0)
        return float((counts / self.link_capacity()).max() / (n * (n - 1)))


class _GridTopology(Topology):
    """Mesh-like graphs: hop distance is the sum of per-axis distances (dimension-ordered routing: axis 0 first;
    on a wrapping axis the shorter way round)."""

    wraps = False
    needs_grid = True

    def _axis_distance(self, a, b, size):  # type: ignore[override]
        d = np.abs(a - b)
        return np.minimum(d, size - d) if self.wraps else d

    def _axis_hop_stats(self, axis: int) -> tuple[float, int]:
        # Closed forms of _axis_distance summed over ordered pairs: a line of n nodes sum |i-j| = n(n^2-1)/3;
        # a ring: every node sees sum_d min(d, n-d) = floor(n^2/4). Checked against the matrix in tests.
        n = self.grid[axis]
        if self.wraps:
            return float(n * (n * n // 4)), n // 2
        return float(n * (n * n - 1) // 3), n - 1

    def _wrapping(self, size: int) -> bool:
        """Whether this axis has a wrap-around link (on chip only axes longer than 2; the chips' ring of 2
        chips goes both ways over the same neighbour)."""
        return self.wraps and size > 2

    def _signed_steps(self, delta: np.ndarray, size: int) -> np.ndarray:
        """Signed steps along one axis for a coordinate difference ``delta`` (the shorter way when wrapping)."""
        if not self._wrapping(size):
            return delta
        if self.tie == "forward":
            fwd = delta % size
            return np.where(fwd <= size - fwd, fwd, fwd - size)
        delta = np.where(delta > size // 2, delta - size, delta)
        return np.where(delta < -(size // 2), delta + size, delta)

    def hops(self, src, dst):
        cs, cd = self.coords(src), self.coords(dst)
        return sum(self._axis_distance(cs[..., k], cd[..., k], s) for k, s in enumerate(self.grid))

    def nearest_hops(self, sources: np.ndarray) -> np.ndarray:
        """Multi-source breadth-first search over the link graph (scipy's csgraph, O(links)): the grid's hops
        are its shortest paths (the conformance suite checks it), so this equals the hop function's minimum."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import dijkstra

        sources = np.unique(np.asarray(sources, dtype=np.int64))
        if sources.size == 0:
            raise ValueError("nearest_hops needs at least one source")
        links = self.links()
        n = self.num_cores
        graph = csr_matrix((np.ones(links.shape[0]), (links[:, 0], links[:, 1])), shape=(n, n))
        dist = dijkstra(graph, directed=False, indices=sources, unweighted=True, min_only=True)
        return np.rint(dist).astype(np.int64)

    def links(self) -> np.ndarray:
        ids = np.arange(self.num_cores).reshape(self.grid)
        out = []
        for axis, size in enumerate(self.grid):
            if size < 2:
                continue
            a = np.moveaxis(ids, axis, 0)
            out.append(np.stack([a[:-1].ravel(), a[1:].ravel()], axis=1))
            if self.wraps and size > 2:
                out.append(np.stack([a[-1].ravel(), a[0].ravel()], axis=1))
        return np.concatenate(out) if out else np.zeros((0, 2), dtype=int)

    def bisection_links(self) -> float:
        # Cut the longest axis in half; count the links of the graph that cross the cut.
        if self.num_cores < 2:
            return 0.0
        axis = int(np.argmax(self.grid))
        half = self.grid[axis] // 2
        links = self.links()
        side = self.coords(links)[..., axis] < half
        return float(np.count_nonzero(side[:, 0] != side[:, 1]))

    def mean_hops(self) -> float:
        n = self.num_cores
        if n < 2:
            return 0.0
        # Sum over ordered pairs of per-axis distances, exact, from the per-axis distance matrices.
        total = 0.0
        for axis, size in enumerate(self.grid):
            total += self._axis_hop_stats(axis)[0] * (n / size) ** 2
        return total / (n * (n - 1))

    # ---- directed links: (node, axis, direction +1/-1) ------------------------------------------------
    @cached_property
    def _link_table(self) -> tuple[np.ndarray, int]:
        """link id of (node, axis, direction 0:+1 / 1:-1), -1 where there is no link; and the link count.
        Numbered per axis, per direction, nodes in row-major order of the axis-first view."""
        ids = np.arange(self.num_cores).reshape(self.grid)
        table = np.full((self.num_cores, len(self.grid), 2), -1, dtype=np.int64)
        count = 0
        for axis, size in enumerate(self.grid):
            if size < 2:
                continue
            for direction in (0, 1):
                src = np.moveaxis(ids, axis, 0)
                valid = np.ones(src.shape, dtype=bool)
                if not (self.wraps and size > 2):
                    valid[-1 if direction == 0 else 0] = False
                s = src[valid]  # row-major order of the axis-first view
                table[s, axis, direction] = count + np.arange(s.size)
                count += s.size
        return table, count

    @property
    def num_directed_links(self) -> int:
        return self._link_table[1]

    def link_index(self, a, b):
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        ca, cb = self.coords(a), self.coords(b)
        diff = cb - ca
        axis = np.argmax(diff != 0, axis=-1) if diff.size else np.zeros(0, dtype=np.int64)
        d = np.take_along_axis(diff, axis[:, None], axis=1)[:, 0] if diff.size else np.zeros(0, dtype=np.int64)
        size = np.asarray(self.grid)[axis]
        forward = (d == 1) | ((d == -(size - 1)) & (size > 2) & self.wraps)
        lid = self._link_table[0][a, axis, np.where(forward, 0, 1)]
        if np.any(lid < 0):
            raise ValueError("link_index: nodes are not neighbours")
        return lid

    def node_hops(self, src, dst):
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        idx = np.arange(src.size)
        cur = self.coords(src).reshape(src.size, len(self.grid)).copy()
        goal = self.coords(dst).reshape(src.size, len(self.grid))
        out_t, out_a, out_b = [], [], []
        for axis, size in enumerate(self.grid):
            steps = self._signed_steps(goal[:, axis] - cur[:, axis], size)
            n, step = np.abs(steps), np.where(steps >= 0, 1, -1)
            for k in range(int(n.max()) if n.size else 0):
                moving = n > k
                here = np.ravel_multi_index(tuple(cur[moving].T), self.grid)
                cur[moving, axis] = (cur[moving, axis] + step[moving]) % size
                out_t.append(idx[moving])
                out_a.append(here)
                out_b.append(np.ravel_multi_index(tuple(cur[moving].T), self.grid))
        if not out_t:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z
        return np.concatenate(out_t), np.concatenate(out_a), np.concatenate(out_b)

    def route(self, src, dst):
        # Direction is known per axis: look links up directly (a ring of two has one link per direction).
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        idx = np.arange(src.size)
        cur = self.coords(src).reshape(src.size, len(self.grid)).copy()
        goal = self.coords(dst).reshape(src.size, len(self.grid))
        table = self._link_table[0]
        out_t, out_r = [], []
        for axis, size in enumerate(self.grid):
            steps = self._signed_steps(goal[:, axis] - cur[:, axis], size)
            n, step = np.abs(steps), np.where(steps >= 0, 1, -1)
            direction = np.where(steps >= 0, 0, 1)
            for k in range(int(n.max()) if n.size else 0):
                moving = n > k
                here = np.ravel_multi_index(tuple(cur[moving].T), self.grid)
                out_t.append(idx[moving])
                out_r.append(table[here, axis, direction[moving]])
                cur[moving, axis] = (cur[moving, axis] + step[moving]) % size
        if not out_t:
            z = np.zeros(0, dtype=np.int64)
            return z, z
        return np.concatenate(out_t), np.concatenate(out_r)

    def link_loads(self, src, dst, weight=1.0):
        """Vectorized dimension-ordered routing: each flow is one segment per axis; segments are added to
        difference arrays over the grid's lines (unrolled to twice the axis length so that wrapping segments
        stay contiguous), prefix-summed and folded. O(flows + links) time and memory. A scalar weight sums
        integer flow counts (exact) and scales once."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        scalar = np.ndim(weight) == 0
        w = None if scalar else np.broadcast_to(np.asarray(weight, dtype=np.float64).ravel(), src.shape)
        count = self.num_directed_links
        out = np.zeros(count)
        if src.size == 0 or count == 0:
            return out
        n = self.num_cores
        cur = self.coords(src).reshape(src.size, len(self.grid)).copy()
        goal = self.coords(dst).reshape(src.size, len(self.grid))
        offset = 0
        for axis, size in enumerate(self.grid):
            if size < 2:
                continue
            wrap_links = self.wraps and size > 2
            per_dir = n if wrap_links else n // size * (size - 1)
            steps = self._signed_steps(goal[:, axis] - cur[:, axis], size)
            others = [g for k, g in enumerate(self.grid) if k != axis]
            n_lines = int(np.prod(others)) if others else 1
            if np.any(steps):
                rest = tuple(cur[:, k] for k in range(len(self.grid)) if k != axis)
                line = np.ravel_multi_index(rest, others) if others else np.zeros(src.size, dtype=np.int64)
                width = 2 * size + 1
                pos = cur[:, axis]
                for direction in (0, 1):
                    sel = steps > 0 if direction == 0 else steps < 0
                    if not np.any(sel):
                        continue
                    a, d, base = pos[sel], np.abs(steps[sel]), line[sel] * width
                    if direction == 0:  # links leaving nodes a .. a+d-1 forward
                        lo, hi = base + a, base + a + d
                    else:  # links leaving nodes a, a-1, .. a-d+1 backward, shifted up by size
                        lo, hi = base + a + size - d + 1, base + a + size + 1
                    cells = n_lines * width
                    if scalar:
                        diff = np.bincount(lo, minlength=cells) - np.bincount(hi, minlength=cells)
                    else:
                        ws = w[sel]
                        diff = np.bincount(lo, weights=ws, minlength=cells) - np.bincount(hi, weights=ws,
                                                                                          minlength=cells)
                    acc = np.cumsum(diff.reshape(n_lines, width), axis=1)
                    load = acc[:, :size] + acc[:, size : 2 * size]  # (line, position) on this axis
                    # Link ids of this (axis, direction) block run over the axis-first view, row-major.
                    block = np.moveaxis(load.reshape(*others, size), -1, 0)
                    if not wrap_links:
                        block = block[:-1] if direction == 0 else block[1:]
                    lo_id = offset + direction * per_dir
                    out[lo_id : lo_id + per_dir] += block.ravel()
            cur[:, axis] = goal[:, axis]
            offset += 2 * per_dir
        return out * float(weight) if scalar else out


@register_topology("mesh")
class Mesh(_GridTopology):
    """2-D (or n-D) mesh: links between grid neighbours, no wrap-around."""

    symmetric = False  # middle nodes carry through-traffic

    def uniform_share(self) -> float:
        """Closed form: on axis k (length s) the link from position i to i+1 carries the flows whose axis-k
        segment crosses it, (i+1)(s-1-i) x n/s of the n(n-1) pairs (sources behind it on this axis, anywhere
        on the axes routed before; destinations beyond it, anywhere on the axes routed after); the middle
        link is the busiest."""
        n = self.num_cores
        if n < 2:
            return 0.0
        busiest = max((s // 2) * (s - s // 2) * (n // s) for s in self.grid)
        return busiest / (n * (n - 1))


@register_topology("torus")
class Torus(_GridTopology):
    """Mesh with wrap-around links on every axis longer than 2."""

    wraps = True


@register_topology("ring")
class Ring(_GridTopology):
    """A bidirectional ring through the cores in id order (the grid is flattened)."""

    wraps = True
    needs_grid = False

    def __init__(self, grid, tie: str = "sign", path: str = ""):
        super().__init__((int(np.prod(grid)),), tie, path)

    @classmethod
    def examples(cls):
        return [((6,), ""), ((5,), "")]

    def phys_per_node(self) -> float:
        return 2.0  # a ring of two still has a PHY towards each side


@register_topology("all_to_all")
class AllToAll(Topology):
    """A crossbar-like exchange (Graphcore IPU): every core reaches every other in one hop.

    Throughput is limited per core (injection/ejection), not per link: the directed "links" are the core ports,
    injection ports ``0 .. n-1`` and ejection ports ``n .. 2n-1``; a flow uses its source's injection port
    and its destination's ejection port. The link list is (core, core) self-pairs, one per port.
    """

    io_bypasses_network = False  # on the IPU the exchange port stays the way in, even for local HBM

    @classmethod
    def examples(cls):
        return [((8,), "")]

    def hops(self, src, dst):
        return (np.asarray(src) != np.asarray(dst)).astype(np.int64)

    def links(self) -> np.ndarray:
        ids = np.arange(self.num_cores)
        return np.stack([ids, ids], axis=1)

    @property
    def num_directed_links(self) -> int:
        return 2 * self.num_cores

    def directed_link_capacity(self) -> float:
        return float(self.num_cores)

    def core_ports(self) -> float:
        return 1.0

    def out_ports(self) -> np.ndarray:
        return np.ones(self.num_cores)

    def phys_per_node(self) -> float:
        return float(self.num_cores - 1)

    def cut_capacity(self, inside: np.ndarray) -> float:
        return 0.0  # no links between cores: only ports

    def local_port_links(self, cores: np.ndarray) -> np.ndarray:
        return self.num_cores + np.asarray(cores, dtype=np.int64)  # the ejection port

    def uniform_share(self) -> float:
        """Closed form: every core's injection port carries its n-1 of the n(n-1) flows."""
        return 1.0 / self.num_cores if self.num_cores > 1 else 0.0

    def bisection_links(self) -> float:
        # Half of the cores can each send through their own port across any balanced cut.
        return float(self.num_cores // 2)

    def mean_hops(self) -> float:
        return 1.0 if self.num_cores > 1 else 0.0

    @cached_property
    def diameter(self) -> int:
        return 1 if self.num_cores > 1 else 0

    def node_hops(self, src, dst):
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        t = np.flatnonzero(src != dst)
        return t, src[t], dst[t]

    def link_index(self, a, b):
        raise ValueError("all_to_all has ports, not links: use route()")

    def route(self, src, dst):
        t, a, b = self.node_hops(src, dst)
        return np.concatenate([t, t]), np.concatenate([a, self.num_cores + b])


def make_topology(name: str, grid: tuple[int, ...], tie: str = "sign", path: str = "") -> Topology:
    """The registered topology ``name`` over ``grid`` (``path``: its file, for topologies read from one)."""
    return TOPOLOGIES[name](grid, tie=tie, path=path)


# Topologies in their own modules (elk_dse/hw/topologies/*.py) register themselves on import.
import elk_dse.hw.topologies  # noqa: E402, F401
