"""Soak (slow, `make test-all`): a long sweep on a cheap space ends with every trial exactly once, one compacted
Parquet part and nothing pending. Throughput and driver memory are measured by `make bench` (benchmarks/soak.py),
not asserted here."""

from __future__ import annotations

import pytest

from elk_dse.cli import main
from elk_dse.results.store import ResultStore


@pytest.mark.slow
def test_two_thousand_trials_each_once(tmp_path, capsys):
    out = tmp_path / "soak"
    n = 2000
    assert main(["sweep", "+chip=mesh64", "scheduler=sequential", f"out={out}", f"search.n_trials={n}",
                 "search.batch_size=100", "search.workers=0", "progress=false", "report=false"]) == 0
    df = ResultStore(out).read()
    assert list(df["trial"]) == list(range(n))
    assert set(df["status"]) <= {"COMPLETE", "INFEASIBLE"}
    assert len(list((out / "results.parquet").glob("part-*.parquet"))) == 1
    assert not (out / "pending_rows.jsonl").exists()
    # Rerunning the finished sweep evaluates nothing and changes nothing.
    assert main(["sweep", "+chip=mesh64", "scheduler=sequential", f"out={out}", f"search.n_trials={n}",
                 "search.batch_size=100", "search.workers=0", "progress=false", "report=false"]) == 0
    assert "0 new trials" in capsys.readouterr().out
    assert ResultStore(out).read().equals(df)
