"""Search efficiency: hypervolume NSGA-II, TPE and random sampling reach after 10% and 25% of an exhaustive grid's evaluations.

A 4-parameter space of choices on mesh64 / Llama-2-7B decode (latency vs area, both minimized). The grid is
evaluated in full; each sampler runs in-process with the same evaluation function. Hypervolume (2-D, exact) is
taken against a reference point 10% beyond the worst feasible grid values, relative to the grid front's. Each sampler runs with 5 seeds; the table gives the mean and the worst.

    python benchmarks/search_efficiency.py
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import yaml

from elk_dse.cli import main as cli_main
from elk_dse.results.store import ResultStore

SPACE = {
    "description": "4-parameter efficiency benchmark",
    "objectives": [{"metric": "latency_s", "direction": "minimize"}, {"metric": "area_mm2", "direction": "minimize"}],
    "params": {
        "chip.cores.sram_kib": {"choices": [512, 1024, 2048, 4096]},
        "chip.cores.matrix_rows": {"choices": [8, 16, 32, 64]},
        "chip.interconnect.link_bytes_per_cycle": {"choices": [16, 32, 64, 128]},
        "chip.hbm.bandwidth_gb_s": {"choices": [400, 800, 1600, 3200]},
    },
}


def hypervolume_2d(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact dominated area of minimization points below ``ref``."""
    pts = points[(points < ref).all(axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.argsort(pts[:, 0])]
    # Vertical slabs between consecutive x: the front's height there is the running minimum of y.
    xs = np.append(pts[:, 0], ref[0])
    ys = np.minimum.accumulate(pts[:, 1])
    return float(np.sum((xs[1:] - xs[:-1]) * (ref[1] - ys)))


def run(out: Path, sampler: str, n: int, seed: int = 0) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(["sweep", "+chip=mesh64", f"sweep={out.parent / 'space.yaml'}", f"out={out}",
                         f"search.sampler={sampler}", f"search.n_trials={n}", "search.batch_size=8",
                         f"search.seed={seed}", "search.workers=0", "progress=false", "report=false"])
    assert code == 0
    df = ResultStore(out).read()
    ok = df[df["status"] == "COMPLETE"]
    return ok[["metric.latency_s", "metric.area_mm2"]].to_numpy(dtype=float)


SEEDS = (0, 1, 2, 3, 4)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "space.yaml").write_text(yaml.safe_dump(SPACE))
        grid = run(tmp / "grid", "grid", 256)
        ref = grid.max(axis=0) * 1.1
        hv_grid = hypervolume_2d(grid, ref)
        print(f"{'search efficiency (grid of 256, 4 params)':<36} {'evals':>6} {'HV/grid mean':>13} {'min':>6} "
              f"({len(SEEDS)} seeds)")
        for sampler in ("nsga2", "tpe", "random"):
            for frac in (0.10, 0.25):
                n = int(round(256 * frac))
                ratios = [hypervolume_2d(run(tmp / f"{sampler}_{n}_{seed}", sampler, n, seed), ref) / hv_grid
                          for seed in SEEDS]
                print(f"  {sampler:<34} {n:>6} {np.mean(ratios):>13.3f} {np.min(ratios):>6.3f}", flush=True)


if __name__ == "__main__":
    main()
