"""A sweep folder holds one configuration's rows and one running sweep (elk_dse/search/folder.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from elk_dse.cli import main
from elk_dse.results.store import ResultStore
from elk_dse.search.folder import differences, fingerprint, sweep_lock

FAST = ["+chip=mesh64", "search.batch_size=4", "search.workers=0", "progress=false", "report=false"]


def _sweep(*extra: str) -> int:
    return main(["sweep", *FAST, *extra])


def _folders(root: Path) -> list[Path]:
    return sorted(p for p in (root / "results").iterdir() if p.is_dir())


def test_changed_override_lands_in_a_new_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _sweep("model.batch=1", "search.n_trials=4") == 0
    [first] = _folders(tmp_path)
    assert first.name.startswith("mesh64__llama2_7b-decode__default-")
    assert _sweep("model.batch=64", "search.n_trials=4") == 0
    folders = _folders(tmp_path)
    assert len(folders) == 2, folders
    second = next(f for f in folders if f != first)
    one, sixty_four = ResultStore(first).read(), ResultStore(second).read()
    assert len(one) == len(sixty_four) == 4
    assert json.loads((first / "sweep.json").read_text())["composed_config"]["model"]["batch"] == 1
    assert json.loads((second / "sweep.json").read_text())["composed_config"]["model"]["batch"] == 64
    # the batch-64 rows are a different workload, not the batch-1 rows served again
    assert not one["metric.latency_s"].equals(sixty_four["metric.latency_s"])
    # run-only keys (n_trials, workers) keep the folder: the first sweep is extended, not forked
    assert _sweep("model.batch=1", "search.n_trials=8") == 0
    assert len(_folders(tmp_path)) == 2
    assert list(ResultStore(first).read()["trial"]) == list(range(8))


@pytest.mark.parametrize("change, named", [
    ("model.batch=2", "design.model.batch: 1 -> 2"),
    ("search.seed=3", "search.seed: 0 -> 3"),
    ("sweep=hbm_noc", "space.param_order"),
    ("+chip=torus256", "design.chip.name: mesh64 -> torus256"),
])
def test_rerun_of_another_configuration_into_a_folder_is_refused(tmp_path, capsys, change, named):
    out = tmp_path / "s"
    assert _sweep(f"out={out}", "model.batch=1", "search.n_trials=4") == 0
    before = ResultStore(out).read()
    provenance = (out / "sweep.json").read_text()
    capsys.readouterr()
    args = [a for a in FAST if not (change.startswith("+chip") and a.startswith("+chip"))]
    code = main(["sweep", *args, f"out={out}", "model.batch=1", "search.n_trials=8", change])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: out='{out}' is invalid: holds a sweep of another configuration (")
    assert named in err
    assert ResultStore(out).read().equals(before)  # nothing added, nothing mixed
    assert (out / "sweep.json").read_text() == provenance  # provenance not overwritten


def test_rows_whose_configuration_cannot_be_checked_are_refused(tmp_path, capsys):
    out = tmp_path / "s"
    assert _sweep(f"out={out}", "search.n_trials=4") == 0
    data = json.loads((out / "sweep.json").read_text())
    del data["fingerprint_record"]  # as written by a version before fingerprints
    (out / "sweep.json").write_text(json.dumps(data))
    capsys.readouterr()
    assert _sweep(f"out={out}", "search.n_trials=8") == 2
    assert "cannot be checked" in capsys.readouterr().err
    (out / "sweep.json").unlink()
    assert _sweep(f"out={out}", "search.n_trials=8") == 2
    assert "no sweep.json" in capsys.readouterr().err
    assert len(ResultStore(out).read()) == 4


def test_a_second_sweep_into_a_locked_folder_exits_at_once(tmp_path, capsys):
    out = tmp_path / "s"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom elk_dse.search.folder import "
         "sweep_lock\nwith sweep_lock(Path(sys.argv[1])):\n    print('locked', flush=True)\n    time.sleep(120)\n",
         str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert _sweep(f"out={out}", "search.n_trials=4") == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"error: out='{out}' is invalid: another sweep (pid {holder.pid}) is running in this "
                       "folder; wait for it to end or choose another out= folder")
        assert not (out / "results.parquet").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    # the OS released the lock with the killed process: no stale lock to clean by hand
    assert _sweep(f"out={out}", "search.n_trials=4") == 0
    assert len(ResultStore(out).read()) == 4


def test_lock_is_reentrant_within_a_process(tmp_path):
    with sweep_lock(tmp_path), sweep_lock(tmp_path):
        pass
    with sweep_lock(tmp_path):  # released after the outer block
        pass


def test_fingerprint_is_order_independent_and_differences_name_keys():
    a = {"design": {"model": {"batch": 1, "name": "x"}}, "search": {"seed": 0}}
    b = {"search": {"seed": 0}, "design": {"model": {"name": "x", "batch": 1}}}
    assert fingerprint(a) == fingerprint(b)
    c = {"design": {"model": {"batch": 2, "name": "x"}}, "search": {"seed": 0}}
    assert fingerprint(a) != fingerprint(c)
    assert differences(a, c) == "design.model.batch: 1 -> 2"


def test_a_killed_driver_leaves_no_ray_process_of_its_own(tmp_path):
    """SIGKILL a sweep driver running a local Ray: soon nothing it started (GCS, raylet, agents, workers) is
    alive; the watchdog (elk_dse/search/reaper.py) touches only that family. Unloaded this takes 1-3 s (the
    watchdog polls every POLL_S, then waits GRACE_S); the test allows 120 s so that a busy machine cannot fail
    it (it failed at 10 s under a load of 8 on 2 cores): without the watchdog ray::DashboardAgent lives on."""
    import time

    from elk_dse.search.reaper import _stat, family

    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "elk_dse", "sweep", "+chip=mesh64", f"out={out}", "search.n_trials=400",
           "search.batch_size=4", "search.workers=1", "progress=false", "report=false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list((out / "results.parquet").glob("part-*.parquet")):
            time.sleep(0.05)
        started = family([proc.pid])
        assert any(b"raylet" in Path(f"/proc/{p}/cmdline").read_bytes() for p in started if _stat(p)), \
            "the sweep should be running on its local Ray"
    finally:
        proc.kill()
        proc.wait()
    started.pop(proc.pid)
    deadline = time.time() + 120
    alive = started
    while time.time() < deadline:
        alive = {p: s for p, s in started.items() if (i := _stat(p)) is not None and i[1] == s and i[2] != "Z"}
        if not alive:
            break
        time.sleep(0.2)
    assert not alive, {p: Path(f"/proc/{p}/cmdline").read_bytes()[:60] for p in alive}


def test_a_model_file_changed_under_the_same_path_is_another_configuration(tmp_path, monkeypatch, capsys):
    """model=hf model.path=config.json: the fingerprint hashes the file, so editing it and rerunning lands in a
    new default folder, and an explicit out= is refused naming the file."""
    config = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    args = ["model=hf", f"model.path={path}", "search.n_trials=2"]
    assert _sweep(*args) == 0
    assert _sweep("out=explicit", *args) == 0
    path.write_text(json.dumps({**config, "num_hidden_layers": 4}))
    assert _sweep(*args) == 0
    assert len(_folders(tmp_path)) == 2
    capsys.readouterr()
    assert _sweep("out=explicit", *args) == 2
    err = capsys.readouterr().err
    assert "files.model.path:" in err and "another configuration" in err
