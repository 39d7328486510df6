"""Chip description: validation of every field family, and figures derived from the topology graph."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_chip_dict

from elk_dse.errors import ConfigError, UnknownKeyError
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.topology import TOPOLOGIES


def test_mesh_derived_figures_match_hand_counts():
    chip = chip_from_dict(small_chip_dict())
    # 4x4 mesh: 2*4*3 = 24 links; the cut between columns 1|2 crosses 4 links.
    assert len(chip.topology.links()) == 24
    assert chip.topology.bisection_links() == 4
    assert chip.bisection_bytes_per_s == 4 * 32 * 1e9
    # Mean distance of a 4-grid axis over all ordered pairs incl. self: (k^2-1)/(3k) = 15/12; two axes,
    # distinct pairs only: 2 * 15/12 * 16/15.
    assert chip.mean_hops == pytest.approx(2 * 15 / 12 * 16 / 15)
    assert chip.topology.diameter == 6
    # Edge attach: the 12 boundary cores; interior cores are one hop from the nearest edge core.
    assert chip.hbm_attach_cores.size == 12
    assert chip.mean_hbm_hops == pytest.approx(4 / 16)
    assert chip.peak_flops_per_s == 16 * 1e9 * 2 * 256


def test_torus_and_ring_are_shorter_than_mesh():
    mesh = chip_from_dict(small_chip_dict(cores={"count": 64, "grid": [8, 8]}))
    torus = chip_from_dict(small_chip_dict(cores={"count": 64, "grid": [8, 8]}, interconnect={"topology": "torus"}))
    ring = chip_from_dict(small_chip_dict(cores={"count": 64, "grid": [8, 8]}, interconnect={"topology": "ring"}))
    assert torus.mean_hops < mesh.mean_hops < ring.mean_hops
    assert torus.topology.bisection_links() == 2 * mesh.topology.bisection_links()
    assert ring.topology.bisection_links() == 2
    assert torus.topology.diameter == 8 and mesh.topology.diameter == 14 and ring.topology.diameter == 32


def _bfs_hops(n: int, links: np.ndarray) -> np.ndarray:
    """All-pairs hop counts of an undirected graph over n nodes, by breadth-first search."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in links:
        adj[a].append(b)
        adj[b].append(a)
    dist = np.full((n, n), -1)
    for s in range(n):
        dist[s, s] = 0
        frontier = [s]
        while frontier:
            nxt = []
            for u in frontier:
                for v in adj[u]:
                    if dist[s, v] < 0:
                        dist[s, v] = dist[s, u] + 1
                        nxt.append(v)
            frontier = nxt
    return dist


@pytest.mark.parametrize("name", sorted(k for k, v in TOPOLOGIES.items() if not v.needs_file))  # graph: the conformance suite
def test_hops_agree_with_bfs_over_the_link_list(name):
    topo = TOPOLOGIES[name]((3, 4))
    n = topo.num_cores
    expected = 1 - np.eye(n, dtype=int) if name == "all_to_all" else _bfs_hops(n, topo.links())
    ids = np.arange(n)
    got = topo.hops(ids[:, None], ids[None, :])
    assert np.array_equal(got, expected)
    assert topo.mean_hops() == pytest.approx(expected.sum() / (n * (n - 1)))


@pytest.mark.parametrize("override, field", [
    ({"cores": {"count": 64, "grid": [8, 9]}}, "chip.cores.grid"),
    ({"cores": {"count": 0}}, "chip.cores.count"),
    ({"cores": {"sram_kib": -1}}, "chip.cores.sram_kib"),
    ({"clock_ghz": 0}, "chip.clock_ghz"),
    ({"interconnect": {"topology": "hypercube"}}, "chip.interconnect.topology"),
    ({"interconnect": {"link_bytes_per_cycle": 0}}, "chip.interconnect.link_bytes_per_cycle"),
    ({"hbm": {"bandwidth_gb_s": 0}}, "chip.hbm.bandwidth_gb_s"),
    ({"hbm": {"attach": [3, 99]}}, "chip.hbm.attach"),
    ({"hbm": {"attach": "corner"}}, "chip.hbm.attach"),
    ({"cores": {"count": "many"}}, "chip.cores.count"),
    ({"chips": {"count": 0}}, "chip.chips.count"),
    ({"chips": {"count": 8, "topology": "mesh"}}, "chip.chips.grid"),
    ({"chips": {"count": 8, "topology": "torus", "grid": [3, 3]}}, "chip.chips.grid"),
    ({"chips": {"count": 8, "topology": "ring", "grid": [2, 2]}}, "chip.chips.grid"),
    ({"chips": {"count": 8, "topology": "hypercube"}}, "chip.chips.topology"),
])
def test_bad_values_name_the_field(override, field):
    with pytest.raises(ConfigError) as err:
        chip_from_dict(small_chip_dict(**override))
    assert err.value.field == field
    assert "\n" not in str(err.value)


def test_unknown_key_suggests_the_nearest():
    with pytest.raises(UnknownKeyError, match="did you mean 'sram_kib'"):
        chip_from_dict(small_chip_dict(cores={"sram_kb": 10}))


def test_mesh_needs_a_grid():
    d = small_chip_dict()
    del d["cores"]["grid"]
    with pytest.raises(ConfigError, match="cores.grid"):
        chip_from_dict(d)


def test_shipped_chips_load_and_match_their_published_figures():
    import importlib.resources

    import yaml

    root = importlib.resources.files("elk_dse.conf") / "chip"
    chips = {p.name[:-5]: chip_from_dict(yaml.safe_load(p.read_text())) for p in root.iterdir()
             if p.name.endswith(".yaml")}
    assert {"mesh64", "ipu_mk2", "ipu_pod4", "torus256", "inferentia_like"} <= set(chips)
    mk2 = chips["ipu_mk2"]
    assert mk2.num_cores == 1472 and mk2.hbm is None
    assert mk2.total_sram_bytes == 1472 * 624 * 1024
    assert mk2.peak_flops_per_s == pytest.approx(250e12, rel=0.01)  # GC200: 250 TFLOP/s fp16
    pod = chips["ipu_pod4"]
    assert pod.num_cores == 5888 and pod.hbm_bytes_per_s == pytest.approx(16e12)
    assert chips["mesh64"].grid == (8, 8) and chips["mesh64"].hbm.attach == "edge"
    assert chips["torus256"].interconnect.topology == "torus"


@pytest.mark.parametrize("topology, grid", [("mesh", [2, 4]), ("torus", [3, 4]), ("ring", None),
                                            ("all_to_all", None)])
def test_chip_to_chip_routes_are_shortest_paths_over_adjacent_chips(topology, grid):
    """Every transfer between two chips leaves and enters chips along a shortest path of the chips' graph:
    as many (out port, in port) legs as the BFS distance, each leg between chips that share a link."""
    from elk_dse.hw.resources import Resources

    count = int(np.prod(grid)) if grid else 8
    chips = {"count": count, "topology": topology, **({"grid": grid} if grid else {})}
    chip = chip_from_dict(small_chip_dict(chips=chips))
    res = Resources(chip)
    n, cpc = chip.num_chips, chip.cores_per_chip
    if topology == "all_to_all":
        dist = 1 - np.eye(n, dtype=int)
        adjacent = {(a, b) for a in range(n) for b in range(n) if a != b}
    else:
        links = chip.chip_topology.links()
        dist = _bfs_hops(n, links)
        adjacent = {(int(a), int(b)) for a, b in links} | {(int(b), int(a)) for a, b in links}
    src_chip, dst_chip = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    src_chip, dst_chip = src_chip.ravel(), dst_chip.ravel()
    src, dst = src_chip * cpc + 5, dst_chip * cpc + 6  # a core on each chip; on-chip legs are not counted
    t, r = res.route(src, dst)
    chip_legs = (r >= res.chip_link_base) & (r < res.hbm_base)
    for k in range(src.size):
        ports = r[chip_legs & (t == k)] - res.chip_link_base
        outs, ins = ports[ports % 2 == 0] // 2, ports[ports % 2 == 1] // 2
        assert outs.size == ins.size == dist[src_chip[k], dst_chip[k]]
        assert all((int(a), int(b)) in adjacent for a, b in zip(outs, ins, strict=True))
    # The analytic model's chip distance is the same graph's: the mean over distinct pairs of chips.
    assert chip.chip_topology.mean_hops() == pytest.approx(dist.sum() / (n * (n - 1)))


def test_a_2x4_mesh_of_chips_hand_counts():
    from elk_dse.cost.area import chip_link_phys_per_die

    mesh = chip_from_dict(small_chip_dict(chips={"count": 8, "topology": "mesh", "grid": [2, 4]}))
    ring = chip_from_dict(small_chip_dict(chips={"count": 8, "topology": "ring"}))
    # Mean distance over the 56 ordered pairs of distinct chips: axis of 2 -> 0.5, axis of 4 -> 20/16 (pairs
    # incl. self), scaled to distinct pairs: (0.5 + 1.25) * 64/56 = 2.0; a ring of 8: 16/7.
    assert mesh.chip_topology.mean_hops() == pytest.approx(2.0)
    assert ring.chip_topology.mean_hops() == pytest.approx(16 / 7)
    # 10 links (2 rows x 3 + 4 columns), so 2.5 PHYs per die on average; a ring keeps 2.
    assert len(mesh.chip_topology.links()) == 10 and chip_link_phys_per_die(mesh) == 2.5
    assert chip_link_phys_per_die(ring) == 2.0


def test_a_searched_chip_count_reshapes_the_chips_grid():
    from elk_dse.search.space import apply_params

    base = {"chip": small_chip_dict(chips={"count": 8, "topology": "mesh", "grid": [2, 4]})}
    out = apply_params(base, {"chip.chips.count": 16})
    assert out["chip"]["chips"]["grid"] == [4, 4] and chip_from_dict(out["chip"]).chip_topology.grid == (4, 4)


@pytest.mark.parametrize("topology, grid", [("mesh", [2, 4]), ("mesh", [3, 3]), ("torus", [2, 4]),
                                            ("torus", [3, 4]), ("ring", None), ("all_to_all", None)])
def test_busiest_chip_port_share_matches_the_routes(topology, grid):
    """The analytic model's chip-port figure equals the busiest port under evenly spread traffic routed as the
    event simulator routes it: by symmetry (mean hops / chips) on rings, tori and switches, from the routes on
    meshes, whose middle chips carry through-traffic (2x4: 9/28 against a mean of 1/4)."""
    from elk_dse.hw.resources import Resources

    count = int(np.prod(grid)) if grid else 8
    chip = chip_from_dict(small_chip_dict(chips={"count": count, "topology": topology,
                                                 **({"grid": grid} if grid else {})}))
    res, n, cpc = Resources(chip), chip.num_chips, chip.cores_per_chip
    src, dst = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    keep = src != dst
    t, r = res.route(src[keep] * cpc, dst[keep] * cpc)
    port_load = np.bincount(r[(r >= res.chip_link_base) & (r < res.hbm_base)] - res.chip_link_base)
    assert chip.chip_port_share == pytest.approx(port_load.max() / keep.sum())
    if topology == "mesh":
        assert chip.chip_port_share > chip.chip_topology.mean_hops() / n
    if (topology, grid) == ("mesh", [2, 4]):
        assert chip.chip_port_share == pytest.approx(9 / 28)
