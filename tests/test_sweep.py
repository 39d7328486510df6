"""Sweeps for real: Ray workers, journal storage, Parquet rows, determinism, kill-and-resume, report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pyarrow as pa
import pytest

from elk_dse.cli import main
from elk_dse.results.store import ResultStore

TIMING_COLUMNS = ["duration_s", "metric.eval_s"]


def sweep_args(out: Path, *extra: str) -> list[str]:
    return ["sweep", "+chip=mesh64", f"out={out}", "search.batch_size=4", "progress=false", *extra]


def rows(out: Path) -> pd.DataFrame:
    return ResultStore(out).read().drop(columns=TIMING_COLUMNS)


def test_ray_sweep_writes_rows_storage_and_report(ray_session, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(sweep_args(out, "search.n_trials=8", "search.workers=2")) == 0
    printed = capsys.readouterr().out
    assert f"results: {out / 'results.parquet'}" in printed and "report: " in printed
    df = ResultStore(out).read()
    assert list(df["trial"]) == list(range(8))
    assert set(df["status"]) <= {"COMPLETE", "INFEASIBLE", "FAIL"}
    assert (df["status"] == "COMPLETE").sum() >= 4
    done = df[df["status"] == "COMPLETE"]
    assert (done["metric.latency_s"] >= done["metric.roofline_latency_s"]).all()
    for col in ("param.chip.cores.sram_kib", "param.chip.hbm.bandwidth_gb_s", "config_hash", "package_version"):
        assert col in df.columns and df[col].notna().all()
    # The study opens with plain Optuna.
    study = optuna.load_study(study_name="elk_dse", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal"))))
    assert len(study.trials) == 8
    assert (out / "report" / "report.html").exists()
    assert list((out / "designs").glob("trial_*.json"))


def test_same_seed_same_rows_for_one_or_two_workers(ray_session, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(sweep_args(a, "search.n_trials=8", "search.workers=0", "report=false")) == 0
    assert main(sweep_args(b, "search.n_trials=8", "search.workers=2", "report=false")) == 0
    pd.testing.assert_frame_equal(rows(a), rows(b))


def test_rerun_extends_to_the_new_target_without_duplicates(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(sweep_args(out, "search.n_trials=4", "search.workers=0", "report=false")) == 0
    assert main(sweep_args(out, "search.n_trials=4", "search.workers=0", "report=false")) == 0
    assert "0 new trials" in capsys.readouterr().out
    assert main(sweep_args(out, "search.n_trials=10", "search.workers=0", "report=false")) == 0
    assert list(ResultStore(out).read()["trial"]) == list(range(10))


def test_killed_sweep_resumes_without_loss_or_duplicates(tmp_path):
    """SIGKILL the driver mid-sweep, rerun the same command: every trial once, rows as an uninterrupted run."""
    out, ref = tmp_path / "killed", tmp_path / "reference"
    n = 24  # six NSGA-II generations of 4; the kill lands after the third
    small = "model=llama3_2_1b"  # a 16-layer decoder: the same sweep machinery at a third of the evaluate time
    cmd = [sys.executable, "-m", "elk_dse", *sweep_args(out, f"search.n_trials={n}", "search.workers=0",
                                                      "report=false", small)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / "results.parquet"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("part-*.parquet"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = ResultStore(out).read()
    assert 12 <= len(before) < n, "the kill should land mid-sweep"
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    after = ResultStore(out).read()
    assert list(after["trial"]) == list(range(n))
    # Rows finished before the kill are unchanged, and the resumed sweep equals an uninterrupted one.
    kept = after.set_index("trial").loc[before["trial"]].reset_index()
    pd.testing.assert_frame_equal(kept.drop(columns=TIMING_COLUMNS), before.drop(columns=TIMING_COLUMNS))
    # The uninterrupted reference runs in this process: the same rows as the two driver processes above.
    assert main(sweep_args(ref, f"search.n_trials={n}", "search.workers=0", "report=false", small)) == 0
    pd.testing.assert_frame_equal(rows(out), rows(ref))


def test_driver_killed_mid_batch_keeps_its_logged_rows(tmp_path):
    """One batch of 24: kill -9 the driver after some rows are logged but before the batch's Parquet part;
    the rerun moves the logged rows into Parquet unchanged (not evaluated again) and finishes the rest."""
    import json

    out = tmp_path / "batch"
    cmd = [sys.executable, "-m", "elk_dse", "sweep", "+chip=mesh64", f"out={out}", "search.batch_size=24",
           "search.n_trials=24", "search.workers=0", "progress=false", "report=false",
           "model=llama3_2_1b"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "pending_rows.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or log.read_text().count("\n") < 6):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]
    assert 6 <= len(logged) < 24, "the kill should land mid-batch"
    assert ResultStore(out).read().empty  # nothing in Parquet yet: the batch was not finished
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    after = ResultStore(out).read().set_index("trial")
    assert list(after.index) == list(range(24)) and not log.exists()
    for row in logged:  # the same row, down to its measured duration: recovered, not re-evaluated
        assert after.loc[row["trial"], "duration_s"] == row["duration_s"]
        assert after.loc[row["trial"], "metric.latency_s"] == pytest.approx(row["metric.latency_s"], nan_ok=True)


def test_row_log_ignores_a_line_cut_short(tmp_path):
    from elk_dse.results.rowlog import RowLog

    log = RowLog(tmp_path)
    log.append({"trial": 0, "metric.latency_s": float("nan"), "status": "FAIL"})
    log.append({"trial": 1, "metric.latency_s": 2.5, "status": "COMPLETE"})
    log.close()
    with open(log.path, "a") as fh:
        fh.write('{"trial": 2, "metric.lat')  # a kill in the middle of a write
    rows = RowLog(tmp_path).rows()
    assert [r["trial"] for r in rows] == [0, 1] and rows[1]["metric.latency_s"] == 2.5
    assert rows[0]["metric.latency_s"] != rows[0]["metric.latency_s"]  # NaN survives the round trip
    RowLog(tmp_path).clear()
    assert not log.path.exists()


def test_report_command_rebuilds_from_files(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(sweep_args(out, "search.n_trials=4", "search.workers=0", "report=false")) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "report.html").exists()
    assert "report.html" in capsys.readouterr().out


@pytest.mark.slow
def test_default_sweep_finishes(tmp_path, ray_session, capsys):
    """The README's main command with its defaults (slow: ~1 minute)."""
    assert main(["sweep", "+chip=mesh64", f"out={tmp_path / 'default'}", "progress=false"]) == 0
    assert len(ResultStore(tmp_path / "default").read()) == 320


def test_recheck_pareto_with_event_simulator(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(sweep_args(out, "search.n_trials=6", "search.workers=0", "report=false",
                           "search.recheck=event")) == 0
    assert "re-checked" in capsys.readouterr().out
    raw = pd.read_parquet(out / "results.parquet")  # the dataset itself: one row per trial
    assert sorted(raw["trial"]) == list(range(6))
    checked = raw[raw["metric.event_latency_s"].notna()]
    assert len(checked) >= 1
    assert (abs(checked["metric.event_latency_s"] / checked["metric.latency_s"] - 1) < 0.15).all()


def test_pareto_designs_satisfy_the_budget(tmp_path, capsys):
    from elk_dse.results.pareto import pareto_front

    out = tmp_path / "budget"
    assert main(["sweep", "+chip=mesh64", "sweep=sram_vs_cores", f"out={out}", "search.n_trials=16",
                 "search.batch_size=8", "search.workers=0", "progress=false", "report=false"]) == 0
    df = ResultStore(out).read()
    assert (df["status"] == "COMPLETE").all()  # the grid follows the searched core count
    assert set(df["param.chip.cores.count"]) > {64}
    front = pareto_front(df, [("metric.latency_per_item_s", "minimize"), ("metric.energy_per_item_j", "minimize")])
    assert len(front) >= 1
    assert (front["metric.area_mm2"] <= 400).all() and (front["metric.constraint_violation"] <= 0).all()


def test_chips_sweep_searches_how_the_chips_are_wired(tmp_path):
    """sweeps/chips.yaml on the 8-chip Wormhole system: every topology is tried, the chips' grid only where it
    applies, and the die area follows the chip-link PHYs each topology needs."""
    out = tmp_path / "chips"
    assert main(["sweep", "+chip=wormhole_t3k", "model=llama3_2_1b", "sweep=chips", f"out={out}",
                 "search.n_trials=24", "search.batch_size=12", "search.workers=0", "progress=false",
                 "report=false"]) == 0
    df = ResultStore(out).read()
    assert (df["status"] == "COMPLETE").all() and (df["metric.chip_link_bytes"] > 0).all()
    topo, grid = df["param.chip.chips.topology"], df["param.chip.chips.grid"]
    assert set(topo) == {"ring", "mesh", "torus", "all_to_all"}
    assert grid.notna().equals(topo.isin(["mesh", "torus"]))
    area = df.groupby([topo, grid.fillna("-")])["metric.area_mm2"].agg(["min", "max"])
    assert (area["min"] == area["max"]).all()  # neither link nor HBM bandwidth changes the silicon here
    a = area["min"]
    # PHYs per die: ring 2 < 2x4 mesh 2.5 < 2x4 torus 3 (the axis of 2 does not wrap) < all_to_all 7.
    assert a["ring", "-"] < a["mesh", "2x4"] < a["torus", "2x4"] < a["all_to_all", "-"]


@pytest.mark.parametrize("space, needle", [
    ("params:\n  chip.cores.sram_kib: {low: 512, high: 256}\nobjectives: [{metric: latency_s}]", "high"),
    ("params:\n  chip.cores.sram_kib: {low: 0, high: 256, log: true}\nobjectives: [{metric: latency_s}]", "log"),
    ("params:\n  chip.cores.sram_mb: {low: 1, high: 2}\nobjectives: [{metric: latency_s}]", "sram_mb"),
    ("params:\n  chip.cores.sram_kib: {low: 1, high: 2}\nobjectives: [{metric: latncy_s}]", "latency_s"),
    ("params:\n  chip.cores.sram_kib: {low: 1, high: 2}\nobjectives: [{metric: latency_s}]\n"
     "constraints: [{metric: area_mm2, max: 0}]", "max"),
    ("params:\n  chip.cores.sram_kib: {choices: []}\nobjectives: [{metric: latency_s}]", "choices"),
])
def test_bad_search_space_rejected_before_any_trial(tmp_path, capsys, space, needle):
    path = tmp_path / "space.yaml"
    path.write_text(space)
    out = tmp_path / "out"
    code = main(["sweep", "+chip=mesh64", f"sweep={path}", f"out={out}", "search.workers=0", "progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (out / "results.parquet").exists()


def _ray_processes(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            pids.append(int(proc.name))
    return pids


def _own_workers(ray, marker: str) -> list[int]:
    """Workers of this test's Ray session only (children of its raylet) running ``marker``: never another
    sweep's workers on the same machine."""
    from elk_dse.search.reaper import family

    raylet = [info.process.pid for info in ray._private.worker._global_node.all_processes["raylet"]]
    return [pid for pid in family(raylet) if pid not in raylet and pid in _ray_processes(marker)]


def test_killed_worker_is_retried_and_every_trial_completes(ray_session, tmp_path, capsys):
    """SIGKILL a Ray worker of this session while it evaluates a trial: Ray retries the task (max_retries),
    so every trial ends COMPLETE."""
    import threading

    out = tmp_path / "crash"
    args = ["sweep", "+chip=ipu_pod4", "model=llama2_70b", "model.batch=16", "sweep=hbm_noc", f"out={out}",
            "search.n_trials=8", "search.batch_size=4", "search.workers=2", "progress=false", "report=false"]
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", main(args)))
    thread.start()
    killed = []
    deadline = time.time() + 120
    while thread.is_alive() and not killed and time.time() < deadline:
        for pid in _own_workers(ray_session, "ray::evaluate_trial"):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            break
        time.sleep(0.01)
    thread.join(timeout=300)
    assert killed, "no worker was caught mid-trial"
    assert result["code"] == 0
    df = ResultStore(out).read()
    assert list(df["trial"]) == list(range(8))
    assert (df["status"] == "COMPLETE").all(), df[["trial", "status", "error"]].to_dict("records")


def test_retry_failed_reruns_fail_rows_on_resume(tmp_path, capsys):
    """search.retry_failed=true: FAIL rows (as a worker that died more often than Ray retries leaves them)
    are evaluated again under their own trial numbers on the next run."""
    import pyarrow.parquet as pq

    out = tmp_path / "retry"
    assert main(sweep_args(out, "search.n_trials=4", "search.workers=0", "report=false")) == 0
    [part] = (out / "results.parquet").glob("part-*.parquet")
    df = pq.read_table(part).to_pandas()
    good = df.copy()
    df.loc[df["trial"] == 2, ["status", "error"]] = ["FAIL", "worker failure: simulated"]
    df.loc[df["trial"] == 2, "metric.latency_s"] = float("nan")
    pq.write_table(pa.Table.from_pandas(df, schema=pq.read_schema(part), preserve_index=False), part)
    assert main(sweep_args(out, "search.n_trials=4", "search.workers=0", "report=false")) == 0
    assert (ResultStore(out).read()["status"] == "FAIL").sum() == 1  # not retried unless asked
    assert main(sweep_args(out, "search.n_trials=4", "search.workers=0", "report=false",
                           "search.retry_failed=true")) == 0
    after = ResultStore(out).read()
    assert list(after["trial"]) == [0, 1, 2, 3] and (after["status"] == "COMPLETE").all()
    pd.testing.assert_frame_equal(after.drop(columns=TIMING_COLUMNS), good.drop(columns=TIMING_COLUMNS))


def _wait_for_ray_head(port: int, temp: Path, head: subprocess.Popen, timeout_s: float = 120.0) -> None:
    """Wait until the head's GCS accepts connections and its raylet's socket exists (a busy machine takes longer
    than an idle one: poll instead of sleeping a fixed time); fail naming what never came up."""
    import socket

    deadline = time.time() + timeout_s
    gcs = raylet = False
    while time.time() < deadline:
        if head.poll() is not None:
            pytest.fail(f"ray start --head exited with {head.returncode}")
        if not gcs:
            with socket.socket() as s:
                s.settimeout(0.5)
                gcs = s.connect_ex(("127.0.0.1", port)) == 0
        raylet = any(temp.glob("session_*/sockets/raylet"))
        if gcs and raylet:
            return
        time.sleep(0.1)
    pytest.fail(f"Ray head not up after {timeout_s:.0f} s (GCS listening: {gcs}, raylet socket: {raylet})")


def test_sweep_on_a_ray_cluster_started_by_the_test(tmp_path):
    """`ray start --head` on its own port and temp dir, the sweep joins it by address; only its processes stop."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import shutil
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="elkray"))  # short: Ray's unix socket paths must stay < 108 chars
    # A Ray started earlier in this test process exports RAY_ADDRESS; the child must not inherit it.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="disabled", PYTHONWARNINGS="ignore")
    head = subprocess.Popen(["ray", "start", "--head", f"--port={port}", "--num-cpus=1", f"--temp-dir={temp}",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--block"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_ray_head(port, temp, head)
        out = tmp_path / "cluster"
        proc = subprocess.run([sys.executable, "-m", "elk_dse", *sweep_args(out, "search.n_trials=4",
                               "search.workers=1", "report=false", f"ray.address=127.0.0.1:{port}")],
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert list(ResultStore(out).read()["trial"]) == list(range(4))
    finally:
        head.terminate()
        try:
            head.wait(timeout=10)
        except subprocess.TimeoutExpired:
            head.kill()
        for pid in _ray_processes(str(temp)):  # whatever the head left behind, and nothing else
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def test_a_sweep_written_before_a_metric_existed_resumes(tmp_path, capsys):
    """Parts written by an older version lack newer metric columns: the sweep resumes, those cells are null."""
    import pyarrow.parquet as pq

    out = tmp_path / "old"
    assert main(sweep_args(out, "search.n_trials=4", "search.workers=0", "report=false")) == 0
    for part in (out / "results.parquet").glob("part-*.parquet"):
        table = pq.read_table(part)
        pq.write_table(table.drop_columns(["metric.breakdown_idle_s"]), part)
    assert main(sweep_args(out, "search.n_trials=8", "search.workers=0", "report=false")) == 0
    df = ResultStore(out).read()
    assert list(df["trial"]) == list(range(8))
    assert df.loc[df["trial"] < 4, "metric.breakdown_idle_s"].isna().all()
    assert df.loc[df["trial"] >= 4, "metric.breakdown_idle_s"].notna().all()


def test_resume_removes_the_journal_lock_a_killed_driver_left(tmp_path, capsys):
    """A driver SIGKILLed while appending to the Optuna journal leaves `optuna.journal.lock` (a symlink); under
    the folder's sweep lock nobody else writes the journal, so the resume removes it and says so instead of
    waiting out Optuna's 30 s grace period (every resume after a kill did: ninth session)."""
    out = tmp_path / "locked"
    args = ("search.workers=0", "report=false", "model=llama3_2_1b")
    assert main(sweep_args(out, "search.n_trials=4", *args)) == 0
    journal = out / "optuna.journal"
    lock = out / "optuna.journal.lock"
    os.symlink(journal, lock)  # what optuna's JournalFileSymlinkLock holds while appending
    capsys.readouterr()
    assert main(sweep_args(out, "search.n_trials=8", *args)) == 0
    assert "removed the journal lock a killed sweep left behind" in capsys.readouterr().err
    assert not os.path.lexists(lock)
    assert list(ResultStore(out).read()["trial"]) == list(range(8))
