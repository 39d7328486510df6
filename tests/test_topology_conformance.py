"""Every registered topology passes the shipped conformance suite (elk_dse.testing.topology); the cases come
from the registry, so a new topology module is checked without editing this file."""

from __future__ import annotations

import pytest

from elk_dse.hw.topology import TOPOLOGIES, make_topology
from elk_dse.testing.topology import check_chip, check_topology, example_cases

CASES = example_cases()
IDS = [f"{name}-{'x'.join(map(str, grid))}-{path.rsplit('/', 1)[-1] or 'grid'}" for name, grid, path in CASES]


def test_every_registered_topology_has_cases():
    assert {name for name, _, _ in CASES} == set(TOPOLOGIES)


@pytest.mark.parametrize(("name", "grid", "path"), CASES, ids=IDS)
def test_topology_conforms(name, grid, path):
    check_topology(make_topology(name, grid, path=path))
    # The chips' networks route with forward tie-breaks: same routes' invariants.
    if not make_topology(name, grid, path=path).needs_file:
        check_topology(make_topology(name, grid, tie="forward", path=path))


@pytest.mark.parametrize(("name", "grid", "path"), CASES, ids=IDS)
def test_simulators_conform(name, grid, path):
    out = check_chip(name, grid, path)
    assert out["analytic"] > 0 and out["event"] > 0


def test_suite_catches_a_wrong_closed_form():
    """The suite fails a topology whose closed form disagrees with its routes."""
    topo = make_topology("mesh", (4, 4))
    topo.mean_hops = lambda: 2.0  # the true mean is 2.666...
    with pytest.raises(AssertionError, match="mean_hops"):
        check_topology(topo)


def test_suite_catches_wrong_vectorized_loads():
    topo = make_topology("torus", (4, 4))
    real = topo.link_loads
    topo.link_loads = lambda s, d, w=1.0: real(s, d, w) * 1.01
    with pytest.raises(AssertionError, match="link_loads"):
        check_topology(topo)


def test_a_new_topology_is_one_class_and_the_suite_picks_it_up():
    """A topology defined anywhere (here: a 2-D mesh with the axes routed in the other order, as one class) is
    registered by its decorator and checked by the suite without editing the suite."""
    import numpy as np

    from elk_dse.hw.topology import Mesh, register_topology

    @register_topology("transposed_mesh")
    class TransposedMesh(Mesh):
        """A mesh whose cores are numbered column-major: routing and loads come from the mesh over the
        transposed grid."""

        def __init__(self, grid, tie="sign", path=""):
            super().__init__(tuple(reversed(tuple(grid))), tie, path)

    try:
        cases = [c for c in example_cases() if c[0] == "transposed_mesh"]
        assert cases
        for name, grid, path in cases:
            topo = make_topology(name, grid, path=path)
            check_topology(topo)
            assert np.isclose(topo.mean_hops(), make_topology("mesh", grid).mean_hops())
    finally:
        del TOPOLOGIES["transposed_mesh"]
