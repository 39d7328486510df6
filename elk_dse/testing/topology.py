"""Conformance suite for topologies (``elk_dse.hw.topology``): every registered topology must pass it.

Usage (tests/test_topology_conformance.py parametrizes over the registry, so a new topology is checked without
editing anything)::

    from elk_dse.testing.topology import check_topology, check_chip, example_cases
    for name, grid, path in example_cases():
        check_topology(make_topology(name, grid, path=path))

Checks: routes are contiguous walks from source to destination over the topology's links whose lengths are
the hop counts, and the hop counts are shortest paths (breadth-first search over the link list); the closed
forms (mean hops, diameter, distance from the nearest of a set of cores) equal the figures computed from the
routes; the vectorized link loads of the
traffic patterns the cost models use (ring shifts, HBM delivery from the edge, all-to-all) equal the loads
summed from the routes; on a small chip the analytic and event simulators respect the roofline and agree.
Each check raises AssertionError naming the topology and what differs.
"""

from __future__ import annotations

import numpy as np

from elk_dse.hw.topology import TOPOLOGIES, Topology, make_topology

# Event vs analytic on the small program: docs/sim_agreement.md measures a median 2.7%, a maximum 8.8% over
# the shipped points; a topology whose two simulators disagree by more than this is inconsistent.
SIM_AGREEMENT = 0.15


def example_cases() -> list[tuple[str, tuple[int, ...], str]]:
    """(topology name, grid, file) for every registered topology's ``examples()``."""
    return [(name, grid, path) for name, cls in sorted(TOPOLOGIES.items()) for grid, path in cls.examples()]


def _fail(topo: Topology, what: str) -> AssertionError:
    return AssertionError(f"topology {topo.name} {topo.grid} {topo.path}: {what}")


def traffic_patterns(topo: Topology) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The flow sets the cost models route: ring shifts (stride 1 over all cores, stride 2 over half), HBM
    delivery (every boundary core to every core) and every ordered pair of cores (uniform traffic)."""
    n = topo.num_cores
    c = np.arange(n)
    out = {"ring_shift_1": (c, np.roll(c, -1))}
    if n >= 4:
        half = c[: n - n % 2]
        pos = (half // 2) % (half.size // 2)
        nxt = np.where(pos == half.size // 2 - 1, half - 2 * (half.size // 2 - 1), half + 2)
        out["ring_shift_2"] = (half, nxt)
    edge = topo.boundary_cores()
    if edge.size:
        out["hbm_delivery"] = (np.repeat(edge, n), np.tile(c, edge.size))
    s, d = np.meshgrid(c, c, indexing="ij")
    keep = s != d
    out["every_pair"] = (s[keep], d[keep])
    return out


def check_topology(topo: Topology) -> None:
    """Routes, hop counts, closed forms and vectorized loads of one topology instance."""
    n = topo.num_cores
    c = np.arange(n)
    s, d = (x.ravel() for x in np.meshgrid(c, c, indexing="ij"))
    hops = np.asarray(topo.hops(s, d))
    if np.any(hops[s == d] != 0) or np.any(hops[s != d] < 1):
        raise _fail(topo, "hops must be 0 from a core to itself and >= 1 otherwise")
    # Routes: contiguous walks src -> dst whose length is the hop count.
    t, a, b = topo.node_hops(s, d)
    length = np.bincount(t, minlength=s.size)
    if not np.array_equal(length, hops):
        k = int(np.flatnonzero(length != hops)[0])
        raise _fail(topo, f"route {s[k]} -> {d[k]} has {length[k]} hops, hops() says {hops[k]}")
    order = np.lexsort((np.arange(t.size), t))
    t, a, b = t[order], a[order], b[order]
    first = np.r_[True, t[1:] != t[:-1]]
    if t.size and (np.any(a[first] != s[t[first]]) or np.any(a[~first] != b[np.flatnonzero(~first) - 1])):
        raise _fail(topo, "a route is not a contiguous walk from its source")
    last = np.r_[t[1:] != t[:-1], True]
    if t.size and np.any(b[last] != d[t[last]]):
        raise _fail(topo, "a route does not end at its destination")
    links = topo.links()
    if links.size and np.all(links[:, 0] != links[:, 1]):  # a graph of links (not a fabric of core ports)
        _check_shortest(topo, links, hops.reshape(n, n), a, b)
    # Closed forms against the routes.
    if n > 1:
        mean = hops[s != d].mean()
        if not np.isclose(topo.mean_hops(), mean, rtol=1e-12):
            raise _fail(topo, f"mean_hops()={topo.mean_hops()} but the routes average {mean}")
        if topo.diameter != hops.max():
            raise _fail(topo, f"diameter={topo.diameter} but the longest route has {hops.max()} hops")
    # Distance from the nearest of a set of sources (HBM attach points): the hop function's minimum.
    hop_matrix = hops.reshape(n, n)
    for sources in (topo.boundary_cores(), np.array([0]), np.arange(0, n, 3)):
        if sources.size and not np.array_equal(topo.nearest_hops(sources), hop_matrix[sources].min(axis=0)):
            raise _fail(topo, f"nearest_hops({sources.tolist()}) differs from the minimum of hops()")
    cap = topo.link_capacity()
    if cap.shape != (topo.num_directed_links,) or np.any(cap <= 0):
        raise _fail(topo, "link_capacity() must give a positive capacity per directed link")
    # Vectorized loads equal the loads summed from the hop-by-hop routes, for every traffic pattern.
    rng = np.random.default_rng(0)
    half = c[: n - n % 2]
    for name, (src, dst) in traffic_patterns(topo).items():
        tt, rr = topo.route(src, dst)
        if rr.size and (rr.min() < 0 or rr.max() >= topo.num_directed_links):
            raise _fail(topo, f"{name}: route() gives link ids outside [0, num_directed_links)")
        for weight in (1.0, rng.uniform(0.5, 2.0, src.size)):
            w = np.broadcast_to(weight, src.shape)
            expect = np.bincount(rr, weights=w[tt], minlength=topo.num_directed_links)
            got = topo.link_loads(src, dst, weight)
            if got.shape != expect.shape or not np.allclose(got, expect, rtol=1e-12, atol=1e-12):
                raise _fail(topo, f"{name}: link_loads differ from the routes' loads by "
                                  f"{float(np.abs(got - expect).max())}")
        share = topo.busiest_link_share(src, dst)
        named = {"ring_shift_1": lambda: topo.ring_shift_share(1, n, n),
                 "ring_shift_2": lambda: topo.ring_shift_share(2, half.size // 2, half.size) if n >= 4 else 0.0,
                 "hbm_delivery": lambda: topo.delivery_share(topo.boundary_cores()) * n * topo.boundary_cores().size,
                 "every_pair": lambda: topo.uniform_share() * n * (n - 1)}[name]()
        if not np.isclose(named, share, rtol=1e-9):
            raise _fail(topo, f"{name}: the protocol's pattern share {named} differs from the routes' {share}")
        expect_share = float((np.bincount(rr, minlength=topo.num_directed_links) / cap).max()) if rr.size else 0.0
        if not np.isclose(share, expect_share, rtol=1e-12):
            raise _fail(topo, f"{name}: busiest_link_share={share}, the routes give {expect_share}")


def _check_shortest(topo: Topology, links: np.ndarray, hops: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Every hop crosses a link of the list, and hops() equals breadth-first distances over the directed links
    the routes use (which must be links of the list)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    m = topo.num_nodes
    known = set(map(tuple, np.sort(links, axis=1).tolist()))
    used = set(map(tuple, np.sort(np.stack([a, b], axis=1), axis=1).tolist())) if a.size else set()
    if not used <= known:
        raise _fail(topo, f"routes cross {len(used - known)} links that links() does not list")
    adj = csr_matrix((np.ones(2 * len(links)), (np.r_[links[:, 0], links[:, 1]], np.r_[links[:, 1], links[:, 0]])),
                     shape=(m, m))
    if topo.num_directed_links == 2 * len(links):  # symmetric links: undirected breadth-first distances
        bfs = shortest_path(adj, unweighted=True, directed=False)[: topo.num_cores, : topo.num_cores]
        if not np.array_equal(bfs, hops):
            raise _fail(topo, "hops() are not the shortest-path distances of the link graph")


def check_chip(name: str, grid: tuple[int, ...], path: str = "") -> dict[str, float]:
    """On a small chip with this topology: a Llama-2-7B decode step (batch 2, KV 256) compiles, both
    simulators give a latency at or above the roofline bound, and they agree within SIM_AGREEMENT.
    Returns the two latencies."""
    from elk_dse.compiler.compile import compile_graph
    from elk_dse.compiler.schedulers import SchedulerConfig
    from elk_dse.cost.roofline import roofline_bound
    from elk_dse.hw.chip import chip_from_dict
    from elk_dse.models import ModelConfig, build_model
    from elk_dse.program import Program
    from elk_dse.sim import simulate

    topo = make_topology(name, grid, path=path)
    chip = chip_from_dict({
        "name": f"conformance_{name}", "clock_ghz": 1.0,
        "cores": {"count": topo.num_cores, "grid": list(grid) if topo.needs_grid else None, "sram_kib": 1024,
                  "matrix_rows": 16, "matrix_cols": 16, "vector_lanes": 32, "op_overhead_cycles": 50},
        "interconnect": {"topology": name, "link_bytes_per_cycle": 32, "hop_latency_cycles": 2,
                         "barrier_cycles": 100, "graph": path},
        "hbm": {"bandwidth_gb_s": 400, "capacity_gib": 64, "channels": 8, "attach": "edge"},
    })
    graph = build_model(ModelConfig("llama2_7b", batch=2, kv_len=256))
    program = compile_graph(graph, chip, SchedulerConfig(name="elk_full"))
    if not isinstance(program, Program):
        raise _fail(topo, f"the small program is infeasible: {program}")
    bound = roofline_bound(chip, graph.flops, graph.must_weight_bytes, graph.kv_cache_read_bytes,
                           graph.kv_cache_write_bytes).latency_s
    out = {}
    for sim in ("analytic", "event"):
        latency = simulate(program, sim).latency_s
        if latency < bound * (1 - 1e-9):
            raise _fail(topo, f"{sim} latency {latency} s beats the roofline bound {bound} s")
        out[sim] = latency
    if abs(out["event"] / out["analytic"] - 1) > SIM_AGREEMENT:
        raise _fail(topo, f"event {out['event']} s and analytic {out['analytic']} s differ by more than "
                          f"{SIM_AGREEMENT:.0%}")
    return out
