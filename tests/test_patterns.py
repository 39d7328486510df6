"""The traffic patterns live in hw/patterns.py once: the analytic model's busiest-link shares and the event
simulator's per-resource demands are built from the same flows, so they agree exactly (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_chip_dict

from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.patterns import (
    TrafficPatterns,
    chip_pair_flows,
    delivery_flows,
    ring_shift_flows,
    uniform_flows,
)

ON_CHIP = [
    ("mesh", {}),
    ("torus", {"interconnect": {"topology": "torus"}}),
    ("ring", {"interconnect": {"topology": "ring"}, "cores": {"count": 16, "grid": [16]}}),
]


@pytest.mark.parametrize("name,over", ON_CHIP, ids=[c[0] for c in ON_CHIP])
@pytest.mark.parametrize("stride,length,cores", [(1, 4, 16), (4, 4, 16), (1, 16, 16), (2, 2, 8)])
def test_ring_shift_share_is_the_busiest_link_of_the_event_demand(name, over, stride, length, cores):
    chip = chip_from_dict(small_chip_dict(**over))
    res = chip.resources
    ids, amounts = TrafficPatterns(res).ring(stride, length, cores)
    share = chip.topology.ring_shift_share(stride, length, cores)
    assert share > 0
    assert res.busiest_link_share(ids, amounts) == pytest.approx(share, rel=1e-12)


@pytest.mark.parametrize("name,over", ON_CHIP, ids=[c[0] for c in ON_CHIP])
def test_hbm_delivery_share_is_the_busiest_link_of_the_event_load(name, over):
    chip = chip_from_dict(small_chip_dict(**over))
    res = chip.resources
    (ids, amounts), (chan, chan_amounts) = TrafficPatterns(res).load(chip.cores_per_chip)
    assert res.busiest_link_share(ids, amounts) == pytest.approx(chip.hbm_delivery_link_share, rel=1e-12)
    assert chan_amounts.sum() == pytest.approx(1.0)  # every HBM byte passes exactly one channel


@pytest.mark.parametrize("topology,grid", [("mesh", [2, 3]), ("ring", None), ("torus", [2, 2]),
                                           ("all_to_all", None)])
def test_chip_port_share_is_the_busiest_port_of_the_event_demand(topology, grid):
    chips = {"count": 6 if grid is None else int(np.prod(grid)), "topology": topology, "link_gb_s": 100}
    if grid is not None:
        chips["grid"] = grid
    chip = chip_from_dict(small_chip_dict(chips=chips))
    res = chip.resources
    ids, amounts = TrafficPatterns(res).chip_ports(chip.num_cores)
    ports = (ids >= res.chip_link_base) & (ids < res.hbm_base)
    # Symmetric graphs take the closed form (mean hops / chips); it must equal the routed busiest port.
    assert float(amounts[ports].max()) == pytest.approx(chip.chip_port_share, rel=1e-12)


def test_flows_are_the_documented_shapes():
    src, dst = ring_shift_flows(2, 3, 6, 6)
    assert src.tolist() == [0, 1, 2, 3, 4, 5] and dst.tolist() == [2, 3, 4, 5, 0, 1]
    s, d, w = chip_pair_flows(3, 10)
    assert sorted(zip(s.tolist(), d.tolist(), strict=True)) == [(0, 10), (0, 20), (10, 0), (10, 20), (20, 0),
                                                                 (20, 10)]
    assert w == pytest.approx(1 / 6)
    s, d, w = uniform_flows(4, 4)
    assert (s != d).all() and (s // 4 == d // 4).all() and w * s.size == pytest.approx(1.0)
    s, d = delivery_flows(np.array([0, 0, 3]), np.array([1, 2]))
    assert s.tolist() == [0, 0, 0, 0, 3, 3] and d.tolist() == [1, 2, 1, 2, 1, 2]
