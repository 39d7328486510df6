"""A finished sweep folder is readable by the tools architects use: pandas, pyarrow, DuckDB, plain Optuna and
optuna-dashboard, with the documented schema (docs/results_format.md)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
import pandas as pd
import pyarrow.dataset as ds
import pytest

from elk_dse.cli import main
from elk_dse.evaluate import METRICS

DOC = Path(__file__).resolve().parents[1] / "docs" / "results_format.md"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("readers") / "s"
    assert main(["sweep", "+chip=mesh64", "sweep=topology", f"out={out}", "search.n_trials=12",
                 "search.batch_size=4", "search.workers=0", "progress=false", "report=false"]) == 0
    return out


def test_compacted_to_one_part_and_no_leftover_log(sweep):
    # Compaction at the end leaves one part; nothing pending.
    assert len(list((sweep / "results.parquet").glob("part-*.parquet"))) == 1
    assert not (sweep / "pending_rows.jsonl").exists()


def test_pandas_pyarrow_and_duckdb_read_the_same_rows(sweep):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is a dev dependency (make install)")
    by_pandas = pd.read_parquet(sweep / "results.parquet").sort_values("trial").reset_index(drop=True)
    by_arrow = ds.dataset(sweep / "results.parquet", format="parquet").to_table().to_pandas()
    by_arrow = by_arrow.sort_values("trial").reset_index(drop=True)
    glob = str(sweep / "results.parquet" / "*.parquet")
    by_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{glob}') ORDER BY trial").df()
    assert len(by_pandas) == 12 and list(by_pandas["trial"]) == list(range(12))
    pd.testing.assert_frame_equal(by_pandas, by_arrow)
    assert list(by_duckdb.columns) == list(by_pandas.columns)
    assert by_duckdb["metric.latency_s"].tolist() == pytest.approx(by_pandas["metric.latency_s"].tolist())
    # SQL over the dotted column names works when quoted, as the doc shows.
    best = duckdb.sql(f"""SELECT "param.chip.interconnect.topology" AS topo, min("metric.latency_s") AS best
                          FROM read_parquet('{glob}') WHERE status = 'COMPLETE' GROUP BY topo""").df()
    assert set(best["topo"]) == set(by_pandas.loc[by_pandas.status == "COMPLETE", "param.chip.interconnect.topology"])


def test_study_opens_with_optuna_and_the_dashboard(sweep):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep / "optuna.journal")))
    study = optuna.load_study(study_name="elk_dse", storage=storage)
    assert len(study.trials) == 12 and study.directions[1] == optuna.study.StudyDirection.MAXIMIZE
    dashboard = pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is a dev dependency")
    app = dashboard.wsgi(storage)

    def get(path: str) -> dict:
        environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
        setup_testing_defaults(environ)
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h, *a: status.append(s)))
        assert status[0].startswith("200"), (path, status)
        return json.loads(body)

    studies = get("/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["elk_dse"]
    detail = get(f"/api/studies/{studies[0]['study_id']}")
    assert len(detail["trials"]) == 12


def test_the_format_doc_lists_every_metric_and_meta_column(sweep):
    text = DOC.read_text()
    documented = set(re.findall(r"`metric\.([a-z0-9_]+)`", text))
    assert documented == set(METRICS), sorted(set(METRICS) ^ documented)
    columns = pd.read_parquet(sweep / "results.parquet").columns
    for meta in [c for c in columns if not c.startswith(("param.", "metric."))]:
        assert f"`{meta}`" in text, meta
