"""Collective times predicted by cost/collectives.py against tt-metal's measured CCL table (Wormhole), no fitting.

`make ccl-table` (or `python benchmarks/ccl_compare.py`) prints a markdown table for docs/collectives.md;
`python benchmarks/ccl_compare.py agreement` prints the event vs analytic simulator difference on every
registered algorithm x kind x size over the conformance suite's example systems; `... speed` times
collective_cost (auto all_reduce, cold and warm route cache) from 8 to 65,536 chips.

Measured: tenstorrent/tt-metal tech_reports/CCLs/results/SUMMARY_wormhole_b0_bfloat16_6144.md at commit
3a4ad18f8339803dec5abf8f5654165b5f86e667 (read 2026-11-28): kernel time (us) of one call, bfloat16, DRAM
buffers, `size` = nccl-tests' bytes (all_reduce: the buffer; all_gather: each chip's output; reduce_scatter:
each chip's input; all_to_all: what each chip sends). n=2 and n=4 ran as a line of chips, n=8 as a ring (T3K).

Predicted: the shipped conf/chip/wormhole_t3k.yaml (link_gb_s per chip and direction = its 2.5 neighbours on
average x the bandwidth per neighbour; link_latency_ns) as a 2x4 mesh for n=8; for n=4 a 1x4 mesh (a line) and
for n=2 two chips, with link_gb_s = the same bandwidth per neighbour x the mean neighbours (1.5 and 1);
collective_startup_us 0 ("hw": the hardware alone) and
with the startup constant the same report fits per collective ("+startup": 9.07 / 4.47 / 3.23 / 2.99 us; it is
derived from this table, so that column is not an independent check of the latency term).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import yaml

from elk_dse.cost.collectives import Collective, collective_cost
from elk_dse.hw.chip import chip_from_dict

CONF = Path(__file__).resolve().parents[1] / "conf" / "chip"
SIZES = (65536, 1048576, 16777216, 268435456)
# kind -> n -> measured kernel time (us) at SIZES
MEASURED = {
    "all_reduce": {2: (24.44, 162.98, 2283.72, 36184.58), 4: (39.44, 190.05, 2416.04, 36474.06),
                   8: (44.73, 150.71, 1617.50, 25694.01)},
    "all_gather": {2: (12.20, 89.16, 1326.64, 21124.23), 4: (14.16, 77.50, 1081.98, 17158.09),
                   8: (20.36, 69.56, 727.02, 11310.31)},
    "reduce_scatter": {2: (12.88, 75.16, 958.92, 15057.83), 4: (22.33, 101.24, 1272.37, 19205.85),
                       8: (24.70, 80.92, 882.38, 14137.43)},
    "all_to_all": {2: (9.47, 87.27, 1322.93, 21389.25), 4: (17.70, 102.36, 1472.35, 23395.42),
                   8: (27.02, 138.96, 2049.34, 32602.88)},
}
T3K_MEAN_NEIGHBOURS = 2.5  # a 2x4 mesh: corners 2 neighbours, inner chips 3
REPORT_STARTUP_US = {"all_reduce": 9.07, "all_gather": 4.47, "reduce_scatter": 3.23, "all_to_all": 2.99}


def system(n: int, startup_us: float):
    d = yaml.safe_load((CONF / "wormhole_t3k.yaml").read_text())
    chips = dict(d["chips"])
    per_neighbour = chips["link_gb_s"] / T3K_MEAN_NEIGHBOURS
    if n == 4:  # a line: 1.5 neighbours on average
        chips.update(count=4, topology="mesh", grid=[1, 4], link_gb_s=per_neighbour * 1.5)
    elif n == 2:  # one neighbour
        chips.update(count=2, topology="ring", grid=None, link_gb_s=per_neighbour * 1)
    d["chips"] = {k: v for k, v in chips.items() if v is not None}
    d["overheads"] = {**d.get("overheads", {}), "collective_startup_us": startup_us}
    return chip_from_dict(d)


def rows() -> list[tuple]:
    out = []
    for kind, by_n in MEASURED.items():
        for n, times in by_n.items():
            hw, st = system(n, 0.0), system(n, REPORT_STARTUP_US[kind])
            for size, measured in zip(SIZES, times, strict=True):
                c = Collective(kind, float(size), tuple(range(n)))
                a, b = collective_cost(c, hw), collective_cost(c, st)
                out.append((kind, n, size, measured, a.algorithm, a.time_s * 1e6, b.time_s * 1e6))
    return out


def agreement() -> None:
    from elk_dse.cost.collectives import ALGORITHMS, KINDS
    from elk_dse.program import OpWork, Plan, Program, ProgramOp
    from elk_dse.sim import simulate
    from elk_dse.testing.collectives import example_systems

    diffs = []
    plan = Plan(spatial=(), cores_used=1, sram_bytes_per_core=0)
    for label, s, g in example_systems():
        for name in ALGORITHMS:
            for kind in KINDS:
                grp = g[:2] if kind == "send_recv" else g
                for size in (4096.0, 3 * 2**20, 256 * 2**20):
                    c = Collective(kind, size, grp, name)
                    try:
                        collective_cost(c, s)
                    except Exception:  # noqa: BLE001 -- the algorithm does not do this kind here
                        continue
                    op = ProgramOp(0, "c", "collective", "l", 0, (), 0.0, 0.0, 0.0, plan,
                                   OpWork(0.0, collectives=(c,)))
                    prog = Program(s, "t", "decode", "sequential", (op,), 0.0, load_order=(0,))
                    a, e = simulate(prog, "analytic").latency_s, simulate(prog, "event").latency_s
                    diffs.append((abs(e - a) / a, label, name, kind, size))
    diffs.sort(reverse=True)
    print(f"{len(diffs)} cases; median |event/analytic - 1| {statistics.median(d[0] for d in diffs):.2e}, "
          f"max {diffs[0][0]:.2e} ({diffs[0][1]}, {diffs[0][2]}, {diffs[0][3]}, {diffs[0][4]:.0f} B)")


def speed() -> None:
    import time

    from elk_dse.hw.resources import _ROUTED
    from elk_dse.testing.collectives import example_system

    print("| chips | topology | auto algorithm | time (ms) | cold (s) | warm, median of 5 (us) |")
    print("|--:|--|--|--:|--:|--:|")
    for topo, n, grid in (("ring", 8, None), ("mesh", 32, [4, 8]), ("ring", 4096, None),
                          ("ring", 65536, None), ("torus", 65536, [256, 256])):
        s = example_system(topo, n, grid)
        c = Collective("all_reduce", 1e8, tuple(range(n)))
        _ROUTED.clear()
        t0 = time.perf_counter()
        collective_cost(c, s)
        cold = time.perf_counter() - t0
        warms = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = collective_cost(c, s)
            warms.append(time.perf_counter() - t0)
        warm = statistics.median(warms)
        label = topo if grid is None else f"{topo} {grid[0]}x{grid[1]}"
        print(f"| {n:,} | {label} | {r.algorithm} | {r.time_s * 1e3:.3f} | {cold:.3f} | {warm * 1e6:.0f} |")


def main() -> None:
    if sys.argv[1:] == ["agreement"]:
        agreement()
        return
    if sys.argv[1:] == ["speed"]:
        speed()
        return
    table = rows()
    print("| collective | n | bytes | measured (us) | algorithm (auto) | hw (us) | error | +startup (us) | error |")
    print("|--|--:|--:|--:|--|--:|--:|--:|--:|")
    errs_hw, errs_st = [], []
    for kind, n, size, measured, alg, hw, st in table:
        e1, e2 = hw / measured - 1, st / measured - 1
        errs_hw.append(abs(e1))
        errs_st.append(abs(e2))
        print(f"| {kind} | {n} | {size:,} | {measured:,.1f} | {alg} | {hw:,.1f} | {e1:+.0%} | {st:,.1f} | {e2:+.0%} |")
    print()
    print(f"median |error|: hw {statistics.median(errs_hw):.0%}, +startup {statistics.median(errs_st):.0%}; "
          f"max: hw {max(errs_hw):.0%}, +startup {max(errs_st):.0%} ({len(table)} points)")


if __name__ == "__main__":
    main()
