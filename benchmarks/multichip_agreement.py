"""Analytic vs event simulator on every multi-chip validation point (issue 17's "Done means": within 5%).

Each point of elk_dse/validation/points.yaml whose system has more than one chip is evaluated with both
simulators, on its chip, model, scheduler and software stack as shipped (conf/stack/: the fitted values are
the ones `validate` wrote there). Prints a markdown table; `python benchmarks/multichip_agreement.py`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import load_stack
from elk_dse.models.config import model_config_from_dict
from elk_dse.sim import SimConfig
from elk_dse.validation.suite import _merge, chip_data, points


def main() -> int:
    rows = []
    for p in points():
        chip = chip_from_dict(_merge(chip_data(p.chip), p.chip_overrides))
        if chip.num_chips < 2:
            continue
        cfg = model_config_from_dict({"phase": "decode", **p.model})
        base = DesignPoint(chip, cfg, SchedulerConfig(name=p.scheduler), stack=load_stack(p.stack))
        out = {}
        for sim in ("analytic", "event"):
            t0 = time.perf_counter()
            r = evaluate(replace(base, sim=SimConfig(sim)), include_ops=False)
            out[sim] = (r["latency_s"] if r["feasible"] else float("nan"), time.perf_counter() - t0,
                        (r.get("parallelism") or {}).get("strategy", "all_core"))
        a, e = out["analytic"][0], out["event"][0]
        rows.append((p.id, p.chip, out["analytic"][2], p.scheduler, a * 1e3, e * 1e3, e / a - 1, out["event"][1]))
        print(f"{p.id}: {a * 1e3:.3f} / {e * 1e3:.3f} ms", file=sys.stderr, flush=True)
    print("| point | system | parallelism | scheduler | analytic (ms) | event (ms) | event / analytic - 1 | event s |")
    print("|---|---|---|---|--:|--:|--:|--:|")
    for pid, chip, par, sched, a, e, d, t in rows:
        print(f"| {pid} | {chip} | {par} | {sched} | {a:.3f} | {e:.3f} | {d:+.2%} | {t:.1f} |")
    diffs = [abs(r[6]) for r in rows if r[6] == r[6]]
    print(f"\n{len(rows)} multi-chip points; max |difference| {max(diffs):.2%}, "
          f"median {sorted(diffs)[len(diffs) // 2]:.2%}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
