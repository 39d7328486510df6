"""elk_dse.results: Parquet store, Pareto analysis, roofline data and the HTML report (real files only)."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from elk_dse.results.pareto import knee_point, pareto_front, pareto_mask
from elk_dse.results.plots import pareto_data, roofline_ops_data, roofline_sweep_data
from elk_dse.results.report import build_report
from elk_dse.results.store import META_COLUMNS, REQUIRED_METRICS, ResultStore, make_schema
from elk_dse.results.units import format_quantity, unit_for

PARAMS = {"cores": "int", "clock_ghz": "float", "topology": "str"}
OBJECTIVES = [
    {"name": "metric.latency_s", "direction": "minimize"},
    {"name": "metric.area_proxy_mm2", "direction": "minimize"},
]


def _schema() -> pa.Schema:
    return make_schema(PARAMS, ["energy_j"])


# ---- store --------------------------------------------------------------------------------------------
def test_schema_has_meta_params_and_required_metrics():
    schema = _schema()
    assert tuple(schema.names[: len(META_COLUMNS)]) == META_COLUMNS
    assert schema.field("param.cores").type == pa.int64()
    assert schema.field("param.clock_ghz").type == pa.float64()
    assert schema.field("param.topology").type == pa.string()
    for m in (*REQUIRED_METRICS, "energy_j"):
        assert schema.field(f"metric.{m}").type == pa.float64()
    with pytest.raises(ValueError, match="complex"):
        make_schema({"x": "complex"}, [])


def test_round_trip_keeps_types_nan_and_empty_strings(tmp_path):
    store = ResultStore(tmp_path, _schema())
    base = dict(status="COMPLETE", feasible=True, infeasible_reason="", error="", seed=7)
    rows = [
        base | {"trial": 0, "param.cores": 64, "param.clock_ghz": 1, "param.topology": "mesh"},
        base | {"trial": 1, "status": "INFEASIBLE", "feasible": False, "infeasible_reason": "sram"},
    ]
    rows[0]["metric.latency_s"] = 1.5e-3
    rows[1] |= {"param.cores": 16, "param.clock_ghz": 1.2, "param.topology": "", "metric.latency_s": math.nan}
    part = store.append(rows)
    assert part is not None and part.name == "part-00000000-00000001.parquet"
    assert pq.read_schema(part).equals(_schema())  # exactly the schema, metadata aside
    df = store.read()
    assert list(df.columns) == _schema().names
    assert df["param.cores"].dtype == np.int64 and df["trial"].dtype == np.int64
    assert df["param.clock_ghz"].dtype == np.float64  # an int value did not turn the column into int64
    assert df.loc[0, "param.clock_ghz"] == 1.0 and df.loc[1, "param.topology"] == ""
    assert df.loc[0, "infeasible_reason"] == "" and df.loc[1, "infeasible_reason"] == "sram"
    assert math.isnan(df.loc[1, "metric.latency_s"])
    assert math.isnan(df.loc[0, "metric.area_proxy_mm2"])  # missing key -> null -> NaN
    assert df["feasible"].tolist() == [True, False]
    assert store.trials() == {0, 1}
    # The same data through plain pandas, as other tools will read it.
    assert len(pd.read_parquet(store.path)) == 2


def test_empty_store_reads_as_empty_frame_with_columns(tmp_path):
    store = ResultStore(tmp_path / "sweep", _schema())
    df = store.read()
    assert df.empty and list(df.columns) == _schema().names
    assert store.trials() == set()
    assert ResultStore(tmp_path / "sweep").read().empty  # read-only, no schema


def test_duplicate_trial_keeps_the_row_written_last(tmp_path):
    store = ResultStore(tmp_path, _schema())
    store.append([{"trial": 5, "status": "COMPLETE", "metric.latency_s": 1.0}])
    # Written later but sorts first by file name: write order must win, not name order.
    store.append([{"trial": t, "status": "COMPLETE", "metric.latency_s": 2.0} for t in range(6)])
    df = store.read()
    assert df["trial"].tolist() == list(range(6))
    assert df.loc[df["trial"] == 5, "metric.latency_s"].item() == 2.0
    # A fresh store object (e.g. a resumed driver) keeps ordering after the existing parts.
    ResultStore(tmp_path, _schema()).append([{"trial": 5, "status": "FAIL", "error": "boom"}])
    df = ResultStore(tmp_path).read()
    assert len(df) == 6 and df.loc[df["trial"] == 5, "status"].item() == "FAIL"


def test_same_trial_range_twice_does_not_overwrite_a_part(tmp_path):
    store = ResultStore(tmp_path, _schema())
    store.append([{"trial": t} for t in range(4)])
    store.append([{"trial": 0}, {"trial": 3, "status": "FAIL"}])
    df = store.read()
    assert df["trial"].tolist() == [0, 1, 2, 3] and df.loc[3, "status"] == "FAIL"


def test_unknown_key_raises_naming_it(tmp_path):
    store = ResultStore(tmp_path, _schema())
    with pytest.raises(ValueError, match="metric.latncy_s"):
        store.append([{"trial": 0, "metric.latncy_s": 1.0}])
    with pytest.raises(ValueError, match="param.cores"):
        store.append([{"trial": 0, "param.cores": "sixty-four"}])
    with pytest.raises(ValueError, match="trial"):
        store.append([{"status": "COMPLETE"}])
    assert not store.path.exists() or not any(store.path.iterdir())  # nothing half-written


def test_temp_files_never_visible_to_read_parquet(tmp_path):
    store = ResultStore(tmp_path, _schema())
    for b in range(3):
        store.append([{"trial": 10 * b + i, "metric.latency_s": float(i)} for i in range(10)])
    files = sorted(p.name for p in store.path.iterdir())
    assert all(f.startswith("part-") and f.endswith(".parquet") for f in files) and len(files) == 3
    # A writer killed mid-write leaves its dot-prefixed temporary file behind: readers must not care.
    (store.path / ".part-00000030-00000039.parquet.123.abcd1234.tmp").write_bytes(b"PAR1 half a file")
    assert len(pd.read_parquet(store.path)) == 30
    assert len(store.read()) == 30 and store.trials() == set(range(30))


# ---- Pareto -------------------------------------------------------------------------------------------
def _brute_force_mask(values: np.ndarray, directions: list[str]) -> np.ndarray:
    m = values * np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    n = len(m)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if np.isnan(m[i]).any():
            continue
        out[i] = not any(
            not np.isnan(m[j]).any() and np.all(m[j] <= m[i]) and np.any(m[j] < m[i]) for j in range(n)
        )
    return out


@settings(max_examples=200, deadline=None)
@given(
    data=st.integers(1, 3).flatmap(
        lambda k: st.tuples(
            hnp.arrays(
                np.float64,
                st.tuples(st.integers(0, 40), st.just(k)),
                elements=st.sampled_from([0.0, -0.0, 1.0, 2.0, 3.0, -1.5, np.nan, np.inf, -np.inf])
                | st.floats(-5, 5),
            ),
            st.lists(st.sampled_from(["minimize", "maximize"]), min_size=k, max_size=k),
        )
    )
)
def test_pareto_mask_matches_brute_force(data):
    values, directions = data
    np.testing.assert_array_equal(pareto_mask(values, directions), _brute_force_mask(values, directions))


def test_pareto_mask_on_10000_by_3_equals_the_pairwise_definition():
    """Correctness at size (its speed is a benchmark: `python benchmarks/bench.py pareto`)."""
    values = np.random.default_rng(0).random((10_000, 3))
    senses = ["minimize", "maximize", "minimize"]
    mask = pareto_mask(values, senses)
    signed = values * np.array([1.0, -1.0, 1.0])  # all minimized
    dominated = np.zeros(len(signed), dtype=bool)
    for start in range(0, len(signed), 500):  # pairwise in blocks: a point is dominated by another
        block = signed[start:start + 500, None, :]
        le = (signed[None, :, :] <= block).all(axis=2) & (signed[None, :, :] < block).any(axis=2)
        dominated[start:start + 500] = le.any(axis=1)
    assert (mask == ~dominated).all() and 0 < mask.sum() < 10_000
    # The worst case for the algorithm: every point on the front.
    x = np.linspace(0, 1, 10_000)
    assert pareto_mask(np.column_stack([x, 1 - x, x]), ["minimize"] * 2 + ["maximize"]).all()


def _random_trials(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    status = rng.choice(["COMPLETE", "INFEASIBLE", "FAIL"], size=n, p=[0.7, 0.2, 0.1])
    return pd.DataFrame(
        {
            "trial": np.arange(n),
            "status": status,
            "feasible": status == "COMPLETE",
            "metric.latency_s": rng.random(n),
            "metric.area_proxy_mm2": rng.random(n) * 100,
            "metric.throughput_per_s": rng.random(n),
        }
    )


def test_front_is_exactly_the_non_dominated_feasible_set():
    df = _random_trials(300)
    # Infeasible rows that dominate everything must still never be on the front.
    df.loc[df["status"] != "COMPLETE", ["metric.latency_s", "metric.area_proxy_mm2"]] = -1.0
    objs = [
        ("metric.latency_s", "minimize"),
        ("area_proxy_mm2", "minimize"),
        ("throughput_per_s", "maximize"),
    ]
    front = pareto_front(df, objs)
    ok = df[df["status"] == "COMPLETE"]
    ref = _brute_force_mask(
        ok[["metric.latency_s", "metric.area_proxy_mm2", "metric.throughput_per_s"]].to_numpy(),
        ["minimize", "minimize", "maximize"],
    )
    assert set(front["trial"]) == set(ok["trial"][ref])
    assert (front["status"] == "COMPLETE").all()
    assert front["metric.latency_s"].is_monotonic_increasing


def test_knee_point_is_closest_to_utopia():
    front = pd.DataFrame(
        {"metric.latency_s": [1.0, 2.0, 10.0], "metric.area_proxy_mm2": [100.0, 20.0, 1.0]},
        index=[10, 11, 12],
    )
    assert knee_point(front, OBJECTIVES) == 11
    with pytest.raises(ValueError):
        knee_point(front.iloc[:0], OBJECTIVES)


# ---- roofline -----------------------------------------------------------------------------------------
def _metrics(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    peak = rng.uniform(1e13, 1e15, n)
    bw = rng.uniform(1e11, 3e12, n)
    flops = rng.uniform(1e9, 1e13, n)
    hbm = rng.uniform(1e6, 1e11, n)
    bound = np.maximum(flops / peak, hbm / bw)
    return dict(peak=peak, bw=bw, flops=flops, hbm=hbm, bound=bound, latency=bound * rng.uniform(1, 3, n))


def _sweep_rows(n: int, seed: int = 2) -> list[dict]:
    rng = np.random.default_rng(seed)
    m = _metrics(rng, n)
    rows = []
    for i in range(n):
        status = "COMPLETE" if i % 7 else ("INFEASIBLE" if i % 2 else "FAIL")
        row = dict(trial=i, status=status, feasible=status == "COMPLETE", seed=3, duration_s=0.01)
        row |= dict(config_hash=f"h{i}", package_version="0.1.0")
        row["infeasible_reason"] = "sram overflow" if status == "INFEASIBLE" else ""
        row["error"] = "Traceback: boom" if status == "FAIL" else ""
        params = dict(cores=int(rng.choice([16, 64, 256])), clock_ghz=rng.uniform(0.8, 2))
        params["topology"] = str(rng.choice(["mesh", "torus"]))
        row |= {f"param.{k}": v for k, v in params.items()}
        if status != "FAIL":
            metrics = dict(latency_s=m["latency"][i], roofline_latency_s=m["bound"][i], flops=m["flops"][i])
            metrics |= dict(hbm_bytes=m["hbm"][i], peak_flops_per_s=m["peak"][i], hbm_bytes_per_s=m["bw"][i])
            metrics |= dict(area_proxy_mm2=params["cores"] * rng.uniform(1, 2), noc_bytes=1e8)
            row |= {f"metric.{k}": float(v) for k, v in metrics.items()}
        rows.append(row)
    return rows


def test_roofline_sweep_points_never_above_the_roof():
    df = pd.DataFrame(_sweep_rows(500))
    df.loc[3, "metric.hbm_bytes"] = 0.0  # all on-chip: flagged and placed at the right edge
    data = roofline_sweep_data(df)
    assert len(data.x) == (df["status"] == "COMPLETE").sum()
    assert np.all(data.y <= data.roof * (1 + 1e-9)) and np.all(data.y > 0)
    assert data.no_hbm.sum() == 1 and data.x[data.no_hbm][0] == data.x_edge > data.x[~data.no_hbm].max()
    bad = df.copy()
    bad.loc[1, "metric.latency_s"] = bad.loc[1, "metric.roofline_latency_s"] * 0.5
    with pytest.raises(ValueError, match="trial 1"):
        roofline_sweep_data(bad)


def _design(n_ops: int = 12, seed: int = 4) -> dict:
    rng = np.random.default_rng(seed)
    peak, bw = 5e14, 2e12
    ops, t = [], 0.0
    for i in range(n_ops):
        flops = float(rng.uniform(1e8, 1e11))
        hbm = 0.0 if i % 5 == 4 else float(rng.uniform(1e5, 1e9))
        dur = max(flops / peak, hbm / bw) * float(rng.uniform(1.0, 2.0))
        op = dict(name=f"op{i}", kind=["matmul", "attention", "norm"][i % 3], layer=i // 3, start_s=t)
        op |= dict(end_s=t + dur, flops=flops, hbm_bytes=hbm, noc_bytes=1e6, compute_s=flops / peak)
        ops.append(op | dict(noc_s=0.0, load_s=hbm / bw, sync_s=0.0))
        t += dur
    copy = dict(name="copy", kind="copy", layer=0, start_s=t, end_s=t + 1e-6, flops=0.0, hbm_bytes=1e6)
    ops.append(copy | dict(noc_bytes=0.0, compute_s=0.0, noc_s=0.0, load_s=1e-6, sync_s=0.0))
    derived = dict(peak_flops_per_s=peak, hbm_bytes_per_s=bw, bisection_bytes_per_s=1e13)
    totals = dict(latency_s=t + 1e-6, roofline_latency_s=t / 2, flops=1.0, hbm_bytes=1.0, noc_bytes=0.0)
    return totals | {"chip": {"derived": derived}, "ops": ops}


def test_roofline_ops_never_above_the_roof():
    data = roofline_ops_data(_design())
    assert len(data.achieved) == 12 and data.n_skipped == 1  # the zero-FLOP copy cannot be placed
    assert np.all(data.achieved <= data.roof * (1 + 1e-9))
    assert data.no_hbm.sum() == 2 and np.all(data.intensity[data.no_hbm] == data.x_edge)
    bad = _design()
    bad["ops"][2]["end_s"] = bad["ops"][2]["start_s"] + 1e-12  # faster than the roof allows
    with pytest.raises(ValueError, match="op2"):
        roofline_ops_data(bad)


def test_pareto_plot_data_partitions_the_points():
    df = pd.DataFrame(_sweep_rows(200))
    d = pareto_data(df, "latency_s", "metric.area_proxy_mm2", ["minimize", "minimize"], label="a")
    assert np.all(d.front.astype(int) + d.dominated + d.infeasible == 1)
    assert d.n_missing == (df["status"] == "FAIL").sum()  # FAIL rows have no metrics to draw
    assert set(d.trial[d.front]) == set(pareto_front(df, OBJECTIVES)["trial"])
    assert d.knee is not None and d.front[d.knee]


def test_units_follow_the_suffix():
    assert unit_for("metric.latency_s", [2e-3, 5e-3]).symbol == "ms"
    assert unit_for("metric.hbm_bytes", [3e9]).symbol == "GB"
    assert unit_for("metric.peak_flops_per_s", [4e14]).symbol == "TFLOP/s"
    assert unit_for("metric.area_proxy_mm2", [400]).symbol == "mm²"
    assert format_quantity("metric.latency_s", 0.0123) == "12.3 ms"
    assert format_quantity("metric.latency_s", float("nan")) == "n/a"
    assert format_quantity("metric.energy_per_item_j", 0.8161) == "816.1 mJ"
    assert format_quantity("metric.power_w", 27.79) == "27.79 W"
    assert unit_for("metric.perf_per_w", [3.0]).symbol == "/s/W"
    assert unit_for("metric.hbm_bytes_per_s", [2e12]).symbol == "TB/s"  # a rate, not a time


# ---- report -------------------------------------------------------------------------------------------
def _make_sweep(folder: Path, n: int = 60, model: str = "llama-7b", seed: int = 2) -> Path:
    store = ResultStore(folder, _schema())
    rows = _sweep_rows(n, seed)
    for lo in range(0, n, 16):
        store.append(rows[lo : lo + 16])
    meta = dict(command="sweep", chip={"name": "mesh64"}, model=model, sweep="small", seed=3, duration_s=61.0)
    meta |= dict(
        package_version="0.1.0", started_at="2025-01-01T00:00:00Z", finished_at="2025-01-01T00:01:00Z"
    )
    meta |= dict(objectives=OBJECTIVES, composed_config={"model": {"name": model}})
    (folder / "sweep.json").write_text(json.dumps(meta))
    df = store.read()
    front = pareto_front(df, OBJECTIVES)
    knee_trial = int(front.loc[knee_point(front, OBJECTIVES), "trial"])
    (folder / "designs").mkdir()
    (folder / "designs" / f"trial_{knee_trial}.json").write_text(json.dumps(_design()))
    return folder


def _embedded_pngs(html_text: str, out_dir: Path) -> list[str]:
    pngs = sorted(out_dir.glob("*.png"))
    assert pngs
    for png in pngs:
        assert base64.b64encode(png.read_bytes()).decode() in html_text, png.name
    return [p.name for p in pngs]


def test_report_embeds_every_png_and_escapes_user_strings(tmp_path):
    evil = "<script>alert(1)</script>"
    sweep = _make_sweep(tmp_path / "sweep_a", model=evil)
    html_path = build_report([sweep])
    assert html_path == sweep / "report" / "report.html"
    text = html_path.read_text()
    names = _embedded_pngs(text, sweep / "report")
    assert "pareto_latency_s__area_proxy_mm2.png" in names and "roofline_sweep.png" in names
    assert any(n.startswith("roofline_ops_sweep_a_trial") for n in names)
    assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script" not in text.lower()
    assert "http://" not in text and "https://" not in text  # self-contained: opens without network
    assert "sram overflow" in text and "mesh64" in text


def test_two_folders_make_one_page(tmp_path):
    a = _make_sweep(tmp_path / "sweep_a", seed=2)
    b = _make_sweep(tmp_path / "sweep_b", n=40, model="gpt2", seed=5)
    out = tmp_path / "combined"
    html_path = build_report([a, b], out)
    text = html_path.read_text()
    assert [p.name for p in out.glob("*.html")] == ["report.html"]
    assert "sweep_a" in text and "sweep_b" in text and "gpt2" in text
    assert len(list(out.glob("pareto_*.png"))) == 1  # fronts overlaid, not one plot per sweep
    _embedded_pngs(text, out)


def test_report_of_an_empty_sweep_says_no_trials_yet(tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps({"model": "m", "chip": "c", "objectives": OBJECTIVES}))
    text = build_report([folder]).read_text()
    assert "no trials yet" in text.lower()
    assert not list((folder / "report").glob("*.png"))
