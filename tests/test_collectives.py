"""Collectives on the chips' graph (cost/collectives.py): hand-computed bytes, steps and times per algorithm,
the bandwidth bound, and both simulators timing a Program's collectives alike."""

from __future__ import annotations

import pytest
from conftest import small_chip_dict

from elk_dse.cost.collectives import Collective, collective_cost
from elk_dse.errors import ConfigError
from elk_dse.hw.chip import chip_from_dict
from elk_dse.program import OpWork, Plan, Program, ProgramOp
from elk_dse.sim import simulate

MB = 1e6


def system(topology="ring", count=8, grid=None, link_gb_s=100.0, latency_ns=1000.0, startup_us=0.0, **over):
    chips = {"count": count, "topology": topology, "link_gb_s": link_gb_s, "link_latency_ns": latency_ns}
    if grid is not None:
        chips["grid"] = grid
    return chip_from_dict(small_chip_dict(chips=chips, overheads={"collective_startup_us": startup_us}, **over))


def program(chip, collectives, compute_cycles=0.0, system_chip=None):
    """A Program of one op per collective (kind "collective", no compute), the way a compiler places them."""
    plan = Plan(spatial=(), cores_used=1, sram_bytes_per_core=0)
    ops = tuple(
        ProgramOp(index=i, name=f"coll{i}", kind="collective", layer="l", repetition=i, dims=(), flops=0.0,
                  weight_bytes=0.0, kv_cache_bytes=0.0, plan=plan,
                  work=OpWork(compute_cycles=compute_cycles, collectives=(c,)))
        for i, c in enumerate(collectives))
    return Program(chip=chip, model="t", phase="decode", scheduler="sequential", ops=ops, parameter_bytes=0.0,
                   load_order=tuple(range(len(ops))), system=system_chip)


def test_ring_all_reduce_on_a_ring_of_8_by_hand():
    # all_reduce of B bytes on a ring of 8 chips: 7 reduce-scatter + 7 all-gather steps, each chip sending B/8
    # per step to its successor: 2 x 7/8 x B sent per chip, 14 steps. Every flow is one hop, so the links carry
    # 8 chips x 14 steps x B/8 = 14 B. A ring chip's 100 GB/s is shared by its two links (50 GB/s each) and a
    # one-direction ring uses one of them: 14 x (B/8) / 50 GB/s + 14 x 1 us.
    b = 8 * MB
    cost = collective_cost(Collective("all_reduce", b, tuple(range(8)), "ring"), system())
    assert cost.algorithm == "ring"
    assert cost.steps == 14
    assert cost.link_bytes == pytest.approx(14 * b)
    assert cost.max_port_bytes == pytest.approx(2 * 7 / 8 * b)
    assert cost.bandwidth_s == pytest.approx(14 * (b / 8) / 50e9)
    assert cost.latency_s == pytest.approx(14 * 1e-6)
    assert cost.time_s == pytest.approx(14 * (b / 8) / 50e9 + 14e-6)


def test_startup_is_paid_once_per_collective():
    b = 8 * MB
    base = collective_cost(Collective("all_reduce", b, tuple(range(8)), "ring"), system()).time_s
    with_startup = collective_cost(Collective("all_reduce", b, tuple(range(8)), "ring"), system(startup_us=9.07))
    assert with_startup.startup_s == pytest.approx(9.07e-6)
    assert with_startup.time_s == pytest.approx(base + 9.07e-6)


def test_negative_startup_is_one_config_error():
    with pytest.raises(ConfigError, match="collective_startup_us"):
        system(startup_us=-1.0)


def test_one_chip_or_no_bytes_cost_nothing():
    assert collective_cost(Collective("all_reduce", MB, (3,)), system()).time_s == 0.0
    assert collective_cost(Collective("all_reduce", 0.0, (0, 1)), system()).time_s == 0.0


def test_bad_collectives_are_one_config_error():
    with pytest.raises(ConfigError, match="collective.kind"):
        Collective("allreduce", MB, (0, 1))
    with pytest.raises(ConfigError, match="collective.group"):
        Collective("all_reduce", MB, (0, 0))
    with pytest.raises(ConfigError, match="collective.algorithm"):
        Collective("all_reduce", MB, (0, 1), "butterfly")
    with pytest.raises(ConfigError, match="collective.group"):
        collective_cost(Collective("all_reduce", MB, (0, 9)), system())


@pytest.mark.parametrize("sim", ["analytic", "event"])
def test_simulators_time_a_programs_collectives(sim):
    chip = system()
    colls = [Collective("all_reduce", 8 * MB, tuple(range(8)), "ring"),
             Collective("all_gather", 2 * MB, tuple(range(8)), "ring")]
    result = simulate(program(chip, colls), sim)
    expected = sum(collective_cost(c, chip).time_s for c in colls)
    assert result.latency_s == pytest.approx(expected, rel=0.05)


def test_program_counts_collective_link_bytes():
    chip = system()
    c = Collective("all_reduce", 8 * MB, tuple(range(8)), "ring")
    assert program(chip, [c]).chip_link_bytes == pytest.approx(14 * 8 * MB)


def test_collectives_run_on_the_system_when_the_program_is_one_chips_view():
    whole = system()
    one = chip_from_dict(small_chip_dict())
    c = Collective("all_reduce", 8 * MB, tuple(range(8)), "ring")
    prog = program(one, [c], system_chip=whole)
    for sim in ("analytic", "event"):
        assert simulate(prog, sim).latency_s == pytest.approx(collective_cost(c, whole).time_s, rel=0.05)
