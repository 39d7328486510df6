"""Analytic vs event simulator on the points of sweeps/studies/sim_agreement.yaml -> docs/sim_agreement.md.

    python benchmarks/sim_agreement.py [docs folder]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import yaml

from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Program
from elk_dse.sim import simulate
from elk_dse.sim.event import EventSimulator

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    docs = Path(argv[0]) if argv else ROOT / "docs"
    points = yaml.safe_load((ROOT / "sweeps" / "studies" / "sim_agreement.yaml").read_text())["points"]
    rows, diffs = [], []
    for p in points:
        chip = chip_from_dict(yaml.safe_load((ROOT / "conf" / "chip" / f"{p['chip']}.yaml").read_text()))
        cfg = ModelConfig(p["model"], phase=p["phase"], batch=p["batch"], seq_len=p.get("seq_len", 2048),
                          kv_len=p.get("kv_len", 2048))
        program = compile_graph(build_model(cfg), chip, SchedulerConfig(name=p["scheduler"]))
        label = (f"{p['chip']} | {p['model']} {p['phase']} b{p['batch']}"
                 + (f" kv{p['kv_len']}" if p["phase"] == "decode" else f" s{p.get('seq_len', '')}")
                 + f" | {p['scheduler']}")
        if not isinstance(program, Program):
            rows.append(f"| {label} | infeasible ({program.reason}) | | | | |")
            continue
        analytic = simulate(program, "analytic").latency_s
        sim = EventSimulator()
        t0 = time.perf_counter()
        event = sim.run(program).latency_s
        wall = time.perf_counter() - t0
        diff = event / analytic - 1
        diffs.append(abs(diff))
        rows.append(f"| {label} | {analytic * 1e3:.3f} | {event * 1e3:.3f} | {100 * diff:+.1f}% | "
                    f"{sim.stats['events']} | {wall:.2f} |")
        print(rows[-1], flush=True)
    summary = (f"{len(diffs)} feasible points: median |difference| {100 * statistics.median(diffs):.1f}%, "
               f"max {100 * max(diffs):.1f}%")
    table = "\n".join(["| chip | workload | scheduler | analytic ms | event ms | event/analytic - 1 | events | "
                       "event wall s |", "|---|---|---|---|---|---|---|---|", *rows])
    path = docs / "sim_agreement.md"
    head = path.read_text().split("<!-- generated -->")[0] if path.exists() else "# Simulator agreement\n\n"
    path.write_text(head + "<!-- generated -->\n\n" + summary + "\n\n" + table + "\n")
    print(summary)


if __name__ == "__main__":
    main(sys.argv[1:])
