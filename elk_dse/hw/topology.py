"""On-chip network topologies as graphs over a grid of cores, with figures derived from the graph.

A topology is a registry entry mapping a core grid to: hop distance between any cores (vectorized),
the undirected link list, the number of links crossing the minimum balanced cut (bisection), and the
cores on the grid boundary (where edge-attached HBM controllers sit). Nothing here knows bandwidths;
hw.chip multiplies by the link description.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property

import numpy as np

from elk_dse.registry import registrar

TOPOLOGIES: dict[str, type[Topology]] = {}
register_topology = registrar(TOPOLOGIES)




class Topology(ABC):
    """A network over ``prod(grid)`` cores numbered row-major over ``grid``."""

    name: str = ""

    def __init__(self, grid: tuple[int, ...]):
        self.grid = tuple(int(g) for g in grid)
        self.num_cores = int(np.prod(self.grid))

    def coords(self, cores: np.ndarray) -> np.ndarray:
        """Grid coordinates (n, len(grid)) of core ids."""
        return np.stack(np.unravel_index(np.asarray(cores), self.grid), axis=-1)

    @abstractmethod
    def hops(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Minimal hop count between core ids src and dst (broadcasting arrays)."""

    @abstractmethod
    def links(self) -> np.ndarray:
        """Undirected links as an (L, 2) array of core ids; each carries traffic both ways."""

    @abstractmethod
    def bisection_links(self) -> float:
        """Links crossing the minimum balanced cut of the cores (per direction)."""

    @abstractmethod
    def mean_hops(self) -> float:
        """Mean hop count over all ordered pairs of distinct cores."""

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

    @cached_property
    def diameter(self) -> int:
        """Largest hop count between any two cores."""
        return int(sum(self._axis_hops(axis).max() for axis in range(len(self.grid))))

    def _axis_hops(self, axis: int) -> np.ndarray:
        size = self.grid[axis]
        i = np.arange(size)
        return self._axis_distance(i[:, None], i[None, :], size)

    @staticmethod
    def _axis_distance(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
        return np.abs(a - b)


class _GridTopology(Topology):
    """Mesh-like graphs: hop distance is the sum of per-axis distances (dimension-ordered routing)."""

    wraps = False

    def _axis_distance(self, a, b, size):  # type: ignore[override]
        d = np.abs(a - b)
        return np.minimum(d, size - d) if self.wraps else d

    def hops(self, src, dst):
        cs, cd = self.coords(src), self.coords(dst)
        return sum(self._axis_distance(cs[..., k], cd[..., k], s) for k, s in enumerate(self.grid))

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
            total += self._axis_hops(axis).sum() * (n / size) ** 2
        return total / (n * (n - 1))


@register_topology("mesh")
class Mesh(_GridTopology):
    """2-D (or n-D) mesh: links between grid neighbours, no wrap-around."""


@register_topology("torus")
class Torus(_GridTopology):
    """Mesh with wrap-around links on every axis longer than 2."""

    wraps = True


@register_topology("ring")
class Ring(_GridTopology):
    """A bidirectional ring through the cores in id order (the grid is flattened)."""

    wraps = True

    def __init__(self, grid):
        super().__init__((int(np.prod(grid)),))


@register_topology("all_to_all")
class AllToAll(Topology):
    """A crossbar-like exchange (Graphcore IPU): every core reaches every other in one hop.

    Throughput is limited per core (injection/ejection), not per link; the link list is the core ports.
    """

    def hops(self, src, dst):
        return (np.asarray(src) != np.asarray(dst)).astype(np.int64)

    def links(self) -> np.ndarray:
        # One port per core into the exchange fabric: (core, core) self-pairs stand for the port.
        ids = np.arange(self.num_cores)
        return np.stack([ids, ids], axis=1)

    def bisection_links(self) -> float:
        # Half of the cores can each send through their own port across any balanced cut.
        return float(self.num_cores // 2)

    def mean_hops(self) -> float:
        return 1.0 if self.num_cores > 1 else 0.0

    @cached_property
    def diameter(self) -> int:
        return 1 if self.num_cores > 1 else 0
