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


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_hops_agree_with_bfs_over_the_link_list(name):
    topo = TOPOLOGIES[name]((3, 4))
    links = topo.links()
    n = topo.num_cores
    if name == "all_to_all":
        expected = 1 - np.eye(n, dtype=int)
    else:
        adj = [[] for _ in range(n)]
        for a, b in links:
            adj[a].append(b)
            adj[b].append(a)
        expected = np.full((n, n), -1)
        for s in range(n):
            expected[s, s] = 0
            frontier = [s]
            while frontier:
                nxt = []
                for u in frontier:
                    for v in adj[u]:
                        if expected[s, v] < 0:
                            expected[s, v] = expected[s, u] + 1
                            nxt.append(v)
                frontier = nxt
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
