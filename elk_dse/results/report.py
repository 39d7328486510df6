"""A self-contained HTML report of one or several sweep folders, built from the folder contents alone.

Reads ``results.parquet/``, ``sweep.json`` and ``designs/trial_<n>.json``; writes PNGs and ``report.html``
(images embedded as base64 data URIs, inline CSS, no script, no network) into ``out_dir``.
Every string that comes from a file goes through ``html.escape``: model and chip names are user input.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from elk_dse.results import plots
from elk_dse.results.pareto import Objective, as_objectives, knee_point, pareto_front
from elk_dse.results.store import PARAM_PREFIX, STATUSES, ResultStore
from elk_dse.results.units import bare_name, format_duration, format_quantity

DEFAULT_OBJECTIVES = (Objective("metric.latency_s"), Objective("metric.area_proxy_mm2"))
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}tr.knee{background:#fff6d5}
img{max-width:100%;border:1px solid #eee}.warn{background:#fdecea;padding:.5em 1em;border-left:4px solid #d33}
.empty{background:#eef3fb;padding:.5em 1em;border-left:4px solid #48c}figure{margin:1em 0}
figcaption{color:#555;font-size:.9em}
"""


@dataclass(frozen=True)
class SweepFolder:
    """What a sweep folder holds: its provenance (``sweep.json``, {} if absent) and its trial rows."""

    path: Path
    label: str
    meta: dict[str, Any]
    df: pd.DataFrame
    warnings: tuple[str, ...] = field(default=())


def load_sweep(path: Path | str, label: str | None = None) -> SweepFolder:
    """Read one sweep folder; a missing or unreadable sweep.json becomes a warning, not an error."""
    path = Path(path)
    warnings: list[str] = []
    meta: dict[str, Any] = {}
    meta_path = path / "sweep.json"
    if meta_path.exists():
        try:
            loaded = json.loads(meta_path.read_text())
            meta = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError) as err:
            warnings.append(f"sweep.json could not be read: {err}")
    else:
        warnings.append("sweep.json is missing: provenance unknown")
    df = ResultStore(path).read()
    return SweepFolder(path, label or path.resolve().name, meta, df, tuple(warnings))


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _safe_filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _describe(value: Any) -> str:
    """chip / model / sweep entries may be names or whole config dicts: prefer the name."""
    if isinstance(value, dict):
        if "name" in value:
            return str(value["name"])
        return json.dumps(value, sort_keys=True, default=str)[:300]
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return "n/a" if value is None else str(value)


def _objectives(sweeps: Sequence[SweepFolder]) -> list[Objective]:
    for s in sweeps:
        if s.meta.get("objectives"):
            try:
                return as_objectives(s.meta["objectives"])
            except (ValueError, KeyError, TypeError):
                continue
    return list(DEFAULT_OBJECTIVES)


def _table(
    header: Sequence[str], rows: Sequence[Sequence[tuple[str, bool]]], row_class: Sequence[str] = ()
) -> str:
    """HTML table; cells are (already escaped text, is_number)."""
    out = ["<table><tr>", *(f"<th>{h}</th>" for h in header), "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if i < len(row_class) and row_class[i] else ""
        out.append(
            f"<tr{cls}>" + "".join(f"<td{' class=num' if n else ''}>{c}</td>" for c, n in row) + "</tr>"
        )
    out.append("</table>")
    return "".join(out)


def _provenance(sweeps: Sequence[SweepFolder]) -> str:
    keys = [
        ("folder", None),
        ("command", "command"),
        ("chip", "chip"),
        ("model", "model"),
        ("sweep", "sweep"),
        ("seed", "seed"),
        ("package version", "package_version"),
        ("started", "started_at"),
        ("finished", "finished_at"),
        ("duration", "duration_s"),
        ("objectives", "objectives"),
    ]
    rows = []
    for title, key in keys:
        cells = []
        for s in sweeps:
            if key is None:
                text = str(s.path)
            elif key == "duration_s":
                d = s.meta.get(key)
                text = format_duration(float(d)) if isinstance(d, int | float) else "n/a"
            elif key == "objectives" and isinstance(s.meta.get(key), list):
                try:
                    text = ", ".join(
                        f"{bare_name(o.name)} ({o.direction})" for o in as_objectives(s.meta[key])
                    )
                except (ValueError, KeyError, TypeError):  # malformed: show it as written
                    text = _describe(s.meta[key])
            else:
                text = _describe(s.meta.get(key))
            cells.append((_esc(text), False))
        rows.append([(_esc(title), False), *cells])
    counts = []
    for title in (*STATUSES, "total"):
        cells = []
        for s in sweeps:
            n = len(s.df) if title == "total" else int((s.df["status"] == title).sum()) if len(s.df) else 0
            cells.append((str(n), True))
        counts.append([(f"trials {title}", False), *cells])
    return _table(["", *(_esc(s.label) for s in sweeps)], rows + counts)


def _reasons(s: SweepFolder) -> str:
    """Infeasibility reasons and failure messages of one sweep, counted, most frequent first."""
    if s.df.empty:
        return ""
    parts = []
    for column, title in (("infeasible_reason", "infeasibility reason"), ("error", "failure (first line)")):
        text = s.df[column].fillna("").astype(str).str.strip().str.split("\n").str[0].str.slice(0, 200)
        if column == "infeasible_reason":  # an infeasible trial always counts, reason recorded or not
            infeasible = (s.df["status"] == "INFEASIBLE").fillna(False).to_numpy(dtype=bool)
            text = text.where(~(infeasible & (text == "").to_numpy()), "(no reason recorded)")
        counts = text[text != ""].value_counts()
        if len(counts):
            rows = [[(_esc(reason), False), (str(int(n)), True)] for reason, n in counts.items()]
            parts.append(_table([_esc(title), "trials"], rows))
    return "".join(parts)


def _front_table(front: pd.DataFrame, objs: Sequence[Objective], knee: Any) -> str:
    params = [c for c in front.columns if c.startswith(PARAM_PREFIX)]
    metrics = [o.name if o.name in front.columns else "metric." + o.name for o in objs]
    header = [
        "trial",
        *(_esc(bare_name(c)) for c in params),
        *(_esc(bare_name(c)) + " (objective)" for c in metrics),
    ]
    rows, classes = [], []
    for idx, row in front.iterrows():
        cells = [(str(int(row["trial"])) + (" (knee)" if idx == knee else ""), True)]
        for c in (*params, *metrics):
            value = row[c]
            numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
                value, bool
            )
            cells.append(
                (
                    _esc(format_quantity(c, value) if numeric else ("n/a" if pd.isna(value) else value)),
                    numeric,
                )
            )
        rows.append(cells)
        classes.append("knee" if idx == knee else "")
    return _table(header, rows, classes)


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(path.name)}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _warn(text: str) -> str:
    return f'<p class="warn">{_esc(text)}</p>'


def build_report(sweep_dirs: Sequence[Path | str], out_dir: Path | str | None = None) -> Path:
    """Write the PNGs and ``report.html`` for ``sweep_dirs`` into ``out_dir`` and return the HTML path.

    ``out_dir`` defaults to ``<first sweep>/report/``. Several sweeps give one page with their fronts
    overlaid (one colour per sweep); objectives come from the first sweep.json that names them (default:
    latency_s and area_proxy_mm2, minimized). Sweeps with no rows yet are reported as "no trials yet".
    """
    if not sweep_dirs:
        raise ValueError("build_report needs at least one sweep folder")
    dirs = [Path(d) for d in sweep_dirs]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:  # a typo should fail, not produce an empty "no trials yet" report
        raise FileNotFoundError(f"not a sweep folder: {', '.join(missing)}")
    names = [d.resolve().name for d in dirs]
    labels = [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]
    sweeps = [load_sweep(d, lab) for d, lab in zip(dirs, labels, strict=True)]
    out = Path(out_dir) if out_dir is not None else dirs[0] / "report"
    out.mkdir(parents=True, exist_ok=True)
    objs = _objectives(sweeps)
    with_rows = [s for s in sweeps if not s.df.empty]

    first = sweeps[0].meta
    if len(sweeps) == 1:
        title = f"Sweep report: {_describe(first.get('model'))} on {_describe(first.get('chip'))}"
    else:
        title = f"Sweep report: {len(sweeps)} sweeps"
    body = [
        f"<h1>{_esc(title)}</h1>",
        f"<p>Generated {_esc(datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC'))} from "
        f"{', '.join(_esc(s.path) for s in sweeps)}.</p>",
        "<h2>Provenance</h2>",
        _provenance(sweeps),
    ]
    for s in sweeps:
        body.extend(_warn(f"{s.label}: {w}") for w in s.warnings)
        if s.df.empty:
            body.append(f'<p class="empty">{_esc(s.label)}: no trials yet.</p>')
        reasons = _reasons(s)
        if reasons:
            body.append(f"<h3>{_esc(s.label)}: infeasible and failed trials</h3>{reasons}")
    if not with_rows:
        body.append('<p class="empty">No trials yet: nothing to plot.</p>')
        return _write_html(out, title, body)

    # Pareto plots, one per objective pair, all sweeps overlaid.
    body.append("<h2>Pareto fronts</h2>")
    pairs = list(itertools.combinations(objs, 2))
    if not pairs:
        body.append("<p>Only one objective: no trade-off to plot; see the table of best designs.</p>")
    for ox, oy in pairs:
        datasets = []
        for s in with_rows:
            try:
                datasets.append(
                    plots.pareto_data(s.df, ox.name, oy.name, [ox.direction, oy.direction], s.label)
                )
            except KeyError as err:
                body.append(_warn(f"{s.label}: {err.args[0]}"))
        if datasets:
            png = out / _safe_filename(f"pareto_{bare_name(ox.name)}__{bare_name(oy.name)}.png")
            plots.draw_pareto(datasets, png)
            body.append(
                _figure(
                    png,
                    f"{bare_name(oy.name)} vs {bare_name(ox.name)}: front of each sweep in this "
                    "plane, dominated designs faded, infeasible ones as crosses, knee starred.",
                )
            )

    # Roofline of all feasible designs, each normalized to its own chip.
    body.append("<h2>Roofline</h2>")
    roof_sets = []
    for s in with_rows:
        try:
            roof_sets.append(plots.roofline_sweep_data(s.df, s.label))
        except (KeyError, ValueError) as err:
            body.append(_warn(f"{s.label}: roofline skipped: {err}"))
    if any(len(r.x) for r in roof_sets):
        png = plots.draw_roofline_sweep(roof_sets, out / "roofline_sweep.png")
        skipped = sum(r.n_skipped for r in roof_sets)
        note = f" {skipped} feasible trials lacked a metric or FLOPs and are not shown." if skipped else ""
        body.append(
            _figure(
                png,
                "Each feasible design at its arithmetic intensity relative to its own ridge "
                "point and its achieved FLOP/s relative to its own peak." + note,
            )
        )

    # Pareto designs and the knee design's per-op roofline, per sweep.
    body.append("<h2>Pareto designs</h2>")
    used_names: set[str] = set()
    for s in with_rows:
        body.append(f"<h3>{_esc(s.label)}</h3>")
        try:
            front = pareto_front(s.df, objs)
        except KeyError as err:
            body.append(_warn(str(err.args[0])))
            continue
        if front.empty:
            body.append('<p class="empty">No feasible completed design yet.</p>')
            continue
        knee = knee_point(front, objs)
        knee_trial = int(front.loc[knee, "trial"])
        body.append(
            f"<p>{len(front)} non-dominated designs over "
            f"{', '.join(_esc(f'{bare_name(o.name)} ({o.direction})') for o in objs)}; "
            f"knee (closest to the ideal after normalization): trial {knee_trial}.</p>"
        )
        body.append(_front_table(front, objs, knee))
        body.append(_ops_section(s, knee_trial, out, used_names))
    return _write_html(out, title, body)


def _ops_section(s: SweepFolder, trial: int, out: Path, used_names: set[str]) -> str:
    design_path = s.path / "designs" / f"trial_{trial}.json"
    if not design_path.exists():
        return f"<p>No design file for the knee (designs/trial_{trial}.json): per-op roofline not drawn.</p>"
    try:
        data = plots.roofline_ops_data(json.loads(design_path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        return _warn(f"{s.label}: per-op roofline of trial {trial} skipped: {err}")
    name = f"roofline_ops_trial{trial}.png"
    if name in used_names:  # the same trial number in another sweep
        name = _safe_filename(f"roofline_ops_trial{trial}_{s.label}.png")
    used_names.add(name)
    png = plots.draw_roofline_ops(data, out / name, title=f"Per-op roofline: {s.label}, trial {trial}")
    skipped = f" {data.n_skipped} ops without FLOPs are not shown." if data.n_skipped else ""
    return _figure(
        png,
        f"Per-op roofline of the knee design (trial {trial}), one colour per op kind; "
        f"ops without HBM traffic sit at the right edge.{skipped}",
    )


def _write_html(out: Path, title: str, body: Sequence[str]) -> Path:
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)  # a browser reloading the page never sees half a file
    return path
