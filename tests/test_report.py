"""The design-review report (issue 7): the data behind every figure, on real evaluations and a real sweep.

Fast: mesh64 with Llama-2-7B decode / BERT-large prefill evaluates in ~0.1 s; the sweep runs in-process
(search.workers=0) once per module.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from elk_dse.breakdown import PARTS, breakdown_from_timings
from elk_dse.cli import main
from elk_dse.errors import ConfigError
from elk_dse.evaluate import evaluate
from elk_dse.results import breakdown_plot, sensitivity, timeline
from elk_dse.results.pareto import Objective, knee_point, pareto_front
from elk_dse.results.plots import pareto_data, roofline_ops_data
from elk_dse.results.report import build_report, unique_designs
from elk_dse.results.store import ResultStore
from elk_dse.search.trial import design_point

CHIP = yaml.safe_load((Path(__file__).parents[1] / "conf" / "chip" / "mesh64.yaml").read_text())
DECODE = {"name": "llama2_7b", "phase": "decode", "batch": 1, "kv_len": 128}
PREFILL = {"name": "bert_large", "phase": "prefill", "batch": 1, "seq_len": 128}


def _evaluate(model: dict, scheduler: str = "elk_full", sim: str = "analytic", **chip_over) -> dict:
    chip = {**CHIP, **chip_over}
    return evaluate(design_point({"chip": chip, "model": model, "scheduler": {"name": scheduler},
                                  "sim": {"name": sim}}))


# ---- latency breakdown (elk_dse/breakdown.py) ---------------------------------------------------------
@pytest.mark.parametrize("model", [DECODE, PREFILL], ids=["decode", "prefill"])
@pytest.mark.parametrize("scheduler", ["elk_full", "sequential"])
@pytest.mark.parametrize("sim", ["analytic", "event"])
def test_breakdown_parts_sum_to_the_latency(model, scheduler, sim):
    res = _evaluate(model, scheduler, sim)
    total = res["breakdown"]["total"]
    parts = [res[f"breakdown_{p}_s"] for p in PARTS]
    assert parts == [total[f"{p}_s"] for p in PARTS]  # the Parquet metrics are the same numbers
    assert min(parts) >= 0
    assert sum(parts) == pytest.approx(res["latency_s"], rel=1e-9)
    # The per-kind split covers the same time (plus idle after the last operator, if any).
    by_kind = sum(sum(b.values()) for b in res["breakdown"]["by_kind"].values())
    assert by_kind <= res["latency_s"] * (1 + 1e-9)
    assert by_kind + total["idle_s"] >= res["latency_s"] * (1 - 1e-9)
    # Compute is the busiest core's compute of every operator: it cannot exceed the compute busy time.
    assert total["compute_s"] <= res["compute_busy_s"] * (1 + 1e-9)
    assert set(res["breakdown"]["by_kind"]) == {op["kind"] for op in res["ops"]}


def test_preloading_hides_hbm_load_that_sequential_exposes():
    seq = _evaluate(PREFILL, "sequential")
    elk = _evaluate(PREFILL, "elk_full")
    assert seq["breakdown_hbm_exposed_s"] > 0.2 * seq["latency_s"]  # load-then-run waits for every load
    assert elk["breakdown_hbm_exposed_s"] < 0.5 * seq["breakdown_hbm_exposed_s"]


def test_breakdown_of_a_hand_made_timeline():
    # op a: loads [0, 2], runs [2, 5] with 2 s compute and 0.5 s sync; op b: no load, runs [6, 7] (1 s
    # compute); op c: its load [6.5, 8] overlaps b, runs [8, 9]. Latency 10 (1 s idle at the end).
    b = breakdown_from_timings(
        kinds=["mm", "add", "mm"],
        start_s=[2, 6, 8],
        end_s=[5, 7, 9],
        load_start_s=[0, 0, 6.5],
        load_end_s=[2, 0, 8],
        compute_s=[2, 1, 0.25],
        sync_s=[0.5, 0, 0],
        latency_s=10,
    )
    t = b.total
    assert (t.compute_s, t.shift_s, t.sync_s) == (3.25, 1.25, 0.5)
    assert t.hbm_exposed_s == 3.0  # [0, 2] before a and [7, 8] before c
    assert t.idle_s == 2.0  # [5, 6] (HBM idle) and [9, 10]
    assert t.total_s == 10
    kinds = dict(b.by_kind)
    assert kinds["add"].idle_s == 1.0 and kinds["mm"].hbm_exposed_s == 3.0
    with pytest.raises(ValueError, match="operator 0"):
        breakdown_from_timings(["x"], [2], [1], [0], [0], [0], [0], 2)


def test_breakdown_plot_data_rejects_parts_that_do_not_sum():
    df = pd.DataFrame({"trial": [0, 1, 2], "metric.latency_s": [1.0, 2.0, np.nan]}
                      | {f"metric.breakdown_{p}_s": [0.2, 0.4, np.nan] for p in PARTS[:4]}
                      | {"metric.breakdown_idle_s": [0.2, 0.4, np.nan]})
    data = breakdown_plot.breakdown_designs_data(df, [1, 0, 2])
    assert data.labels == ("trial 1", "trial 0") and data.n_missing == 1  # trial 2 has no breakdown
    np.testing.assert_allclose(data.seconds.sum(axis=1), data.total_s)
    df.loc[0, "metric.latency_s"] = 1.5
    with pytest.raises(ValueError, match="trial 0"):
        breakdown_plot.breakdown_designs_data(df, [0])


def test_breakdown_by_kind_bars_sum_to_the_latency():
    res = _evaluate(PREFILL, "sequential")
    data = breakdown_plot.breakdown_kinds_data(res)
    assert data.seconds.sum() == pytest.approx(res["latency_s"], rel=1e-9)
    assert set(data.labels) <= {op["kind"] for op in res["ops"]} | {breakdown_plot.TAIL_LABEL}
    broken = json.loads(json.dumps(res))
    broken["breakdown"]["by_kind"]["matmul"]["compute_s"] *= 0.5
    with pytest.raises(ValueError, match="sum to"):
        breakdown_plot.breakdown_kinds_data(broken)


# ---- rooflines: compute, HBM and on-chip network roofs ------------------------------------------------
@pytest.mark.parametrize("model", [DECODE, PREFILL], ids=["decode", "prefill"])
def test_real_ops_never_above_any_roof(model):
    res = _evaluate(model)
    data = roofline_ops_data(res)
    assert len(data.achieved) > 10 and np.isfinite(data.noc_bytes_per_s)
    assert np.all(data.achieved <= data.roof * (1 + 1e-9))
    assert np.all(data.achieved <= data.noc_roof * (1 + 1e-9))
    assert np.isfinite(data.noc_intensity).any()


def test_an_op_faster_than_the_network_allows_is_rejected():
    res = _evaluate(DECODE)
    res["noc_bytes_per_s"] = 1.0  # a network roof of 1 B/s puts every op with network bytes above it
    with pytest.raises(ValueError, match="network roof"):
        roofline_ops_data(res)


# ---- timeline -----------------------------------------------------------------------------------------
def test_timeline_follows_the_simulated_program():
    res = _evaluate(PREFILL)
    data = timeline.timeline_data(res)
    assert len(data.kind) == len(res["ops"])
    assert np.all(data.end_s >= data.start_s) and np.all(data.load_end_s >= data.load_start_s)
    assert data.end_s.max() == pytest.approx(res["latency_s"])
    # The cores run one operator at a time, each after its own load.
    assert np.all(data.start_s[1:] >= data.end_s[:-1] - 1e-12)
    assert np.all(data.start_s >= data.load_end_s - 1e-12)
    bad = json.loads(json.dumps(res))
    bad["ops"][3]["end_s"] = bad["latency_s"] * 2
    with pytest.raises(ValueError, match="after the latency"):
        timeline.timeline_data(bad)


# ---- sensitivity --------------------------------------------------------------------------------------
def test_importance_finds_the_parameter_that_matters():
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({
        "trial": np.arange(n), "status": "COMPLETE", "feasible": True,
        "param.chip.cores.sram_kib": rng.integers(256, 4096, n),
        "param.chip.clock_ghz": rng.uniform(0.8, 2.0, n),
        "param.chip.interconnect.topology": rng.choice(["mesh", "torus"], n),
        "param.fixed": 3,
    })
    df["metric.latency_s"] = 1e-3 * (5000 / df["param.chip.cores.sram_kib"]) + rng.normal(0, 1e-6, n)
    imp = sensitivity.importance_data(df, Objective("metric.latency_s"))
    assert imp.params[0] == "param.chip.cores.sram_kib" and "param.fixed" not in imp.params
    assert imp.importance.sum() == pytest.approx(1.0) and imp.importance[0] > 0.5
    eff = sensitivity.effect_data(df, "param.chip.interconnect.topology", "latency_s")
    assert eff.categories == ("mesh", "torus") and set(eff.x) == {0.0, 1.0} and len(eff.y) == n
    with pytest.raises(ValueError, match="feasible trials"):
        sensitivity.importance_data(df.iloc[:3], Objective("metric.latency_s"))


# ---- the report of a real sweep -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "sweep"
    args = ["sweep", "+chip=mesh64", f"out={out}", "search.n_trials=24", "search.workers=0",
            "search.batch_size=8", "progress=false"]
    assert main(args) == 0
    return out


def _pngs_in(html_text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html_text)]


def test_report_of_a_real_sweep_has_every_section_and_embeds_every_figure(real_sweep):
    html_path = real_sweep / "report" / "report.html"  # built by the sweep itself
    text = html_path.read_text()
    pngs = sorted((real_sweep / "report").glob("*.png"))
    embedded = _pngs_in(text)
    assert sorted(p.read_bytes() for p in pngs) == sorted(embedded)  # every PNG on the page, nothing else
    names = {p.name.split("_")[0] for p in pngs}
    assert {"pareto", "breakdown", "roofline", "importance", "effects", "timeline"} <= names
    for section in ("Pareto fronts", "Pareto designs", "Latency breakdown", "Energy by level", "Rooflines",
                    "Sensitivity", "Timeline", "Provenance"):
        assert re.search(rf'<h2 id="[a-z0-9-]+">{section}</h2>', text), section
    assert text.index("Pareto fronts") < text.index("Provenance")  # pictures first
    meta = json.loads((real_sweep / "sweep.json").read_text())
    assert 0 < meta["loop_s"] < meta["duration_s"] and meta["new_trials"] + meta["reused_trials"] == 24  # rate inputs
    assert f"<td>{meta['seed']}</td>" in text and meta["package_version"] in text
    assert "composed config" in text and "&quot;chip&quot;" in text  # the composed config, escaped JSON
    assert "http://" not in text and "https://" not in text and "<script" not in text.lower()


def test_report_table_lists_exactly_the_front(real_sweep):
    df = ResultStore(real_sweep).read()
    objs = [Objective(o["name"], o["direction"]) for o in json.loads((real_sweep / "sweep.json").read_text())
            ["objectives"]]
    front = pareto_front(df, objs)
    text = (real_sweep / "report" / "report.html").read_text()
    table = text[text.index(">Pareto designs</h2>"):text.index(">Latency breakdown</h2>")]
    listed = [int(t) for t in re.findall(r"<tr(?: class=\"knee\")?><td class=num>(\d+)", table)]
    # One row per distinct design: the front of the rows with duplicates of a configuration dropped.
    assert len(listed) == len(set(listed)) and set(listed) == set(unique_designs(front)["trial"])
    knee = int(front.loc[knee_point(front, objs), "trial"])
    assert f"{knee} (knee)" in table
    # The plot marks the same knee as the table.
    d = pareto_data(df, objs[0].name, objs[1].name, [o.direction for o in objs])
    assert int(d.trial[d.knee]) == knee
    # Long parameter names can break after dots (the table used to overflow the page).
    assert "chip.<wbr>cores.<wbr>sram_kib [KiB]" in table and 'class="tablebox"' in table


def test_two_real_sweeps_compare_on_one_page(real_sweep, tmp_path):
    other = tmp_path / "other"
    assert main(["sweep", "+chip=mesh64", f"out={other}", "search.n_trials=8", "search.workers=0",
                 "search.batch_size=8", "search.seed=5", "progress=false", "report=false"]) == 0
    html_path = build_report([real_sweep, other], tmp_path / "both")
    text = html_path.read_text()
    assert len(list((tmp_path / "both").glob("pareto_*.png"))) == 1  # one overlaid front per pair
    assert len(list((tmp_path / "both").glob("timeline_*.png"))) == 2  # one per sweep
    assert sorted(p.read_bytes() for p in (tmp_path / "both").glob("*.png")) == sorted(_pngs_in(text))


# ---- bad and partial folders ----------------------------------------------------------------------------
def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("report"))
    return dst


def test_corrupt_parquet_part_is_one_line_naming_the_file(real_sweep, tmp_path, capsys):
    folder = _copy(real_sweep, tmp_path / "s")
    part = sorted((folder / "results.parquet").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:100])  # truncated
    with pytest.raises(ConfigError, match=re.escape(part.name)):
        build_report([folder])
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(part) in err


def test_corrupt_sweep_json_is_one_line_naming_the_file(real_sweep, tmp_path, capsys):
    folder = _copy(real_sweep, tmp_path / "s")
    (folder / "sweep.json").write_text('{"seed": 0, "chip": ')
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(folder / "sweep.json") in err


def test_partial_sweep_still_reports_what_it_has(real_sweep, tmp_path):
    folder = _copy(real_sweep, tmp_path / "s")
    (folder / "sweep.json").unlink()  # a sweep that has not written its provenance
    designs = sorted((folder / "designs").glob("trial_*.json"))
    for d in designs:
        d.write_text("{not json")  # corrupt design files: noted, the rest is drawn
    text = build_report([folder]).read_text()
    assert "sweep.json is missing" in text
    knee = re.search(r"(\d+) \(knee\)", text).group(1)
    assert f"trial_{knee}.json: cannot be read" in text
    assert '<h2 id="pareto-fronts">Pareto fronts</h2>' in text and '<h2 id="sensitivity">Sensitivity</h2>' in text
    names = {p.name.split("_")[0] for p in (folder / "report").glob("*.png")}
    assert {"pareto", "breakdown", "roofline", "importance"} <= names and "timeline" not in names
    # No design files at all (the sweep was interrupted before writing them): a note, not an error.
    for d in designs:
        d.unlink()
    text = build_report([folder]).read_text()
    assert "no design file" in text


def test_missing_folder_is_a_config_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="nope"):
        build_report([tmp_path / "nope"])
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_sweep_that_has_only_started_gets_a_report(tmp_path, capsys):
    folder = tmp_path / "starting"
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps({"seed": 1, "chip": "mesh64", "model": "llama2_7b"}))
    assert main(["report", str(folder)]) == 0
    text = (folder / "report" / "report.html").read_text()
    assert "no trials yet" in text and '<h2 id="provenance">Provenance</h2>' in text
