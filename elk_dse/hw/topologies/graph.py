"""``topology: graph``: any network, read from a YAML or JSON file named by ``interconnect.graph``.

The file (docs/topologies.md)::

    nodes:                       # cores (and switches), in core-id order; pos is optional (bisection cut)
      - {name: c0, pos: [0, 0]}
      - {name: sw0, kind: switch}
    clusters:                    # optional: `cores` cores named <name>.0 .. on a local crossbar (a switch
      - {name: k0, cores: 8, pos: [0, 0], width: 2, latency_cycles: 1}     # node called <name>)
    links:                       # both ways unless directed; width: multiple of interconnect.link_bytes_per_cycle
      - {a: c0, b: sw0, width: 1, reverse_width: 0.5, latency_cycles: 3}
      - [k0, k1]
    hbm: [c0, k0.3]              # cores where HBM controllers attach, in order (hbm.attach: edge uses them)

Core ids: the cores of ``nodes`` in order, then each cluster's cores; switch nodes come after all cores.
Routing: shortest paths in hops; at every node the next hop is the first of its links, in file order (cluster
crossbars before ``links``), that starts a shortest path to the destination. Listing a mesh's links axis by
axis therefore gives dimension-ordered routing. Graphs up to MAX_NODES nodes (all-pairs tables); regular
networks at wafer scale use the closed-form topologies.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from elk_dse.errors import ConfigError
from elk_dse.hw.topology import Topology, register_topology

MAX_NODES = 4096
FIELD = "interconnect.graph"
_CACHE: dict[str, GraphData] = {}


@dataclass(frozen=True)
class GraphData:
    """A validated graph: node names (cores first), directed links (src, dst, width, latency or NaN),
    positions (NaN where not given), HBM attach cores, and the routing tables."""

    names: tuple[str, ...]
    num_cores: int
    src: np.ndarray
    dst: np.ndarray
    width: np.ndarray
    latency: np.ndarray
    pos: np.ndarray
    hbm: np.ndarray
    dist: np.ndarray  # (N, N) hops
    next_link: np.ndarray  # (N, N) directed link id of the first hop from u towards d (-1 on the diagonal)
    digest: str


def _fail(path: str, problem: str) -> ConfigError:
    return ConfigError(FIELD, path, problem)


def resolve(path: str) -> Path:
    """The file ``path`` names: as given (absolute or from the working directory), else in conf/chip/."""
    p = Path(path)
    if p.is_file():
        return p
    packaged = importlib.resources.files("elk_dse.conf") / "chip" / path
    if packaged.is_file():
        return Path(str(packaged))
    raise _fail(path, "no such file (looked in the working directory and in the packaged conf/chip/)")


def load_graph(path: str) -> GraphData:
    """Read, validate and route the graph file ``path`` (cached by content)."""
    file = resolve(path)
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise _fail(path, f"cannot be read ({err.strerror})") from None
    digest = hashlib.sha1(raw).hexdigest()
    if digest not in _CACHE:
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[digest] = _parse(path, raw, digest)
    return _CACHE[digest]


def _number(path: str, where: str, value, low: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value < low:
        raise _fail(path, f"{where}={value!r}: {what}")
    return float(value)


def _parse(path: str, raw: bytes, digest: str) -> GraphData:
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as err:
        kind = "JSON" if path.endswith(".json") else "YAML"
        raise _fail(path, f"not valid {kind} ({str(err).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise _fail(path, "the file must be a mapping with nodes/clusters, links and hbm")
    unknown = set(doc) - {"nodes", "clusters", "links", "hbm", "description"}
    if unknown:
        raise _fail(path, f"unknown key {sorted(unknown)[0]!r}: allowed keys are nodes, clusters, links, hbm, "
                          "description")
    cores: list[tuple[str, tuple]] = []
    switches: list[tuple[str, tuple]] = []
    edges: list[tuple[str, str, float, float, float, bool]] = []  # a, b, width, reverse width, latency, directed

    def position(where: str, value) -> tuple:
        if value is None:
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(v, int | float) for v in value):
            raise _fail(path, f"{where}.pos={value!r}: a list of numbers, e.g. [row, col]")
        return tuple(float(v) for v in value)

    for i, node in enumerate(doc.get("nodes") or []):
        where = f"nodes[{i}]"
        if isinstance(node, str | int):
            node = {"name": node}
        if not isinstance(node, dict) or "name" not in node:
            raise _fail(path, f"{where}: a mapping with a name (and optionally kind: core|switch, pos)")
        bad = set(node) - {"name", "kind", "pos"}
        if bad:
            raise _fail(path, f"{where}: unknown key {sorted(bad)[0]!r} (allowed: name, kind, pos)")
        kind = node.get("kind", "core")
        if kind not in ("core", "switch"):
            raise _fail(path, f"{where}.kind={kind!r}: core or switch")
        (cores if kind == "core" else switches).append((str(node["name"]), position(where, node.get("pos"))))
    for i, cl in enumerate(doc.get("clusters") or []):
        where = f"clusters[{i}]"
        if not isinstance(cl, dict) or "name" not in cl or "cores" not in cl:
            raise _fail(path, f"{where}: a mapping with name and cores (and optionally pos, width, latency_cycles)")
        bad = set(cl) - {"name", "cores", "pos", "width", "latency_cycles"}
        if bad:
            raise _fail(path, f"{where}: unknown key {sorted(bad)[0]!r} (allowed: name, cores, pos, width, "
                              "latency_cycles)")
        count = cl["cores"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _fail(path, f"{where}.cores={count!r}: a whole number of cores >= 1")
        name, pos = str(cl["name"]), position(where, cl.get("pos"))
        width = _number(path, f"{where}.width", cl.get("width", 1.0), 0.0, "a link width > 0")
        if width <= 0:
            raise _fail(path, f"{where}.width=0: a zero-bandwidth link; width must be > 0")
        lat = (_number(path, f"{where}.latency_cycles", cl["latency_cycles"], 0.0, "cycles >= 0")
               if "latency_cycles" in cl else np.nan)
        switches.append((name, pos))
        for k in range(count):
            cores.append((f"{name}.{k}", pos))
            edges.append((f"{name}.{k}", name, width, width, lat, False))
    for i, link in enumerate(doc.get("links") or []):
        where = f"links[{i}]"
        if isinstance(link, list) and len(link) == 2:
            link = {"a": link[0], "b": link[1]}
        if not isinstance(link, dict) or "a" not in link or "b" not in link:
            raise _fail(path, f"{where}: [a, b] or a mapping with a, b (and width, reverse_width, latency_cycles, "
                              "directed)")
        bad = set(link) - {"a", "b", "width", "reverse_width", "latency_cycles", "directed"}
        if bad:
            raise _fail(path, f"{where}: unknown key {sorted(bad)[0]!r} (allowed: a, b, width, reverse_width, "
                              "latency_cycles, directed)")
        width = _number(path, f"{where}.width", link.get("width", 1.0), 0.0, "a link width > 0")
        rev = _number(path, f"{where}.reverse_width", link.get("reverse_width", width), 0.0, "a link width > 0")
        if width <= 0 or (rev <= 0 and not link.get("directed", False)):
            raise _fail(path, f"{where}: a zero-bandwidth link between {link['a']!r} and {link['b']!r}; "
                              "width must be > 0")
        lat = (_number(path, f"{where}.latency_cycles", link["latency_cycles"], 0.0, "cycles >= 0")
               if "latency_cycles" in link else np.nan)
        edges.append((str(link["a"]), str(link["b"]), width, rev, lat, bool(link.get("directed", False))))

    nodes = cores + switches
    names = [n for n, _ in nodes]
    if not cores:
        raise _fail(path, "no cores: list core nodes or clusters")
    if len(nodes) > MAX_NODES:
        raise _fail(path, f"{len(nodes)} nodes: graph files hold at most {MAX_NODES} nodes (regular networks "
                          "at wafer scale: mesh, torus)")
    index: dict[str, int] = {}
    for i, node in enumerate(names):
        if node in index:
            raise _fail(path, f"node {node!r} is defined twice")
        index[node] = i
    src: list[int] = []
    dst: list[int] = []
    widths: list[float] = []
    latency: list[float] = []
    seen: set[tuple[int, int]] = set()
    for a, b, w, rw, lat, directed in edges:
        for end in (a, b):
            if end not in index:
                raise _fail(path, f"a link to unknown node {end!r}")
        if a == b:
            raise _fail(path, f"a link from {a!r} to itself")
        pairs = [(index[a], index[b], w)] + ([] if directed else [(index[b], index[a], rw)])
        for u, v, cap in pairs:
            if (u, v) in seen:
                raise _fail(path, f"the link {names[u]!r} -> {names[v]!r} is listed twice")
            seen.add((u, v))
            src.append(u)
            dst.append(v)
            widths.append(cap)
            latency.append(lat)
    hbm = []
    for i, h in enumerate(doc.get("hbm") or []):
        if str(h) not in index:
            raise _fail(path, f"hbm[{i}]: unknown node {h!r}")
        if index[str(h)] >= len(cores):
            raise _fail(path, f"hbm[{i}]: {h!r} is a switch; HBM attaches at cores")
        hbm.append(index[str(h)])
    n = len(nodes)
    s, d = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    dist = _all_pairs(n, s, d)
    if (dist < 0).any():
        u, v = (int(x) for x in np.argwhere(dist < 0)[0])
        raise _fail(path, f"the graph is disconnected: no path from {names[u]!r} to {names[v]!r}")
    dims = max((len(p) for _, p in nodes), default=0)
    coords = np.full((n, max(dims, 1)), np.nan)
    for i, (_, p) in enumerate(nodes):
        if p and len(p) != dims:
            raise _fail(path, f"node {names[i]!r}: pos has {len(p)} coordinates, others {dims}")
        coords[i, : len(p)] = p if p else np.nan
    return GraphData(tuple(names), len(cores), s, d, np.asarray(widths), np.asarray(latency), coords,
                     np.asarray(hbm, dtype=np.int64), dist, _next_links(n, s, d, dist), digest)


def _all_pairs(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Hop distances (N, N), -1 where unreachable (breadth-first, scipy's csgraph)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    m = csr_matrix((np.ones(src.size), (src, dst)), shape=(n, n))
    d = shortest_path(m, method="D", directed=True, unweighted=True)
    return np.where(np.isinf(d), -1, d).astype(np.int32)


def _next_links(n: int, src: np.ndarray, dst: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """First hop from u towards every d: the first out-link of u (file order) onto a shortest path."""
    table = np.full((n, n), -1, dtype=np.int32)
    for u in range(n):
        out = np.flatnonzero(src == u)
        on_path = dist[dst[out], :] == dist[u, :][None, :] - 1  # (out-links, destinations)
        first = np.argmax(on_path, axis=0)
        ok = on_path[first, np.arange(n)]
        table[u, ok] = out[first[ok]]
    return table


@register_topology("graph")
class GraphTopology(Topology):
    """A network read from a file (module docstring): cores, switches, links with their own width (a multiple
    of the reference link) and latency, HBM attach cores; shortest-path routing with file-order tie-breaks."""

    needs_file = True
    symmetric = False

    def __init__(self, grid, tie: str = "sign", path: str = ""):
        super().__init__(grid, tie, path)
        if not path:
            raise ConfigError(FIELD, path, "topology graph needs a graph file")
        self.data = load_graph(path)
        self.num_cores = self.data.num_cores

    @classmethod
    def examples(cls):
        return [((64,), f"graphs/{f}.yaml") for f in ("mesh8x8_edge_hbm", "clusters_mesh", "mesh_express")]

    def check_cores(self, count: int) -> None:
        """ConfigError unless the file has ``count`` cores (``cores.count`` of the chip)."""
        if count != self.num_cores:
            raise _fail(self.path, f"the file has {self.num_cores} cores but cores.count={count}")

    @property
    def key(self) -> tuple:
        return (self.name, self.data.digest)

    @property
    def num_nodes(self) -> int:
        return len(self.data.names)

    def links(self) -> np.ndarray:
        pairs = np.sort(np.stack([self.data.src, self.data.dst], axis=1), axis=1)
        return np.unique(pairs, axis=0)

    @property
    def num_directed_links(self) -> int:
        return int(self.data.src.size)

    def link_capacity(self) -> np.ndarray:
        return self.data.width.copy()

    def directed_link_capacity(self) -> float:
        return float(self.data.width.sum())

    def out_ports(self) -> np.ndarray:
        return np.bincount(self.data.src, weights=self.data.width, minlength=self.num_nodes)

    def core_ports(self) -> float:
        return float(self.out_ports()[: self.num_cores].max())

    def cut_capacity(self, inside: np.ndarray) -> float:
        mask = np.zeros(self.num_nodes, dtype=bool)
        mask[: inside.size] = inside
        leaving = mask[self.data.src] & ~mask[self.data.dst]
        return float(self.data.width[leaving].sum())

    def hops(self, src, dst):
        return self.data.dist[np.asarray(src), np.asarray(dst)].astype(np.int64)

    def nearest_hops(self, sources: np.ndarray) -> np.ndarray:
        return self.data.dist[np.asarray(sources, dtype=np.int64)][:, : self.num_cores].min(axis=0).astype(np.int64)

    @cached_property
    def _core_dist(self) -> np.ndarray:
        return self.data.dist[: self.num_cores, : self.num_cores]

    def mean_hops(self) -> float:
        n = self.num_cores
        return float(self._core_dist.sum()) / (n * (n - 1)) if n > 1 else 0.0

    @cached_property
    def diameter(self) -> int:
        return int(self._core_dist.max())

    def diameter_latency_cycles(self, hop_latency_cycles: float) -> float:
        """The longest core-to-core route by summed link latency (links without one: ``hop_latency_cycles``)."""
        lat_link = np.where(np.isnan(self.data.latency), hop_latency_cycles, self.data.latency)
        dist, nxt = self.data.dist, self.data.next_link
        lat = np.zeros(dist.shape)
        for k in range(1, int(dist.max()) + 1):
            u, d = np.nonzero(dist == k)
            link = nxt[u, d].astype(np.int64)
            lat[u, d] = lat_link[link] + lat[self.data.dst[link], d]
        return float(lat[: self.num_cores, : self.num_cores].max())

    def bisection_links(self) -> float:
        """Capacity (reference links, the weaker direction) across a balanced cut: the longest axis of the
        nodes' positions cut in half if every node has one, else networkx's Kernighan-Lin bisection (seed 0)."""
        n = self.num_nodes
        if self.num_cores < 2:
            return 0.0
        pos = self.data.pos
        if not np.isnan(pos).any():
            extent = pos.max(axis=0) - pos.min(axis=0)
            axis = int(np.argmax(extent))
            lo = pos[:, axis].min()
            side = pos[:, axis] < lo + (np.floor(extent[axis]) + 1) // 2
        else:
            import networkx as nx

            g = nx.Graph()
            g.add_nodes_from(range(n))
            for u, v, w in zip(self.data.src.tolist(), self.data.dst.tolist(), self.data.width.tolist(),
                               strict=True):
                g.add_edge(u, v, weight=g.get_edge_data(u, v, {"weight": 0.0})["weight"] + w)
            a, _ = nx.algorithms.community.kernighan_lin_bisection(g, weight="weight", seed=0)
            side = np.zeros(n, dtype=bool)
            side[list(a)] = True
        fwd = side[self.data.src] & ~side[self.data.dst]
        back = ~side[self.data.src] & side[self.data.dst]
        return float(min(self.data.width[fwd].sum(), self.data.width[back].sum()))

    def boundary_cores(self) -> np.ndarray:
        """The HBM attach cores the file lists (``hbm``), in its order."""
        return self.data.hbm.copy()

    def phys_per_node(self) -> float:
        return float(self.data.src.size) / self.num_nodes

    def node_hops(self, src, dst):
        t, r = self.route(src, dst)
        return t, self.data.src[r], self.data.dst[r]

    def route(self, src, dst):
        cur = np.asarray(src, dtype=np.int64).ravel().copy()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        idx = np.arange(cur.size)
        out_t, out_r = [], []
        moving = cur != dst
        while moving.any():
            link = self.data.next_link[cur[moving], dst[moving]].astype(np.int64)
            out_t.append(idx[moving])
            out_r.append(link)
            cur[moving] = self.data.dst[link]
            moving = cur != dst
        if not out_t:
            z = np.zeros(0, dtype=np.int64)
            return z, z
        return np.concatenate(out_t), np.concatenate(out_r)

    def link_index(self, a, b):
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        n = self.num_nodes
        keys = self.data.src * n + self.data.dst
        order = np.argsort(keys)
        want = a * n + b
        pos = np.searchsorted(keys[order], want)
        pos = np.minimum(pos, keys.size - 1)
        if np.any(keys[order][pos] != want):
            raise ValueError("link_index: nodes are not neighbours")
        return order[pos]
