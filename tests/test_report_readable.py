"""The report stays readable on real sweeps (issue 19): one row per design, human headers with units, a
table of contents whose anchors resolve, provenance with commit / versions / host, a why-slow line per
Pareto design, per-op views that summarize 500 operators. Structural checks on the HTML and the data
functions; the screenshots in docs/img are a documentation step (headless Chromium), not a test."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from elk_dse.cli import main
from elk_dse.evaluate import evaluate
from elk_dse.results import diagnosis, plots, timeline
from elk_dse.results.pareto import Objective
from elk_dse.results.provenance import environment, git_commit
from elk_dse.results.report import _front_table, build_report, unique_designs
from elk_dse.results.units import axis_label, human_name, unit_for
from elk_dse.search.trial import design_point

# The checkout's commit when the module's sweep ran: a commit made while the suite runs must not fail the test.
_COMMIT_AT_SWEEP: dict[Path, str | None] = {}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("readable") / "sweep"
    _COMMIT_AT_SWEEP[out] = git_commit()
    assert main(["sweep", "+chip=mesh64", f"out={out}", "search.n_trials=16", "search.workers=0",
                 "search.batch_size=8", "progress=false"]) == 0
    return out


CHIP = yaml.safe_load((Path(__file__).parents[1] / "conf" / "chip" / "mesh64.yaml").read_text())
DECODE = {"name": "llama2_7b", "phase": "decode", "batch": 1, "kv_len": 256}


@functools.lru_cache(maxsize=1)
def _decode_json() -> str:
    point = design_point({"chip": CHIP, "model": DECODE, "scheduler": {"name": "elk_full"}, "sim": {"name": "analytic"}})
    return json.dumps(evaluate(point), default=str)


def _decode_design() -> dict:
    return json.loads(_decode_json())


def test_every_section_is_in_the_table_of_contents_and_every_anchor_resolves(sweep):
    text = (sweep / "report" / "report.html").read_text()
    toc = text[text.index('<nav class="toc">'):text.index("</nav>")]
    hrefs = re.findall(r'href="#([^"]+)"', toc)
    ids = re.findall(r'<h2 id="([^"]+)">', text)
    assert hrefs == ids and len(ids) == len(set(ids)) >= 8
    assert text.index("</nav>") < text.index('<h2 id="pareto-fronts">')
    assert '<h2 id="energy-by-level">' in text  # issue 20's section stays


def test_headers_are_human_with_units_and_the_table_has_throughput(sweep):
    text = (sweep / "report" / "report.html").read_text()
    table = text[text.index(">Pareto designs</h2>"):text.index(">Latency breakdown</h2>")]
    headers = re.findall(r"<th>(.*?)</th>", table)
    assert any(h.startswith("latency [") and "(objective)" in h for h in headers)
    assert any(h.startswith("throughput [") and "items/s]" in h for h in headers)
    assert any(h.startswith("area [mm²]") for h in headers)
    # No raw metric names ("latency_s [ms]") anywhere a reader looks: headers, summary, captions.
    assert not re.search(r"\b(latency_s|area_mm2|throughput_per_s)\b", re.sub(r"<pre>.*?</pre>", "", text, flags=re.S))
    # Parameter keys break only at dots, never inside a word.
    assert all("<wbr>" not in h.split(".<wbr>")[-1] for h in headers)


def test_why_slow_line_for_every_listed_design(sweep):
    text = (sweep / "report" / "report.html").read_text()
    table = text[text.index(">Pareto designs</h2>"):text.index(">Latency breakdown</h2>")]
    rows = re.findall(r"<tr(?: class=\"knee\")?><td class=num>(\d+)", table)
    why = re.findall(r"<li><b>trial (\d+)</b>: (\d+)% ", table)
    assert [t for t, _ in why] == rows and all(0 < int(p) <= 100 for _, p in why)


def test_provenance_names_commit_versions_and_host(sweep):
    text = (sweep / "report" / "report.html").read_text()
    prov = text[text.index(">Provenance</h2>"):]
    env = environment()
    for name, version in env["versions"].items():  # type: ignore[union-attr]
        assert f"{name} {version}" in prov
    assert str(env["host"]) in prov and "git commit" in prov
    commit = _COMMIT_AT_SWEEP[sweep]
    assert commit is None or commit.split("-")[0] in prov


def test_git_commit_is_none_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) is None
    commit = git_commit()  # the package itself: a 40-hex hash when it runs from a checkout
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit)


def test_a_configuration_sampled_twice_is_one_row_saying_so():
    df = pd.DataFrame({
        "trial": [3, 7, 5, 9],
        "status": "COMPLETE",
        "feasible": True,
        "config_hash": ["a", "b", "a", "c"],
        "param.chip.cores.sram_kib": [512, 1024, 512, 2048],
        "metric.latency_s": [2e-3, 1e-3, 2e-3, 0.5e-3],
        "metric.area_mm2": [100.0, 200.0, 100.0, 300.0],
        "metric.throughput_per_s": [500.0, 1000.0, 500.0, 2000.0],
    })
    uniq = unique_designs(df)
    assert sorted(uniq["trial"]) == [3, 7, 9]
    objs = [Objective("metric.latency_s"), Objective("metric.area_mm2")]
    html_text = _front_table(uniq.sort_values("metric.latency_s"), objs, uniq.index[0],
                             {"a": [3, 5], "b": [7], "c": [9]})
    assert html_text.count("<tr><td class=num>") + html_text.count('<tr class="knee">') == 3
    assert "2x (also 5)" in html_text and "<th>latency [ms] (objective)</th>" in html_text
    assert "<th>throughput [kitems/s]</th>" in html_text
    # The Pareto plot draws the duplicate once, too.
    d = plots.pareto_data(df, "latency_s", "area_mm2", ["minimize", "minimize"])
    assert sorted(d.trial) == [3, 7, 9] and int(d.front.sum()) == 3


def test_human_labels():
    assert axis_label("metric.latency_s", unit_for("metric.latency_s", 0.02)) == "latency [ms]"
    assert axis_label("metric.area_mm2", unit_for("metric.area_mm2", 300)) == "area [mm²]"
    assert axis_label("metric.perf_per_w", unit_for("metric.perf_per_w", 1)) == "throughput per watt [items/s/W]"
    assert human_name("metric.hbm_busy_s") == "hbm busy"
    assert human_name("param.chip.cores.sram_kib") == "chip.cores.sram_kib"


def test_pareto_zoom_keeps_the_front_and_says_what_is_outside():
    front = np.array([1.0, 1.2, 1.5, 2.0])
    values = np.concatenate([front, [1.3, 1.8, 50.0, 80.0]])  # two far outliers
    lo, hi = plots.zoom_limits(front, values, log=True)
    assert lo <= 1.0 and hi >= 2.0 and hi < 50.0
    assert plots.zoom_limits(front, np.concatenate([front, [2.2]]), log=True) is None  # nothing to zoom


def test_why_slow_explains_batch_one_matrix_utilisation_and_it_never_beats_the_systolic_bound():
    result = _decode_design()
    row = {k: v for k, v in result.items() if isinstance(v, int | float)}
    rows, cols = CHIP["cores"]["matrix_rows"], CHIP["cores"]["matrix_cols"]
    config = {"model": {"phase": "decode", "batch": 1}, "chip": {"cores": {"matrix_rows": rows,
                                                                              "matrix_cols": cols}}}
    u = diagnosis.matrix_utilisation(row)
    assert 0 < u <= 1 / (1 + rows + cols) * (1 + 1e-9)  # m/(m+rows+cols) at m = 1: fill and drain
    text = diagnosis.why_slow(row, config)
    assert re.match(r"\d+% ", text) and "roofline bound" in text
    if max(diagnosis.PARTS, key=lambda p: row[f"breakdown_{p}_s"]) == "compute":
        assert f"{rows}x{cols} systolic" in text and f"{1 / (1 + rows + cols):.1%}" in text
    hbm_row = dict(row, breakdown_compute_s=0.0, breakdown_hbm_exposed_s=row["latency_s"] - row["breakdown_shift_s"]
                   - row["breakdown_sync_s"] - row["breakdown_idle_s"])
    assert "waiting for HBM loads" in diagnosis.why_slow(hbm_row, config)
    assert diagnosis.why_slow({"latency_s": 1.0}) == "no latency breakdown stored"


def test_operators_by_name_summarize_hundreds_of_ops_under_their_roofs():
    design = _decode_design()
    g = plots.op_groups_data(design)
    assert int(g.count.sum()) == len(design["ops"]) > 400 and len(g.name) < 25
    assert float(g.flops.sum()) == pytest.approx(design["flops"], rel=1e-9)
    assert np.all(np.diff(g.time_s) <= 0)  # most time first
    ok = g.flops > 0
    assert np.all(g.achieved[ok] <= g.roof[ok] * (1 + 1e-6))  # physics: no group above its roof


def test_timeline_zoom_is_one_layer_instance_inside_the_pass():
    design = _decode_design()
    data = timeline.timeline_data(design)
    lo, hi, label = timeline.zoom_window(data)
    members = [i for i, g in enumerate(data.group) if g == label]
    assert 0 <= lo < hi <= data.latency_s and 5 <= len(members) < len(data.kind) / 10
    assert all(lo <= data.start_s[i] and data.end_s[i] <= hi for i in members)


def test_two_sweep_page_keeps_knees_out_of_the_plot(sweep, tmp_path):
    other = tmp_path / "other"
    assert main(["sweep", "+chip=mesh64", f"out={other}", "search.n_trials=8", "search.workers=0",
                 "search.batch_size=8", "search.seed=5", "progress=false", "report=false"]) == 0
    text = build_report([sweep, other], tmp_path / "both").read_text()
    assert text.count("<h3>") >= 2 and len(re.findall(r'<h2 id="', text)) >= 8
