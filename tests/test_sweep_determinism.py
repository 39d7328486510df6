"""The same config and seed give the same rows, whatever the timing of the Ray workers (issue 17a).

The sampler hears nothing that depends on timing: rows are told in trial order once the whole batch is back,
and a trial whose Ray task failed is submitted again before it may become a FAIL row (a FAIL row is told to
the sampler and changes every later trial's parameters). The workers here are slowed in reverse trial order
(so trials complete out of order) and one trial's first Ray task fails as a lost worker would; the rows must
equal an in-process run's. No timed assertion: the sleeps only reorder completions.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

import elk_dse.search.runner as runner
from elk_dse.cli import main
from elk_dse.results.store import ResultStore

TIMING_COLUMNS = ["duration_s", "metric.eval_s"]
N_TRIALS, BATCH = 12, 4  # three generations: a FAIL told in the first would change the next two


def _args(out: Path, workers: int) -> list[str]:
    return ["sweep", "+chip=mesh64", f"out={out}", f"search.batch_size={BATCH}", f"search.n_trials={N_TRIALS}",
            f"search.workers={workers}", "progress=false", "report=false"]


def _rows(out: Path) -> pd.DataFrame:
    return ResultStore(out).read().drop(columns=TIMING_COLUMNS).sort_values("trial").reset_index(drop=True)


def _jittery_evaluator(marker: str, failing_trial: int):
    """evaluate_trial behind a delay that makes later trials of a batch finish first, whose first run of
    ``failing_trial`` fails in Ray (a task that raises: what ray.get reports for a worker lost for good)."""
    real = runner.evaluate_trial

    def evaluate(base, params, trial, seed, constraints=()):
        import time

        if trial == failing_trial:
            try:  # the first attempt only, whichever worker process runs it (the marker is a file)
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                raise RuntimeError("simulated infrastructure failure (first attempt)")
        time.sleep(0.04 * (BATCH - 1 - trial % BATCH))
        return real(base, params, trial, seed, constraints)

    return evaluate


def test_rows_do_not_depend_on_worker_timing_or_a_passing_worker_failure(ray_session, tmp_path, monkeypatch,
                                                                         capsys):
    reference, jittered = tmp_path / "in_process", tmp_path / "ray"
    assert main(_args(reference, 0)) == 0
    marker = tmp_path / "failed_once"
    monkeypatch.setattr(runner, "evaluate_trial", _jittery_evaluator(str(marker), failing_trial=1))
    assert main(_args(jittered, 2)) == 0
    assert marker.exists(), "the simulated failure did not happen"
    a, b = _rows(reference), _rows(jittered)
    assert list(b["trial"]) == list(range(N_TRIALS))
    assert (b["status"] != "FAIL").all(), b[["trial", "status", "error"]].to_dict("records")
    pd.testing.assert_frame_equal(a, b)


def test_a_trial_failing_in_ray_every_time_becomes_one_fail_row(ray_session, tmp_path, monkeypatch, capsys):
    """The resubmission is bounded: a trial whose Ray task always fails ends as a FAIL row naming the failure,
    after 1 + DRIVER_RESUBMITS attempts, and the sweep goes on."""
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    real = runner.evaluate_trial

    def evaluate(base, params, trial, seed, constraints=()):
        if trial == 2:
            (attempts / f"{len(os.listdir(attempts))}_{os.getpid()}").touch()
            raise RuntimeError("simulated infrastructure failure (every attempt)")
        return real(base, params, trial, seed, constraints)

    monkeypatch.setattr(runner, "evaluate_trial", evaluate)
    out = tmp_path / "s"
    assert main(["sweep", "+chip=mesh64", f"out={out}", "search.batch_size=4", "search.n_trials=4",
                 "search.workers=2", "progress=false", "report=false"]) == 0
    df = ResultStore(out).read().set_index("trial")
    assert df.loc[2, "status"] == "FAIL" and df.loc[2, "error"].startswith("worker failure: RayTaskError")
    assert (df.drop(index=2)["status"] != "FAIL").all()
    assert len(os.listdir(attempts)) == 1 + runner.DRIVER_RESUBMITS
