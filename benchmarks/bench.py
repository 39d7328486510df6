"""make bench: wafer-scale points (`python benchmarks/bench.py wafer` alone), parallelism=auto vs a fixed choice
(`python benchmarks/bench.py parallel` alone), seconds per design point (cold and warm plan cache) and sweep throughput with 1 and 2 workers.

Prints one table; numbers go into docs/benchmarks.md by hand with the date and machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import yaml  # noqa: E402

from elk_dse.compiler.compile import clear_plan_cache  # noqa: E402
from elk_dse.compiler.schedulers import SchedulerConfig  # noqa: E402
from elk_dse.evaluate import DesignPoint, evaluate  # noqa: E402
from elk_dse.hw.chip import chip_from_dict  # noqa: E402
from elk_dse.models import ModelConfig  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf" / "chip"

POINTS = [
    ("mesh64", ModelConfig("llama2_7b", phase="decode", batch=1, kv_len=2048)),
    ("ipu_pod4", ModelConfig("llama2_13b", phase="decode", batch=32, kv_len=2048)),
    ("torus256", ModelConfig("resnet50", phase="prefill", batch=8)),
]


def chip(name: str):
    return chip_from_dict(yaml.safe_load((CONF / f"{name}.yaml").read_text()))


def time_point(chip_name: str, model: ModelConfig, repeats: int = 3) -> tuple[float, float, bool]:
    from elk_dse.compiler.t10 import clear_tables

    point = DesignPoint(chip(chip_name), model, SchedulerConfig())
    clear_plan_cache()
    clear_tables()
    t0 = time.perf_counter()
    result = evaluate(point, include_ops=False)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate(point, include_ops=False)
        warm.append(time.perf_counter() - t0)
    return cold, statistics.median(warm), result["feasible"]


def ray_for(workers: int) -> None:
    """(Re)start a local Ray as the CLI would for ``workers`` (num_cpus = workers; none for 0) and warm it up
    with a 4-trial sweep, so that timed sweeps measure the sweep and not Ray's start-up."""
    import ray

    from elk_dse.cli import main

    if ray.is_initialized():
        ray.shutdown()
    if workers:
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        assert main(["sweep", "+chip=mesh64", f"out={tmp}/s", "search.n_trials=4", f"search.workers={workers}",
                     "progress=false", "report=false"]) == 0


def sweep_rate(workers: int, n_trials: int) -> float:
    """Trials/min of the default space (mesh64, Llama-2-7B decode) with ``workers`` (0 = in-process)."""
    from elk_dse.cli import main

    ray_for(workers)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        code = main(["sweep", "+chip=mesh64", f"out={tmp}/s", f"search.n_trials={n_trials}",
                     f"search.workers={workers}", "progress=false", "report=false"])
        elapsed = time.perf_counter() - t0
    assert code == 0
    return n_trials / elapsed * 60


def t10_compile() -> None:
    """Plan-table throughput and the issue-3 compile targets (Llama-2-13B decode b32 kv2048 on ipu_pod4)."""
    from elk_dse.compiler.compile import compile_with_stats
    from elk_dse.compiler.t10 import build_table, clear_tables
    from elk_dse.models import build_model

    pod = chip("ipu_pod4")
    graph = build_model(ModelConfig("llama2_13b", phase="decode", batch=32, kv_len=2048))
    colds, warms = [], []
    for _ in range(3):
        clear_plan_cache()
        clear_tables()
        t0 = time.perf_counter()
        _, stats = compile_with_stats(graph, pod, SchedulerConfig())
        colds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        compile_with_stats(graph, pod, SchedulerConfig())
        warms.append(time.perf_counter() - t0)
    print(f"{'compile llama2_13b decode b32 kv2048 on ipu_pod4 (5,888 cores)':<64} {'seconds':>8}")
    print(f"{'  cold (plan tables and plan cache empty), median of 3':<64} {statistics.median(colds):>8.3f}")
    print(f"{'  warm (caches filled), median of 3':<64} {statistics.median(warms):>8.3f}")
    print(f"{'  operator instances / unique plans computed':<64} {stats.op_instances:>4} / {stats.plans_computed}")
    bert = build_model(ModelConfig("bert_large", phase="prefill", batch=8, seq_len=384))
    mk2 = chip("ipu_mk2")
    for name, g, c in (("llama2_13b decode on ipu_pod4", graph, pod), ("bert_large b8 s384 on ipu_mk2", bert, mk2)):
        ops = {op.signature: op for layer in g.layers for op in layer.ops}
        t0 = time.perf_counter()
        plans = sum(len(build_table(op, c)) for op in ops.values())
        dt = time.perf_counter() - t0
        print(f"{'  plans enumerated and costed per second, ' + name:<64} {plans / dt:>8.0f}")
    print()


def schedulers_per_point() -> None:
    """Issue 4 targets: seconds per design point per scheduler, Llama-2-13B b32 KV 2048 on ipu_pod4; warm =
    plan tables cached and only HBM/network parameters changed (a new chip object each time)."""
    import yaml as _yaml

    from elk_dse.compiler.schedulers import SCHEDULERS
    from elk_dse.compiler.t10 import clear_tables

    base = _yaml.safe_load((CONF / "ipu_pod4.yaml").read_text())
    model = ModelConfig("llama2_13b", phase="decode", batch=32, kv_len=2048)
    print(f"{'scheduler (llama2_13b b32 kv2048, ipu_pod4)':<44} {'cold s':>8} {'warm s':>8} {'latency ms':>11}")
    for name in SCHEDULERS:
        clear_plan_cache()
        clear_tables()
        t0 = time.perf_counter()
        result = evaluate(DesignPoint(chip_from_dict(base), model, SchedulerConfig(name=name)), include_ops=False)
        cold = time.perf_counter() - t0
        warm = []
        for bw in (3000, 3500, 4500):
            changed = {**base, "hbm": {**base["hbm"], "bandwidth_gb_s": bw},
                       "interconnect": {**base["interconnect"], "link_bytes_per_cycle": bw / 1000}}
            t0 = time.perf_counter()
            evaluate(DesignPoint(chip_from_dict(changed), model, SchedulerConfig(name=name)), include_ops=False)
            warm.append(time.perf_counter() - t0)
        print(f"{name:<44} {cold:>8.3f} {statistics.median(warm):>8.3f} {result['latency_s'] * 1e3:>11.2f}")
    print()


def event_sim() -> None:
    """Issue 5 targets: event-simulation wall time and events/s, Llama-2-13B decode (elk_full)."""
    from elk_dse.compiler.compile import compile_graph
    from elk_dse.models import build_model
    from elk_dse.sim.event import EventSimulator

    print(f"{'event simulation, llama2_13b decode, elk_full':<52} {'wall s':>8} {'events':>8} {'events/s':>9} "
          f"{'mode':>10}")
    for chip_name, batch in (("mesh64", 1), ("ipu_pod4", 32)):
        program = compile_graph(build_model(ModelConfig("llama2_13b", batch=batch, kv_len=2048)), chip(chip_name),
                                SchedulerConfig(name="elk_full"))
        sim = EventSimulator()
        t0 = time.perf_counter()
        sim.run(program)
        wall = time.perf_counter() - t0
        label = f"  {chip_name} (batch {batch})"
        print(f"{label:<52} {wall:>8.2f} {sim.stats['events']:>8} {sim.stats['events'] / wall:>9.0f} "
              f"{sim.stats['mode']:>10}")
    print()


REUSE_SPACE = {  # only HBM and link figures change: every trial reuses the cached plan tables
    "objectives": [{"metric": "latency_s", "direction": "minimize"}, {"metric": "area_mm2", "direction": "minimize"}],
    "params": {"chip.hbm.bandwidth_gb_s": {"low": 200, "high": 3200, "log": True},
               "chip.interconnect.link_bytes_per_cycle": {"choices": [16, 32, 64, 128]}},
}
COMPILE_SPACE = {  # the core changes: nearly every trial builds its plan tables anew
    "objectives": [{"metric": "latency_s", "direction": "minimize"}, {"metric": "area_mm2", "direction": "minimize"}],
    "params": {"chip.cores.sram_kib": {"low": 256, "high": 4096, "log": True, "type": "int"},
               "chip.cores.matrix_rows": {"choices": [8, 16, 32, 64]},
               "chip.cores.matrix_cols": {"choices": [8, 16, 32, 64]}},
}


def reuse_vs_compile(n: int = 128) -> None:
    """Trials/min in-process and with 1 and 2 Ray workers, on a space that reuses compiles and on one that compiles
    every point (median of 3 sweeps each). Ray is started as the CLI starts it (num_cpus = workers) and warmed up
    by a 4-trial sweep, so the timed sweeps measure the sweep, not Ray's start-up.

    Two rates per sweep: end to end (the command's wall time, including composing the config, opening the study,
    compacting Parquet and the Pareto designs' full evaluations: ~0.6-0.8 s per sweep) and while searching (the
    ask / evaluate / tell loop alone, ``loop_s`` in sweep.json), which is what a long sweep converges to."""
    import ray

    from elk_dse.cli import main as cli_main

    def timed(space: dict, workers: int, trials: int) -> tuple[float, float]:
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            path = Path(tmp) / "space.yaml"
            path.write_text(yaml.safe_dump(space))
            t0 = time.perf_counter()
            code = cli_main(["sweep", "+chip=mesh64", f"sweep={path}", f"out={tmp}/s", f"search.n_trials={trials}",
                             f"search.workers={workers}", "progress=false", "report=false"])
            wall = time.perf_counter() - t0
            assert code == 0
            loop_s = json.loads((Path(tmp) / "s" / "sweep.json").read_text())["loop_s"]
            return trials / wall * 60, trials / loop_s * 60

    spaces = (("reusing compiles", REUSE_SPACE), ("compiling every point", COMPILE_SPACE))
    rates: dict[tuple[str, int], tuple[float, float]] = {}
    for workers in (0, 1, 2):
        ray_for(workers)
        for label, space in spaces:
            # Median of 3: on this VM one sweep's wall time varies by +-15% from run to run.
            runs = [timed(space, workers, n) for _ in range(3)]
            rates[label, workers] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
    ray.shutdown()
    print(f"{'trials/min (mesh64, llama2_7b decode, ' + str(n) + ' trials)':<52} {'in-proc':>8} {'1 worker':>9} "
          f"{'2 workers':>10} {'speedup':>8}")
    for label, _ in spaces:
        for i, kind in enumerate(("end to end", "while searching")):
            r0, r1, r2 = (rates[label, w][i] for w in (0, 1, 2))
            print(f"  {label + ', ' + kind:<50} {r0:>8.0f} {r1:>9.0f} {r2:>10.0f} {r2 / r1:>7.2f}x", flush=True)
    print()


def report_build(n: int = 2000) -> None:
    """Seconds to build the HTML report (issue 7; target <= 30 s) of a real n-trial sweep, made once in a temp
    dir on a cheap space: the default space with the sequential scheduler, in-process (workers=0)."""
    from elk_dse.cli import main as cli_main
    from elk_dse.results.report import build_report

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        code = cli_main(["sweep", "+chip=mesh64", "scheduler=sequential", f"out={tmp}/s", f"search.n_trials={n}",
                         "search.workers=0", "search.batch_size=100", "progress=false", "report=false"])
        sweep_s = time.perf_counter() - t0
        assert code == 0
        times = []
        for _ in range(2):  # the second build also replaces the first one's files
            t0 = time.perf_counter()
            build_report([Path(tmp) / "s"])
            times.append(time.perf_counter() - t0)
    print(f"{'report of a ' + str(n) + '-trial sweep (sweep itself ' + format(sweep_s, '.0f') + ' s)':<52} "
          f"{'seconds':>8}")
    print(f"{'  build_report, first / second build':<52} {times[0]:>8.2f} / {times[1]:.2f}", flush=True)
    print()


def search_efficiency() -> None:
    import search_efficiency as se

    se.main()
    print()


def soak() -> None:
    import soak as soak_module

    ray_for(2)

    sys.argv = [sys.argv[0], os.environ.get("BENCH_SOAK_TRIALS", "10000")]
    soak_module.main()
    print()


WAFER_POINTS = [  # (label, CLI arguments) of the wafer-scale points (issue 16)
    ("wse2_like (850,000 cores) llama2_7b decode", ["+chip=wse2_like", "model=llama2_7b"]),
    ("1,000,000-core 1000x1000 mesh, 16 edge HBM channels, llama2_7b", [
        "+chip=mesh64", "chip.cores.count=1000000", "chip.cores.grid=[1000,1000]", "chip.cores.sram_kib=48",
        "chip.cores.matrix_rows=4", "chip.cores.matrix_cols=4", "model=llama2_7b"]),
]
_CHILD = """
import json, resource, sys, time
from elk_dse.cli import main
import contextlib, io
t0 = time.perf_counter()
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    code = main(["evaluate", "format=json", *sys.argv[1:]])
wall = time.perf_counter() - t0
out = json.loads(buf.getvalue()) if code == 0 else {}
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"code": code, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_mib": ru.ru_maxrss / 1024,
                  "latency_s": out.get("latency_s"), "feasible": out.get("feasible")}))
"""


def wafer_scale() -> None:
    """Issue 16 targets: `evaluate +chip=wse2_like model=llama2_7b` <= 30 s on one core (was 290-322 s with
    hop-by-hop routing), and a 1,000,000-core mesh point completes; wall time, CPU time (user + system: the
    figure to read when other processes share the core) and peak memory (max RSS) of a fresh process per
    point, pinned to one core (taskset) with single-threaded BLAS."""
    import shutil
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    print(f"{'wafer scale, one process on one core (cold)':<60} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} "
          f"{'latency ms':>11}")
    for label, args in WAFER_POINTS:
        proc = subprocess.run([*pin, sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, env=env,
                              check=False)
        try:
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            print(f"  {label:<58} failed: {proc.stderr.strip()[-300:]}")
            continue
        latency = f"{r['latency_s'] * 1e3:.3f}" if r["feasible"] else "infeasible"
        print(f"  {label:<58} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} {r['peak_mib']:>9.0f} {latency:>11}", flush=True)
    print()


def _clear_compile_caches(routes: bool = True) -> None:
    """Empty every cache compiling and timing a design point fills (plans, preloading choices, T10 tables, auto's
    compute floors and,
    with ``routes``, the figures derived from routes): a cold evaluation. Without ``routes``: a new design
    point of a sweep on a topology already seen (plans and tables are keyed by the chip, routes by topology)."""
    from elk_dse.compiler.parallel.auto import clear_compute_floors
    from elk_dse.compiler.t10 import clear_tables
    from elk_dse.hw import resources

    clear_plan_cache()
    clear_tables()
    clear_compute_floors()  # auto's compute floors (keyed by the cores, as the tables are)
    if routes:
        resources._ROUTED.clear()


def parallelism(cold_reps: int = 5, warm_reps: int = 5, small_reps: int = 15) -> None:
    """Issue 17: seconds to evaluate a design point with ``chips.parallelism=auto`` against the fixed choice auto
    picks (target: auto <= 2x), measured the same way, interleaved: cold (every compile cache emptied before
    each evaluation; median of ``cold_reps``) and warm (caches filled; median of ``warm_reps``), wall and CPU
    seconds. The toy case takes tens of ms per evaluation, so it runs ``small_reps`` of each (issue 17a, sixth
    session: its ratio moved by 0.4x between runs of 3). Two ratio rows: of the medians, and the median of the
    ratios of each back-to-back pair (auto and the fixed point evaluated one after the other, in alternating
    order), which a change of the machine's load between pairs does not move. Cases: a small one (a 4-layer decoder on 4 16-core chips, elk_full), Llama-3.1-70B decode b32 on
    wormhole_t3k and wormhole_galaxy (tt-metal's formats, sequential). "new" columns: plan caches and tables
    emptied but routes kept (the next design point of a sweep on the same topology). Generic over the strategy
    registry: the fixed row is whatever auto chose."""
    from elk_dse.models import model_config_from_dict
    from elk_dse.testing.parallelism import conformance_cases

    perf = {"weights": "bfp8", "mlp_weights": "bfp4", "attention_weights": "bfp8", "kv_cache": "bfp8",
            "activations": "bf16"}
    llama = model_config_from_dict({"name": "llama3_1_70b", "batch": 32, "kv_len": 128, "formats": perf})
    small = next(c for c in conformance_cases() if c.name == "decoder_mesh4")
    cases = (("4 x 16-core chips, 4-layer decoder b8", small.chip, small.model, SchedulerConfig(name="elk_full"),
              small_reps, small_reps),
             ("wormhole_t3k llama3_1_70b decode b32", yaml.safe_load((CONF / "wormhole_t3k.yaml").read_text()),
              llama, SchedulerConfig(name="sequential"), cold_reps, warm_reps),
             ("wormhole_galaxy llama3_1_70b decode b32",
              yaml.safe_load((CONF / "wormhole_galaxy.yaml").read_text()), llama, SchedulerConfig(name="sequential"),
              cold_reps, warm_reps))

    def timed(point: DesignPoint) -> tuple[float, float, dict]:
        w0, c0 = time.perf_counter(), time.process_time()
        result = evaluate(point, include_ops=False)
        return time.perf_counter() - w0, time.process_time() - c0, result

    print(f"{'evaluate one design point (issue 17)':<44} {'strategy':>9} {'cold s':>7} {'cold CPU':>8} "
          f"{'new s':>7} {'new CPU':>8} {'warm s':>7} {'warm CPU':>8} {'latency ms':>11} {'compiled':>9}")
    for label, base, model, sched, n_cold, n_warm in cases:
        def point(strategy: str, base: dict = base, model: ModelConfig = model,
                  sched: SchedulerConfig = sched) -> DesignPoint:
            return DesignPoint(chip_from_dict({**base, "chips": {**base["chips"], "parallelism": strategy}}),
                               model, sched)

        auto = point("auto")
        chosen = evaluate(auto, include_ops=False)["parallelism"]["strategy"]
        points = {"auto": auto, chosen: point(chosen)}
        cold: dict[str, list[tuple[float, float]]] = {k: [] for k in points}
        new: dict[str, list[tuple[float, float]]] = {k: [] for k in points}
        warm: dict[str, list[tuple[float, float]]] = {k: [] for k in points}
        results: dict[str, dict] = {}
        for rep in range(n_cold):
            for routes, series in ((True, cold), (False, new)):
                for name in (list(points) if rep % 2 else list(points)[::-1]):
                    _clear_compile_caches(routes)
                    wall, cpu, results[name] = timed(points[name])
                    series[name].append((wall, cpu))
        for rep in range(n_warm):
            for name in (list(points) if rep % 2 else list(points)[::-1]):
                wall, cpu, _ = timed(points[name])
                warm[name].append((wall, cpu))
        med = {name: [statistics.median(x[i] for x in series[name]) for series in (cold, new, warm) for i in (0, 1)]
               for name in points}
        for name in (chosen, "auto"):
            cands = results[name]["parallelism"].get("candidates", [])
            compiled = sum(c["latency_s"] is not None for c in cands) if cands else 1
            cells = " ".join(f"{v:>7.3f} {c:>8.3f}" for v, c in zip(med[name][::2], med[name][1::2], strict=True))
            print(f"  {label:<42} {name:>9} {cells} {results[name]['latency_s'] * 1e3:>11.3f} {compiled:>9}",
                  flush=True)
        ratio = [med["auto"][i] / med[chosen][i] for i in range(6)]
        cells = " ".join(f"{r:>6.2f}x" + (" " if i % 2 else "") for i, r in enumerate(ratio))
        print(f"  {'auto / ' + chosen:<42} {'':>9} {cells}", flush=True)
        paired = [statistics.median(a[i] / f[i] for a, f in zip(series["auto"], series[chosen], strict=True))
                  for series in (cold, new, warm) for i in (0, 1)]
        cells = " ".join(f"{r:>6.2f}x" + (" " if i % 2 else "") for i, r in enumerate(paired))
        print(f"  {'auto / ' + chosen + ', median of pairs':<42} {'':>9} {cells}", flush=True)
    print()


def pareto_front() -> None:
    """Seconds of results.pareto_mask on 10,000 points x 3 objectives (random; and the worst case, every point on
    the front). Moved here from a timed test (target: under 1 s each)."""
    import numpy as np

    from elk_dse.results.pareto import pareto_mask

    rand = np.random.default_rng(0).random((10_000, 3))
    x = np.linspace(0, 1, 10_000)
    worst = np.column_stack([x, 1 - x, x])
    print(f"{'pareto_mask, 10,000 x 3 (median of 5)':<52} {'seconds':>8}")
    for label, values, senses in (("random", rand, ["minimize", "maximize", "minimize"]),
                                  ("every point on the front", worst, ["minimize"] * 2 + ["maximize"])):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            pareto_mask(values, senses)
            times.append(time.perf_counter() - t0)
        print(f"{'  ' + label:<52} {sorted(times)[2]:>8.3f}", flush=True)
    print()


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if sys.argv[1:] == ["pareto"]:
        pareto_front()
        return
    if sys.argv[1:] == ["wafer"]:
        wafer_scale()
        return
    if sys.argv[1:] == ["parallel"]:
        parallelism()
        return
    if sys.argv[1:] == ["schedulers"]:  # issue 18: the per-scheduler rows alone
        schedulers_per_point()
        return
    wafer_scale()
    parallelism()
    report_build(int(os.environ.get("BENCH_REPORT_TRIALS", "2000")))
    pareto_front()
    reuse_vs_compile()
    search_efficiency()
    event_sim()
    t10_compile()
    schedulers_per_point()
    rows = []
    for chip_name, model in POINTS:
        cold, warm, feasible = time_point(chip_name, model)
        rows.append((f"{chip_name} {model.name} {model.phase} b{model.batch}", f"{cold:.3f}", f"{warm:.3f}",
                     "yes" if feasible else "no"))
    print(f"{'design point':<40} {'cold s':>8} {'warm s':>8} {'feasible':>9}")
    for r in rows:
        print(f"{r[0]:<40} {r[1]:>8} {r[2]:>8} {r[3]:>9}")
    print()
    n = int(os.environ.get("BENCH_TRIALS", "96"))
    print(f"{'sweep (mesh64, llama2_7b decode, default space)':<52} {'trials/min':>10}")
    for workers in (0, 1, 2):
        label = "in-process (workers=0)" if workers == 0 else f"Ray, {workers} worker(s)"
        print(f"{label:<52} {sweep_rate(workers, n):>10.0f}", flush=True)
    print()
    soak()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
