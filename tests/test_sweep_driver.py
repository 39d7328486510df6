"""What the sweep driver does for its user (issue 19): identical designs evaluated once, names a dashboard
shows, an unreachable cluster refused in seconds, and closing lines that name the designs to look at."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd

from elk_dse.cli import main
from elk_dse.results.store import ResultStore

TIMING = ["duration_s", "metric.eval_s"]


def _sweep(out: Path, *extra: str) -> int:
    return main(["sweep", "+chip=mesh64", f"out={out}", "search.workers=0", "progress=false", "report=false",
                 *extra])


def _space(tmp_path: Path) -> Path:
    """Two choices of one parameter and a second parameter that does not apply (conditional on a value never
    chosen): 12 trials can only sample 2 distinct designs."""
    path = tmp_path / "tiny.yaml"
    path.write_text("objectives: [{metric: latency_s}, {metric: area_mm2}]\n"
                    "params:\n  chip.cores.sram_kib: {choices: [1024, 2048]}\n")
    return path


def test_identical_designs_are_evaluated_once_and_their_rows_reused(tmp_path, capsys):
    out = tmp_path / "s"
    assert _sweep(out, f"sweep={_space(tmp_path)}", "search.n_trials=12", "search.batch_size=4",
                  "search.sampler=random") == 0
    printed = capsys.readouterr().out
    df = ResultStore(out).read()
    assert list(df["trial"]) == list(range(12))
    assert df["config_hash"].nunique() == 2
    evaluated = df[df["duration_s"] > 0]
    assert len(evaluated) == 2, "each distinct design is evaluated exactly once"
    assert "10 more sampled a design evaluated before and reused its row" in printed
    assert json.loads((out / "sweep.json").read_text())["reused_trials"] == 10
    # a reused row is its design's row: same metrics and status, its own trial number and parameters
    metrics = [c for c in df.columns if c.startswith("metric.") and c not in TIMING]
    for _, group in df.groupby("config_hash"):
        assert (group[metrics].nunique(dropna=False) <= 1).all()
        assert group["param.chip.cores.sram_kib"].nunique() == 1


def test_reuse_does_not_change_the_rows(tmp_path):
    """Rows with reuse equal the rows of evaluating every trial (checked against a fresh evaluation of each)."""
    from elk_dse.search.space import load_space
    from elk_dse.search.trial import evaluate_trial, params_of_row

    out = tmp_path / "s"
    space = _space(tmp_path)
    assert _sweep(out, f"sweep={space}", "search.n_trials=6", "search.batch_size=3",
                  "search.sampler=random") == 0
    df = ResultStore(out).read()
    base = json.loads((out / "sweep.json").read_text())["fingerprint_record"]["design"]
    constraints = load_space(str(space)).constraints
    for _, row in df.iterrows():
        fresh = evaluate_trial(base, params_of_row(row), int(row["trial"]), 0, constraints)
        for key, value in fresh.items():
            if key in TIMING or key not in df.columns:
                continue
            stored = row[key]
            if isinstance(value, float) and pd.isna(value):
                assert pd.isna(stored), key
            else:
                assert stored == value, (key, stored, value)


def test_dashboard_shows_metric_names_and_hardware_values(tmp_path):
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna_dashboard import wsgi

    out = tmp_path / "s"
    assert _sweep(out, "search.n_trials=4", "search.batch_size=4") == 0
    storage = JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    study = optuna.load_study(study_name="elk_dse", storage=storage)
    assert study.metric_names == ["latency_s", "area_mm2"]
    trial = study.get_trials(deepcopy=False)[0]
    # ranked choices appear as their hardware value, not only as the rank Optuna samples
    rank_keys = [k for k in trial.params if k.endswith("[i]")]
    assert rank_keys
    for key in rank_keys:
        assert trial.user_attrs[key[:-3]] == ResultStore(out).read().loc[0, "param." + key[:-3]]

    app = wsgi(storage)
    body: list[bytes] = []

    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), status

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/api/studies/{study._study_id}", "QUERY_STRING": "",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "wsgi.input": __import__("io").BytesIO(b""), "wsgi.errors": sys.stderr}
    body.extend(app(environ, start_response))
    detail = json.loads(b"".join(body))
    assert detail["objective_names"] == ["latency_s", "area_mm2"]


def test_unreachable_ray_address_is_refused_in_one_line(tmp_path):
    """Nothing listens on the port: exit 2 with one line, not minutes of Ray's own retries. (The subprocess
    timeout only guards against a hang; the probe gives up after 10 s at most, 2 s when refused.)"""
    import socket

    with socket.socket() as s:  # a port that was free a moment ago and that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "elk_dse", "sweep", "+chip=mesh64", f"out={tmp_path / 's'}",
                           f"ray.address=127.0.0.1:{port}", "search.n_trials=2", "progress=false"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: ray.address='127.0.0.1:{port}' is invalid: no Ray cluster answers there")


def test_sweep_ends_naming_the_knee_and_the_best_designs(tmp_path, capsys):
    out = tmp_path / "s"
    assert _sweep(out, "search.n_trials=8", "search.batch_size=8") == 0
    lines = capsys.readouterr().out.splitlines()
    knee = [ln for ln in lines if ln.startswith("knee of the Pareto front")]
    best_latency = [ln for ln in lines if ln.startswith("best latency_s: trial ")]
    best_area = [ln for ln in lines if ln.startswith("best area_mm2: trial ")]
    assert len(knee) == len(best_latency) == len(best_area) == 1
    df = ResultStore(out).read()
    fastest = int(df.loc[df["metric.latency_s"].idxmin(), "trial"])
    assert best_latency[0].startswith(f"best latency_s: trial {fastest} ")
    assert "chip.cores.sram_kib=" in knee[0]
