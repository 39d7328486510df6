"""Soak: one long sweep on a cheap space, with the driver's resident memory sampled once a second.

The space is the default one on mesh64 / Llama-2-7B decode with the sequential scheduler (the cheapest
evaluation), batches of 32, 2 Ray workers. Prints trials/min and the driver's RSS at start, peak and end.

    python benchmarks/soak.py [n_trials] [workers]   (make bench runs it with BENCH_SOAK_TRIALS, default 10000;
                                                      workers 0 = in-process, issue 21's driver-memory check)
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import threading
import time
from pathlib import Path


def rss_mib() -> float:
    """Resident set size of this process, MiB (from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(n: int = 10_000, workers: int = 2) -> dict[str, float]:
    from elk_dse.cli import main as cli_main
    from elk_dse.results.store import ResultStore

    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), rss_mib()))
            stop.wait(1.0)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "soak"
        # Warm up Ray and the imports first, so the start sample is the driver of a running sweep.
        with contextlib.redirect_stdout(io.StringIO()):
            cli_main(["sweep", "+chip=mesh64", "scheduler=sequential", f"out={tmp}/warm", "search.n_trials=32",
                      f"search.workers={workers}", "progress=false", "report=false"])
        thread = threading.Thread(target=sample, daemon=True)
        t0 = time.perf_counter()
        thread.start()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(["sweep", "+chip=mesh64", "scheduler=sequential", f"out={out}", f"search.n_trials={n}",
                             f"search.workers={workers}", "progress=false", "report=false"])
        wall = time.perf_counter() - t0
        stop.set()
        thread.join()
        assert code == 0
        rows = ResultStore(out).read()
        assert list(rows["trial"]) == list(range(n)), "the soak lost or duplicated trials"
    rss = [r for _, r in samples]
    return {"trials": n, "wall_s": wall, "trials_per_min": n / wall * 60, "rss_start_mib": rss[0],
            "rss_peak_mib": max(rss), "rss_end_mib": rss[-1]}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2  # 0: in-process (the driver holds the caches)
    r = soak(n, workers)
    print(f"{'soak (' + str(n) + f' trials, default space, sequential, {workers} workers)':<52} {'value':>10}")
    print(f"{'  trials/min':<52} {r['trials_per_min']:>10.0f}")
    print(f"{'  wall, s':<52} {r['wall_s']:>10.0f}")
    print(f"{'  driver RSS at start / peak / end, MiB':<52} {r['rss_start_mib']:>6.0f} / {r['rss_peak_mib']:.0f} / "
          f"{r['rss_end_mib']:.0f}", flush=True)


if __name__ == "__main__":
    main()
