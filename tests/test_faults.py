"""Faults during sweeps: a full disk under the Parquet dataset or the row log, a torn or corrupt Optuna journal.
In every case: a one-line message naming the file, no finished row lost, no duplicates, and the rerun of the
same command resumes to rows equal to an uninterrupted sweep. (Worker and driver SIGKILL: tests/test_sweep.py.)"""

from __future__ import annotations

import errno
from pathlib import Path

import pandas as pd
import pytest

from elk_dse.cli import main
from elk_dse.results.store import ResultStore

TIMING = ["duration_s", "metric.eval_s"]
N = 12


def args(out: Path, n: int = N) -> list[str]:
    return ["sweep", "+chip=mesh64", f"out={out}", "search.batch_size=4", f"search.n_trials={n}",
            "search.workers=0", "progress=false", "report=false"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("ref") / "s"
    assert main(args(out)) == 0
    return ResultStore(out).read().drop(columns=TIMING)


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, lines
    return lines[0]


def test_disk_full_under_the_parquet_dataset(tmp_path, monkeypatch, capsys, reference):
    import elk_dse.results.store as store_module

    real = store_module.pq.write_table
    calls = {"n": 0}

    def fail_on_second_batch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(store_module.pq, "write_table", fail_on_second_batch)
    out = tmp_path / "s"
    assert main(args(out)) == 74
    message = one_line(capsys.readouterr().err)
    assert "results.parquet" in message and "No space left on device" in message and "rerun" in message
    logged = (out / "pending_rows.jsonl").read_text().splitlines()
    assert len(logged) == 4  # the second batch's rows, kept although Parquet could not take them
    assert list(ResultStore(out).read()["trial"]) == [0, 1, 2, 3]
    monkeypatch.setattr(store_module.pq, "write_table", real)  # space freed
    assert main(args(out)) == 0
    after = ResultStore(out).read()
    assert not (out / "pending_rows.jsonl").exists()
    pd.testing.assert_frame_equal(after.drop(columns=TIMING), reference)


def test_disk_full_under_the_row_log(tmp_path, monkeypatch, capsys, reference):
    from elk_dse.results.rowlog import RowLog

    real = RowLog.append
    calls = {"n": 0}

    def fail_on_sixth_row(self, row):
        calls["n"] += 1
        if calls["n"] == 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, row)

    monkeypatch.setattr(RowLog, "append", fail_on_sixth_row)
    out = tmp_path / "s"
    assert main(args(out)) == 74
    message = one_line(capsys.readouterr().err)
    assert "pending_rows.jsonl" in message and "No space left on device" in message
    monkeypatch.setattr(RowLog, "append", real)
    assert main(args(out)) == 0
    pd.testing.assert_frame_equal(ResultStore(out).read().drop(columns=TIMING), reference)


def test_torn_journal_tail_is_cut_and_the_sweep_resumes(tmp_path, capsys, reference):
    out = tmp_path / "s"
    assert main(args(out, n=8)) == 0
    journal = out / "optuna.journal"
    data = journal.read_bytes()
    journal.write_bytes(data[:-40])  # a write cut short: the last record loses its end and its newline
    capsys.readouterr()
    assert main(args(out)) == 0
    err = capsys.readouterr().err
    assert "dropped a partial last record" in err and "optuna.journal" in err
    assert (out / "optuna.journal.torn").read_bytes() == data[data[:-40].rfind(b"\n") + 1:-40]
    pd.testing.assert_frame_equal(ResultStore(out).read().drop(columns=TIMING), reference)


def test_corrupt_journal_record_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(args(out, n=4)) == 0
    journal = out / "optuna.journal"
    lines = journal.read_bytes().split(b"\n")
    lines[2] = b"\x00\x00garbage"
    journal.write_bytes(b"\n".join(lines))
    capsys.readouterr()
    assert main(args(out, n=8)) == 74
    message = one_line(capsys.readouterr().err)
    assert "optuna.journal" in message and "line 3" in message and "results.parquet are intact" in message
    assert list(ResultStore(out).read()["trial"]) == [0, 1, 2, 3]  # nothing touched


def interrupt_asking_at(monkeypatch, call: int) -> None:
    """Ctrl-C in the middle of asking a trial's parameters (the ``call``-th parameter suggested)."""
    from elk_dse.search.space import ParamSpec

    real = ParamSpec.suggest
    calls = {"n": 0}

    def suggest(self, trial, name):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real(self, trial, name)

    monkeypatch.setattr(ParamSpec, "suggest", suggest)


def test_interrupted_asking_is_rolled_back_and_asked_again_identically(tmp_path, monkeypatch, capsys, reference):
    out = tmp_path / "s"
    # The default space has 7 parameters: call 7*5 + 3 is the 3rd parameter of trial 5 (batch 1, 2nd trial).
    interrupt_asking_at(monkeypatch, 7 * 5 + 3)
    assert main(args(out)) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(args(out)) == 0
    assert "rolled back a batch whose asking was interrupted" in capsys.readouterr().err
    pd.testing.assert_frame_equal(ResultStore(out).read().drop(columns=TIMING), reference)


def test_interrupted_asking_on_an_rdb_storage_fails_that_trial_and_goes_on(tmp_path, monkeypatch, capsys):
    out = tmp_path / "s"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    interrupt_asking_at(monkeypatch, 7 * 5 + 3)
    assert main([*args(out), f"search.storage={url}"]) == 130
    monkeypatch.undo()
    assert main([*args(out), f"search.storage={url}"]) == 0
    df = ResultStore(out).read()
    assert len(df) == N and df["trial"].is_unique
    failed = df[df["status"] == "FAIL"]
    assert list(failed["trial"]) == [5] and failed["error"].str.contains("interrupted while this trial").all()
