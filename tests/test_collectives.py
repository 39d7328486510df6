"""Collectives on the chips' graph (cost/collectives.py): hand-computed bytes, steps and times per algorithm,
the bandwidth bound, and both simulators timing a Program's collectives alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import small_chip_dict
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_dse.cost.collectives import ALGORITHMS, EXPLICIT_ONLY, Collective, collective_cost
from elk_dse.errors import ConfigError
from elk_dse.hw.chip import chip_from_dict
from elk_dse.program import OpWork, Plan, Program, ProgramOp
from elk_dse.sim import simulate
from elk_dse.testing.collectives import check_algorithm, example_systems

MB = 1e6
CONF = Path(__file__).resolve().parents[1] / "conf" / "chip"


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


# ---- the conformance suite over the registry -----------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_registered_algorithm_passes_the_conformance_suite(name):
    done = sum(check_algorithm(name, system, group, label) for label, system, group in example_systems())
    assert done > 0, f"{name} does no collective on any example system"


def test_a_broken_algorithm_fails_the_conformance_suite():
    # An all_reduce that skips the all-gather half: chips never receive the reduced result.
    from elk_dse.cost import collectives as mod

    def half_ring(kind, n, shape):
        return mod.ring("reduce_scatter", n, shape) if kind == "all_reduce" else None

    mod.ALGORITHMS["half_ring"] = half_ring
    try:
        with pytest.raises(AssertionError, match="half_ring, all_reduce"):
            check_algorithm("half_ring", system(), tuple(range(8)))
    finally:
        del mod.ALGORITHMS["half_ring"]


# ---- hand counts per algorithm ---------------------------------------------------------------------------
def test_bidirectional_ring_uses_both_links_of_a_ring_chip():
    # Two rings of B/2 in opposite directions: per step every chip sends B/16 to each neighbour, each on its
    # own 50 GB/s link: 14 x (B/16) / 50 GB/s + 14 x 1 us; the same 14 B cross the links.
    b = 8 * MB
    cost = collective_cost(Collective("all_reduce", b, tuple(range(8)), "bidir_ring"), system())
    assert cost.steps == 14
    assert cost.link_bytes == pytest.approx(14 * b)
    assert cost.time_s == pytest.approx(14 * (b / 16) / 50e9 + 14e-6)


def test_ring_2d_on_a_4x4_torus_by_hand():
    # Rows then columns of a 4x4 torus of chips (100 GB/s per chip over 4 links: 25 GB/s each).
    # reduce_scatter on rows: 3 steps of B/4 per chip; on columns: 3 steps of B/16; all_gather the reverse.
    # Sent per chip: 2 x (3/4 + 3/16) B = 2 x 15/16 B; 12 steps, each one hop.
    b = 16 * MB
    sys16 = system("torus", 16, [4, 4])
    cost = collective_cost(Collective("all_reduce", b, tuple(range(16)), "ring_2d"), sys16)
    assert cost.steps == 12
    assert cost.max_port_bytes == pytest.approx(2 * 15 / 16 * b)
    assert cost.link_bytes == pytest.approx(16 * 2 * 15 / 16 * b)
    assert cost.bandwidth_s == pytest.approx(2 * (3 * (b / 4) + 3 * (b / 16)) / 25e9)
    assert cost.latency_s == pytest.approx(12e-6)


def test_tree_all_reduce_on_a_switch_by_hand():
    # Binomial tree over 8 chips on a switch (one port of 100 GB/s per chip): 3 reduce rounds + 3 broadcast
    # rounds, the whole buffer per transfer: 6 x B / 100 GB/s + 6 x 1 us. 7 transfers each way, one hop each.
    b = 1 * MB
    cost = collective_cost(Collective("all_reduce", b, tuple(range(8)), "tree"), system("all_to_all", 8))
    assert cost.steps == 6
    assert cost.link_bytes == pytest.approx(14 * b)
    assert cost.max_port_bytes == pytest.approx(3 * b)  # the root receives in 3 rounds and sends in 3
    assert cost.time_s == pytest.approx(6 * b / 100e9 + 6e-6)


def test_direct_all_to_all_on_a_switch_by_hand():
    # Each chip sends B/8 to each of the 7 others at once through its one port: 7/8 B per port, one step.
    b = 8 * MB
    cost = collective_cost(Collective("all_to_all", b, tuple(range(8)), "direct"), system("all_to_all", 8))
    assert cost.steps == 1
    assert cost.link_bytes == pytest.approx(8 * 7 * b / 8)
    assert cost.max_port_bytes == pytest.approx(7 / 8 * b)
    assert cost.time_s == pytest.approx(7 / 8 * b / 100e9 + 1e-6)


def test_send_recv_follows_its_route_on_a_mesh():
    # Chip 0 to chip 7 on a 2x4 mesh: rows first, then columns: 0 -> 4 -> 5 -> 6 -> 7, 4 hops. Chip 0 (a corner)
    # has 2 links (50 GB/s each), chips 4..6 on the bottom row 3 or 2: the slowest link on the way is 100/3 GB/s.
    b = 1 * MB
    cost = collective_cost(Collective("send_recv", b, (0, 7)), system("mesh", 8, [2, 4]))
    assert cost.algorithm == "direct"
    assert cost.link_bytes == pytest.approx(4 * b)
    assert cost.time_s == pytest.approx(b / (100e9 / 3) + 4e-6)


def test_ring_on_a_2x4_mesh_walks_a_hamiltonian_cycle():
    # All 8 chips of a 2x4 mesh: the ring runs 0 1 2 3 7 6 5 4, every edge one mesh link, so the 14 steps of
    # an all_reduce put 8 x 14 x B/8 = 14 B on the links (in id order 3 -> 4 would cross 4 links).
    b = 8 * MB
    cost = collective_cost(Collective("all_reduce", b, tuple(range(8)), "ring"), system("mesh", 8, [2, 4]))
    assert cost.link_bytes == pytest.approx(14 * b)
    # The slowest link of the cycle leaves an inner chip (3 links: 100/3 GB/s).
    assert cost.bandwidth_s == pytest.approx(14 * (b / 8) / (100e9 / 3))


def test_a_chips_ring_of_two_routes_both_directions():
    # Regression: the chips' ring of 2 (tie "forward") routed 1 -> 0 over a link that does not exist and lost
    # the bytes; both directions must carry their flow.
    from elk_dse.hw.topology import make_topology

    topo = make_topology("ring", (2,), tie="forward")
    loads = topo.link_loads([0, 1], [1, 0])
    assert sorted(loads.tolist()) == [1.0, 1.0]
    torus = make_topology("torus", (2, 4), tie="forward")
    assert torus.link_loads([0, 4], [4, 0]).sum() == 2.0


def test_auto_picks_latency_bound_algorithms_for_small_buffers_and_ring_ones_for_large():
    ring8 = system(latency_ns=5000.0)
    small = collective_cost(Collective("all_reduce", 1024.0, tuple(range(8))), ring8)
    large = collective_cost(Collective("all_reduce", 1e9, tuple(range(8))), ring8)
    assert small.algorithm in ("tree", "direct")
    assert large.algorithm in ("bidir_ring", "ring_2d")
    for c in (small, large):  # auto is the fastest of its candidates (not the stack-specific explicit ones)
        for name in set(ALGORITHMS) - EXPLICIT_ONLY:
            try:
                other = collective_cost(Collective("all_reduce", 1024.0 if c is small else 1e9, tuple(range(8)),
                                                   name), ring8)
            except ConfigError:
                continue
            assert c.time_s <= other.time_s


# ---- properties ------------------------------------------------------------------------------------------
SYSTEMS = {
    "ring6": lambda: system("ring", 6), "mesh2x4": lambda: system("mesh", 8, [2, 4]),
    "torus3x4": lambda: system("torus", 12, [3, 4]), "switch5": lambda: system("all_to_all", 5),
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(SYSTEMS)), st.sampled_from(["all_reduce", "reduce_scatter", "all_gather",
                                                          "all_to_all", "broadcast"]),
       st.floats(1.0, 1e9), st.floats(1.0, 4.0), st.integers(2, 5), st.randoms(use_true_random=False))
def test_time_is_monotone_in_bytes_and_never_beats_the_bandwidth_bound(name, kind, b, factor, size, rnd):
    sys_ = SYSTEMS[name]()
    chips = list(range(sys_.num_chips))
    rnd.shuffle(chips)
    group = tuple(chips[: min(size, len(chips))]) if size < 5 else tuple(range(sys_.num_chips))
    c = collective_cost(Collective(kind, b, group), sys_)
    bigger = collective_cost(Collective(kind, b * factor, group), sys_)
    assert bigger.time_s >= c.time_s * (1 - 1e-12)
    bw = sys_.chips.link_gb_s * 1e9
    n = len(group)
    need = {"broadcast": b}.get(kind, (n - 1) / n * b)  # bytes some chip must receive
    assert c.time_s >= max(c.max_port_bytes, need) / bw * (1 - 1e-9)
    assert c.time_s >= c.startup_s + c.bandwidth_s * (1 - 1e-12)


# ---- in a compiled Program -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compiled_two_chip():
    from elk_dse.compiler.compile import compile_graph
    from elk_dse.compiler.schedulers import SchedulerConfig
    from elk_dse.models import ModelConfig, build_model

    chip = system("ring", 2, startup_us=3.0, hbm={"capacity_gib": 64})
    graph = build_model(ModelConfig("llama3_2_1b", batch=1, kv_len=128, arch={"num_hidden_layers": 2}))
    prog = compile_graph(graph, chip, SchedulerConfig(name="elk_full"))
    assert isinstance(prog, Program)
    return graph, prog


@pytest.mark.parametrize("sim", ["analytic", "event"])
def test_collectives_add_their_time_to_a_compiled_program(compiled_two_chip, sim):
    # An all_reduce after every matmul of a compiled decoder (the way tensor parallelism adds them): the
    # latency grows by the collectives' time (they run after each op's compute, on the op's critical path),
    # and Program.chip_link_bytes by their link bytes (ring of 2: 2 steps x 2 chips x B/2 = 2 B each).
    from dataclasses import replace

    _, prog = compiled_two_chip
    c = Collective("all_reduce", 2048 * 2.0, (0, 1), "ring")
    ops = tuple(replace(op, work=replace(op.work, collectives=(c,))) if op.kind == "matmul" else op
                for op in prog.ops)
    with_c = replace(prog, ops=ops)
    count = sum(1 for op in prog.ops if op.kind == "matmul")
    assert count > 0
    assert with_c.chip_link_bytes - prog.chip_link_bytes == pytest.approx(count * 2 * c.bytes_per_chip)
    base = simulate(prog, sim).latency_s
    added = simulate(with_c, sim).latency_s - base
    expected = count * collective_cost(c, prog.chip).time_s
    # Loads may hide under the longer executions, so the growth is at most the collectives' time, and at
    # least what the execution path alone adds minus the load time that can overlap it.
    assert added <= expected * 1.05
    assert added >= expected * 0.5


@pytest.mark.parametrize("nbytes", [4096.0, 262144.0])
def test_event_and_analytic_agree_on_a_compiled_program_with_collectives(compiled_two_chip, nbytes):
    from dataclasses import replace

    _, prog = compiled_two_chip
    c = Collective("all_reduce", nbytes, (0, 1))
    ops = tuple(replace(op, work=replace(op.work, collectives=(c,))) if op.kind == "matmul" else op
                for op in prog.ops)
    with_c = replace(prog, ops=ops)
    a = simulate(with_c, "analytic").latency_s
    e = simulate(with_c, "event").latency_s
    assert e == pytest.approx(a, rel=0.05)


def test_llama_3_1_70b_tp8_decode_all_reduces_on_t3k_by_hand():
    # Megatron tensor parallelism over the 8 chips of a T3K: 2 all_reduces per layer (after the attention
    # output projection and after the MLP down projection), each of the hidden state batch x 8192 x 2 bytes
    # (bf16). Ring all_reduce on the Hamiltonian cycle 0 1 2 3 7 6 5 4 of the 2x4 mesh: 14 steps in which each
    # of the 8 chips sends B/8 one hop, 14 B on the links per all_reduce. 80 layers, batch 32:
    # B = 32 x 8192 x 2 = 524,288 bytes; 160 x 14 x 524,288 = 1,174,405,120 bytes per decode step.
    import yaml

    t3k = chip_from_dict(yaml.safe_load((CONF / "wormhole_t3k.yaml").read_text()))
    b = 32 * 8192 * 2
    per = collective_cost(Collective("all_reduce", b, tuple(range(8)), "ring"), t3k)
    assert per.link_bytes == 14 * b
    assert 80 * 2 * per.link_bytes == 1_174_405_120


def test_event_trace_shows_the_chip_links_collectives_use(tmp_path):
    # Ring all_reduce on 4 chips of a ring: each directed chip link is a counter track named "chip_wire: chip
    # links k"; the 4 forward links are fully busy during the bandwidth part, the backward ones idle.
    import json

    from elk_dse.sim.event import EventSimulator

    chip = system("ring", 4)
    c = Collective("all_reduce", 8 * MB, (0, 1, 2, 3), "ring")
    path = tmp_path / "trace.json"
    EventSimulator(trace=str(path)).run(program(chip, [c]))
    events = json.loads(path.read_text())["traceEvents"]
    peaks: dict[str, float] = {}
    for e in events:
        if e["ph"] == "C" and e["name"].startswith("chip_wire: chip links"):
            peaks[e["name"]] = max(peaks.get(e["name"], 0.0), e["args"].get("util", 0.0))
    assert len(peaks) == 8  # 4 chips x 2 directions
    assert sorted(round(v, 6) for v in peaks.values()) == [0.0] * 4 + [1.0] * 4


def test_energy_counts_collective_link_bytes_including_standalone_collective_ops(compiled_two_chip):
    # A collective op the compiler inserts between graph operators (kind "collective", no graph operator) and
    # a collective attached to a graph operator both add their link bytes x chip_link pJ/byte to the energy.
    from dataclasses import replace

    from elk_dse.cost.energy import PJ, program_energy

    graph, prog = compiled_two_chip
    c = Collective("all_reduce", 1 * MB, (0, 1), "ring")  # ring of 2: 2 steps x 2 chips x B/2 = 2 B
    plan = Plan(spatial=(), cores_used=1, sram_bytes_per_core=0)
    standalone = ProgramOp(index=0, name="tp_all_reduce", kind="collective", layer="l", repetition=0, dims=(),
                           flops=0.0, weight_bytes=0.0, kv_cache_bytes=0.0, plan=plan,
                           work=OpWork(0.0, collectives=(c,)))
    first = replace(prog.ops[0], work=replace(prog.ops[0].work, collectives=(c,)))
    with_c = replace(prog, ops=(first, *prog.ops[1:3], standalone, *prog.ops[3:]))
    base = program_energy(prog, graph, 1e-3).level("chip_link")
    more = program_energy(with_c, graph, 1e-3).level("chip_link")
    assert more - base == pytest.approx(2 * 2 * MB * prog.chip.energy_table.chip_link_pj_per_byte * PJ)
    with pytest.raises(ValueError, match="operator instances"):
        program_energy(replace(prog, ops=prog.ops[:-1]), graph, 1e-3)


def test_line_gather_all_reduce_hand_count_and_never_picked_by_auto():
    """issue 17t: tt_transformers' all_reduce on a mesh axis (an all_gather of whole partial buffers, then a local
    sum). A line of 4 chips, B bytes each: 3 steps, every chip passes one whole buffer to each neighbour per step;
    the 6 directed links carry 3 B each, 18 B in all; each chip receives 3 B (a ring all_reduce: 2 x 3/4 B)."""
    line4 = system("mesh", 4, [1, 4], latency_ns=1000.0)
    b = 65536.0
    c = collective_cost(Collective("all_reduce", b, (0, 1, 2, 3), "line_gather"), line4)
    assert c.algorithm == "line_gather" and c.steps == 3
    assert c.link_bytes == pytest.approx(18 * b)
    assert c.max_port_bytes == pytest.approx(2 * 3 * b)  # an inner chip sends 3 B to each of its 2 neighbours
    assert "line_gather" in EXPLICIT_ONLY
    for nbytes in (64.0, 1024.0, 1e6, 1e9):  # auto never picks it, even where it would be fastest
        assert collective_cost(Collective("all_reduce", nbytes, (0, 1, 2, 3)), line4).algorithm != "line_gather"
