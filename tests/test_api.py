"""The Python API (issue 19): elk_dse.evaluate / sweep / load, and the example notebook, run as written."""

from __future__ import annotations

import json
import math
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import elk_dse

ROOT = Path(__file__).resolve().parents[1]


def test_evaluate_latency_is_the_cli_number():
    r = elk_dse.evaluate(chip="mesh64", model="llama2_7b")
    out = subprocess.run([sys.executable, "-m", "elk_dse", "evaluate", "+chip=mesh64", "model=llama2_7b",
                          "format=json"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    cli = json.loads(out.stdout)
    assert r.latency_s == cli["latency_s"] and r.feasible
    timing = {"eval_s"}
    assert {k: v for k, v in r.to_dict().items() if k not in timing} == \
        {k: v for k, v in cli.items() if k not in timing}


def test_overrides_by_mapping_and_keywords_agree():
    a = elk_dse.evaluate("mesh64", "bert_base", overrides={"model.seq_len": 32, "chip.cores.sram_kib": 2048})
    b = elk_dse.evaluate("mesh64", "bert_base", model__seq_len=32, chip__cores__sram_kib=2048)
    assert a.latency_s == b.latency_s and a["model"]["seq_len"] == 32
    assert a["chip"]["cores"]["sram_kib"] == 2048


def test_bad_input_raises_config_error_with_the_cli_message():
    with pytest.raises(elk_dse.ConfigError, match="model='llama9' is invalid"):
        elk_dse.evaluate(chip="mesh64", model="llama9")
    with pytest.raises(elk_dse.ConfigError, match="chip.cores.sram_kb"):
        elk_dse.evaluate(chip="mesh64", chip__cores__sram_kb=1)


def test_infeasible_is_a_result():
    r = elk_dse.evaluate(chip="mesh64", model="llama2_70b", chip__hbm__capacity_gib=16)
    assert not r.feasible and r.infeasible_reason == "hbm_capacity" and math.isnan(r.latency_s)
    assert r.to_dict()["latency_s"] is None


def test_sweep_writes_what_the_cli_writes_and_load_reads_it(tmp_path):
    out = tmp_path / "s"
    s = elk_dse.sweep(chip="mesh64", n_trials=8, batch_size=4, workers=0, out=out)
    assert list(s.rows["trial"]) == list(range(8))
    assert (out / "designs").is_dir() and s.report is not None and s.report.is_file()
    assert s.study.metric_names == ["latency_s", "area_mm2"]
    assert s.knee is not None and int(s.knee["trial"]) in set(s.front["trial"])
    again = elk_dse.sweep(chip="mesh64", n_trials=8, batch_size=4, workers=0, out=out)  # resumes: nothing new
    assert again.rows.drop(columns=["duration_s", "metric.eval_s"]).equals(
        s.rows.drop(columns=["duration_s", "metric.eval_s"]))
    assert elk_dse.load(out).meta["fingerprint"] == s.meta["fingerprint"]
    with pytest.raises(elk_dse.ConfigError, match="another configuration"):
        elk_dse.sweep(chip="mesh64", n_trials=8, batch_size=4, workers=0, out=out, model__batch=2)


def test_every_public_name_is_documented():
    doc = (ROOT / "docs" / "api.md").read_text()
    for name in elk_dse.__all__:
        assert f"`{name}" in doc or f"elk_dse.{name}" in doc, name


def test_example_notebook_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(ROOT / "examples" / "api_tour.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "Pareto designs; knee: trial" in printed and "error: model='llama9'" in printed
    assert (tmp_path / "results" / "api_tour" / "report" / "report.html").is_file()
