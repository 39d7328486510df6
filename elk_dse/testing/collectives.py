"""Conformance suite for collective algorithms (``elk_dse.cost.collectives``): every registered one must pass.

Usage (tests/test_collectives.py parametrizes over the registry, so a new algorithm is checked without editing
anything)::

    from elk_dse.testing.collectives import check_algorithm, example_systems
    for label, system, group in example_systems():
        check_algorithm("ring", system, group)

For every kind the algorithm does on each example system and group (rings, a 2x4 and a 4x8 mesh, a torus, a
switch, a subgroup in a scrambled order), it checks:

- data volume: every chip sends and receives at least what the kind needs (all_gather: (n-1)/n of its output
  from the others; reduce_scatter: (n-1)/n of its input leaves it; all_reduce: both; all_to_all: (n-1)/n of
  its buffer each way; broadcast: every non-root receives the buffer; send_recv: the destination receives it);
  the busiest chip of an all_reduce moves at least the 2(n-1)/n bound of Patarasuk & Yuan;
- routing: the link bytes ``collective_cost`` reports equal the schedule's flows x their route lengths (hop
  counts from the topology), and the busiest port equals the port loads summed from the flows' routes;
- time: at least the bandwidth bound (the busiest port's bytes / ``chips.link_gb_s``, and the kind's minimum
  bytes / ``chips.link_gb_s``) plus the startup, and monotone in the size;
- steps: at least ceil(log_{1+f} n) with f the most chips one chip sends to in one step (information from n
  chips cannot reach a chip in fewer rounds);
- both simulators time a Program of the collective alike (within ``SIM_AGREEMENT``).

Each check raises AssertionError naming the algorithm, the kind, the system and what differs.
"""

from __future__ import annotations

import math

import numpy as np

from elk_dse.cost.collectives import (
    ALGORITHMS,
    KINDS,
    Collective,
    collective_cost,
    collective_schedule,
)
from elk_dse.hw.chip import GB, Chip, chip_from_dict

SIM_AGREEMENT = 0.05  # the bound between the event and the analytic simulator on collectives
BYTES = 3 * 2**20  # a buffer size divisible by the group sizes' pieces used below (in bytes)


def example_system(topology: str, count: int, grid: list[int] | None = None, link_gb_s: float = 100.0,
                   latency_ns: float = 1000.0, startup_us: float = 2.0) -> Chip:
    """A system of ``count`` small chips (4-core mesh each) joined as ``topology``."""
    chips: dict = {"count": count, "topology": topology, "link_gb_s": link_gb_s, "link_latency_ns": latency_ns}
    if grid is not None:
        chips["grid"] = grid
    return chip_from_dict({
        "name": f"{topology}{count}", "clock_ghz": 1.0,
        "cores": {"count": 4, "grid": [2, 2], "sram_kib": 1024},
        "interconnect": {"topology": "mesh", "link_bytes_per_cycle": 32},
        "hbm": {"bandwidth_gb_s": 100, "capacity_gib": 16},
        "chips": chips, "overheads": {"collective_startup_us": startup_us}})


def example_systems() -> list[tuple[str, Chip, tuple[int, ...]]]:
    """(label, system, group) the suite checks every algorithm on."""
    ring8 = example_system("ring", 8)
    mesh24 = example_system("mesh", 8, [2, 4])
    return [
        ("ring2", example_system("ring", 2), (0, 1)),
        ("ring5", example_system("ring", 5), tuple(range(5))),
        ("ring8", ring8, tuple(range(8))),
        ("ring8-subgroup", ring8, (6, 1, 3, 4)),
        ("mesh2x4", mesh24, tuple(range(8))),
        ("mesh4x8", example_system("mesh", 32, [4, 8]), tuple(range(32))),
        ("torus4x4", example_system("torus", 16, [4, 4]), tuple(range(16))),
        ("switch8", example_system("all_to_all", 8), tuple(range(8))),
    ]


def _fail(name: str, kind: str, label: str, what: str) -> AssertionError:
    return AssertionError(f"collective algorithm {name}, {kind} on {label}: {what}")


def _flows(c: Collective, system: Chip, name: str):
    """Per phase: (source chips, destination chips, bytes per flow per step, steps)."""
    sched, chips = collective_schedule(c, system, name)
    g = np.asarray(chips, dtype=np.int64)
    return [(g[np.asarray(ph.src, dtype=np.int64)], g[np.asarray(ph.dst, dtype=np.int64)],
             ph.fraction * c.bytes_per_chip, ph.steps) for ph in sched]


def _needs(kind: str, n: int, b: float) -> tuple[float, float]:
    """(bytes every member must send, bytes every member must receive) end to end, for a collective of ``b``;
    broadcast and send_recv are checked per role instead."""
    piece = (n - 1) / n * b
    return {
        "all_gather": (0.0, piece),
        "reduce_scatter": (piece, 0.0),
        "all_reduce": (piece, piece),
        "all_to_all": (piece, piece),
    }.get(kind, (0.0, 0.0))


def check_algorithm(name: str, system: Chip, group: tuple[int, ...], label: str = "") -> int:
    """Run every check for algorithm ``name`` on ``system`` over ``group``; returns how many kinds it does
    there (0 is allowed: an algorithm may not apply to a group)."""
    label = label or system.name
    done = 0
    bw = system.chips.link_gb_s * GB
    topo = system.chip_topology
    for kind in KINDS:
        grp = group[:2] if kind == "send_recv" else group
        c = Collective(kind, float(BYTES), grp, name)
        try:
            cost = collective_cost(c, system)
        except Exception as err:  # noqa: BLE001 -- "does not do" is the only allowed refusal
            if "does not do" in str(err):
                continue
            raise _fail(name, kind, label, f"collective_cost raised {err!r}") from err
        done += 1
        m = len(grp)
        phases = _flows(c, system, name)
        sent = np.zeros(system.num_chips)
        recv = np.zeros(system.num_chips)
        link_bytes = 0.0
        ports = np.zeros((2, system.num_chips))
        for src, dst, per_flow, steps in phases:
            if np.any(src == dst):
                raise _fail(name, kind, label, "a flow from a chip to itself")
            np.add.at(sent, src, per_flow * steps)
            np.add.at(recv, dst, per_flow * steps)
            link_bytes += float(topo.hops(src, dst).sum()) * per_flow * steps
            _, here, there = topo.node_hops(src, dst)  # every hop leaves here's output port, enters there's input
            np.add.at(ports[0], here, per_flow * steps)
            np.add.at(ports[1], there, per_flow * steps)
        b = float(BYTES)
        tol = 1e-9 * b
        need_send, need_recv = _needs(kind, m, b)
        members = np.asarray(grp)
        if kind == "broadcast":
            need = recv[members[1:]]
            if need.size and need.min() < b - tol:
                raise _fail(name, kind, label, f"a non-root chip receives {need.min():.0f} of {b:.0f} bytes")
        elif kind == "send_recv":
            if recv[grp[1]] < b - tol:
                raise _fail(name, kind, label, f"the destination receives {recv[grp[1]]:.0f} of {b:.0f} bytes")
        else:
            if sent[members].min() < need_send - tol:
                raise _fail(name, kind, label, f"a chip sends {sent[members].min():.0f} bytes, needs {need_send:.0f}")
            if recv[members].min() < need_recv - tol:
                raise _fail(name, kind, label, f"a chip receives {recv[members].min():.0f} bytes, "
                            f"needs {need_recv:.0f}")
        if kind == "all_reduce" and max(sent.max(), recv.max()) < 2 * (m - 1) / m * b - tol:
            raise _fail(name, kind, label, "every chip moves less than the 2(n-1)/n all-reduce bound")
        outside = np.setdiff1d(np.arange(system.num_chips), members)
        if outside.size and (sent[outside].any() or recv[outside].any()):
            raise _fail(name, kind, label, "a chip outside the group sends or receives collective data")
        if not math.isclose(cost.link_bytes, link_bytes, rel_tol=1e-9, abs_tol=tol):
            raise _fail(name, kind, label, f"link bytes {cost.link_bytes:.0f} != flows x hops {link_bytes:.0f}")
        if not math.isclose(cost.max_port_bytes, float(ports.max()), rel_tol=1e-9, abs_tol=tol):
            raise _fail(name, kind, label, f"busiest port {cost.max_port_bytes:.0f} != routed {ports.max():.0f}")
        startup = system.overheads.collective_startup_s
        bound = startup + max(cost.max_port_bytes, need_send, need_recv) / bw
        if cost.time_s < bound * (1 - 1e-9):
            raise _fail(name, kind, label, f"{cost.time_s:.3e} s beats the bandwidth bound {bound:.3e} s")
        # The most distinct chips one chip sends to in one step.
        fanout = max(int(np.bincount(np.unique(src * system.num_chips + dst) // system.num_chips).max())
                     for src, dst, _, _ in phases)
        low = math.ceil(math.log(m) / math.log(1 + fanout) - 1e-9) if m > 1 else 0
        if cost.steps < low:
            raise _fail(name, kind, label, f"{cost.steps} steps < ceil(log_{1 + fanout} {m}) = {low}")
        bigger = collective_cost(Collective(kind, 2.0 * BYTES, grp, name), system)
        if bigger.time_s < cost.time_s:
            raise _fail(name, kind, label, "twice the bytes take less time")
        _check_simulators(name, c, system, cost.time_s, label)
    return done


def _check_simulators(name: str, c: Collective, system: Chip, expected_s: float, label: str) -> None:
    """Both simulators time a Program whose one operator runs ``c`` within SIM_AGREEMENT of collective_cost."""
    from elk_dse.program import OpWork, Plan, Program, ProgramOp
    from elk_dse.sim import simulate

    plan = Plan(spatial=(), cores_used=1, sram_bytes_per_core=0)
    op = ProgramOp(index=0, name="c", kind="collective", layer="l", repetition=0, dims=(), flops=0.0,
                   weight_bytes=0.0, kv_cache_bytes=0.0, plan=plan, work=OpWork(0.0, collectives=(c,)))
    prog = Program(chip=system, model="t", phase="decode", scheduler="sequential", ops=(op,), parameter_bytes=0.0,
                   load_order=(0,))
    for sim in ("analytic", "event"):
        got = simulate(prog, sim).latency_s
        if abs(got - expected_s) > SIM_AGREEMENT * expected_s:
            raise _fail(name, c.kind, label, f"{sim} simulator {got:.4e} s vs collective_cost {expected_s:.4e} s")


def check_all() -> dict[str, int]:
    """Every registered algorithm on every example: kinds checked per algorithm."""
    return {name: sum(check_algorithm(name, s, g, label) for label, s, g in example_systems())
            for name in ALGORITHMS}
