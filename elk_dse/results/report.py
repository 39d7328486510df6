"""A self-contained HTML report of one or several sweep folders, built from the folder contents alone.

Reads ``results.parquet/``, ``sweep.json`` and ``designs/trial_<n>.json``; writes PNGs and ``report.html``
(images embedded as base64 data URIs, inline CSS, no script, no network) into ``out_dir``.
Every string that comes from a file goes through ``html.escape``: model and chip names are user input.

Sections, pictures first (docs/report.md): summary, Pareto fronts, Pareto designs (table), latency
breakdown, rooflines, sensitivity, timeline, provenance. A file that exists but cannot be read
(``results.parquet`` parts, ``sweep.json``) is a ConfigError naming it; what is merely missing (no
``sweep.json`` yet, no design files) becomes a note and the rest of the report is still built.
"""

from __future__ import annotations

import base64
import functools
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

from elk_dse.errors import ConfigError
from elk_dse.results import breakdown_plot, diagnosis, energy_plot, plots, sensitivity, timeline
from elk_dse.results.pareto import Objective, as_objectives, feasible_mask, knee_point, pareto_front
from elk_dse.results.provenance import environment
from elk_dse.results.store import PARAM_PREFIX, STATUSES, ResultStore, UnreadableFileError
from elk_dse.results.units import (
    axis_label,
    bare_name,
    config_unit,
    format_duration,
    format_quantity,
    human_name,
    unit_for,
)

DEFAULT_OBJECTIVES = (Objective("metric.latency_s"), Objective("metric.area_proxy_mm2"))
# Rows of the Pareto table; a longer front is cut (the note says how many are not shown).
MAX_TABLE_ROWS = 40
# Parameters whose effect on the first objective is drawn, most important first.
TOP_PARAMS = 3
# Long parameter names (chip.interconnect.link_bytes_per_cycle) break after dots and underscores, and a
# table still too wide scrolls inside its own box instead of widening the page (it used to overflow).
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
.tablebox{max-width:100%;overflow-x:auto;margin:.5em 0 1.5em}
table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;font-size:.85em;vertical-align:top}
th{background:#f3f3f3;overflow-wrap:normal;word-break:normal;hyphens:none;min-width:4.5em;max-width:12em}
td.why{min-width:22em;font-size:.8em;color:#333}nav.toc{background:#f7f7f7;padding:.4em 1em;columns:2}
nav.toc a{text-decoration:none}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}tr.knee{background:#fff6d5}
img{max-width:100%;border:1px solid #eee}.warn{background:#fdecea;padding:.5em 1em;border-left:4px solid #d33}
.empty,.note{background:#eef3fb;padding:.5em 1em;border-left:4px solid #48c}figure{margin:1em 0}
figcaption{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:.8em}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
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
    """Read one sweep folder. A missing sweep.json (a sweep still starting) becomes a warning; a sweep.json
    or Parquet part that exists but cannot be read raises ConfigError naming the file."""
    path = Path(path)
    warnings: list[str] = []
    meta: dict[str, Any] = {}
    meta_path = path / "sweep.json"
    if meta_path.exists():
        try:
            loaded = json.loads(meta_path.read_text())
        except (OSError, ValueError) as err:
            detail = (str(err).splitlines() or [""])[0]
            raise ConfigError(
                "report", str(meta_path), f"cannot be read ({type(err).__name__}: {detail})"
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError("report", str(meta_path), "expected a JSON object")
        meta = loaded
    else:
        warnings.append("sweep.json is missing: provenance unknown")
    try:
        df, read_warnings = ResultStore(path).read_lenient()
        warnings.extend(read_warnings)
    except UnreadableFileError as err:
        raise ConfigError("report", str(err.path), str(err).split(": ", 1)[-1]) from None
    except (ValueError, KeyError) as err:  # e.g. parts with clashing column types
        raise ConfigError("report", str(path / "results.parquet"), f"cannot be read ({err})") from None
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
    header: Sequence[str], rows: Sequence[Sequence[tuple[str, bool | str]]], row_class: Sequence[str] = ()
) -> str:
    """HTML table in a horizontally scrolling box; cells are (already escaped text, is_number or a CSS
    class name)."""
    out = ['<div class="tablebox"><table><tr>', *(f"<th>{h}</th>" for h in header), "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if i < len(row_class) and row_class[i] else ""
        out.append(
            f"<tr{cls}>" + "".join(f"<td{_cell_class(n)}>{c}</td>" for c, n in row) + "</tr>"
        )
    out.append("</table></div>")
    return "".join(out)


def _cell_class(kind: bool | str) -> str:
    if kind is True:
        return " class=num"
    return f" class={kind}" if isinstance(kind, str) and kind else ""


def _provenance(sweeps: Sequence[SweepFolder]) -> str:
    keys = [
        ("folder", None),
        ("command", "command"),
        ("chip", "chip"),
        ("model", "model"),
        ("sweep", "sweep"),
        ("seed", "seed"),
        ("sampler", "sampler"),
        ("trials asked (target)", "n_trials"),
        ("batch size", "batch_size"),
        ("workers", "workers"),
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
                        f"{human_name(o.name)} ({o.direction})" for o in as_objectives(s.meta[key])
                    )
                except (ValueError, KeyError, TypeError):  # malformed: show it as written
                    text = _describe(s.meta[key])
            else:
                text = _describe(s.meta.get(key))
            cells.append((_esc(text), False))
        rows.append([(_esc(title), False), *cells])
    here = environment()
    for title, key in (("git commit", "git_commit"), ("host", "host"), ("versions", "versions")):
        cells = []
        for s in sweeps:
            env = s.meta.get("environment")
            value = env.get(key) if isinstance(env, dict) else None
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            cells.append((_esc(f"{value} (sweep)" if value else "not recorded by the sweep"), False))
        rows.append([(_esc(title), False), *cells])
    versions = here["versions"]
    if not isinstance(versions, dict):
        raise TypeError("provenance.environment()['versions'] must be a mapping")
    built = (
        f"commit {here['git_commit'] or 'n/a (not a git checkout)'}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; host {here['host']} ({here['os']}, Python {here['python']}, {here['cpus']} CPUs)"
    )
    rows.append([("report built with", False), *((_esc(built), False) for _ in sweeps)])
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
            if "metric.constraint_violation" in s.df.columns:  # ran fine, but outside the space's budgets
                over = (s.df["metric.constraint_violation"] > 0).to_numpy(dtype=bool) & (
                    text == ""
                ).to_numpy()
                text = text.where(~over, "over a budget of the space (constraint_violation > 0)")
        counts = text[text != ""].value_counts()
        if len(counts):
            rows = [[(_esc(reason), False), (str(int(n)), True)] for reason, n in counts.items()]
            parts.append(_table([_esc(title), "trials"], rows))
    return "".join(parts)


def _breakable(name: str) -> str:
    """Escaped name with line-break opportunities after dots only (long parameter keys break between their
    parts, never inside a word: ``chip.<wbr>cores.<wbr>sram_kib``)."""
    return "".join(_esc(ch) + ("<wbr>" if ch == "." else "") for ch in name)


# Metrics shown beside the objectives in the Pareto table when the sweep has them.
_CONTEXT_METRICS = ("metric.latency_s", "metric.throughput_per_s", "metric.area_mm2", "metric.power_w")


def unique_designs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per design: rows with the same ``config_hash`` (the same configuration sampled again) keep
    the lowest trial number. Rows without a hash (older sweeps) are all kept."""
    if "config_hash" not in df.columns or df.empty:
        return df
    ordered = df.sort_values("trial", kind="stable")
    h = ordered["config_hash"]
    dup = h.notna() & (h.astype(str) != "") & h.duplicated(keep="first")
    return ordered[~dup.to_numpy(dtype=bool)]


def _samples(df: pd.DataFrame) -> dict[str, list[int]]:
    """config_hash -> the trials that sampled it (sorted)."""
    if "config_hash" not in df.columns:
        return {}
    sub = df[df["config_hash"].notna()]
    return {str(h): sorted(int(t) for t in g["trial"]) for h, g in sub.groupby("config_hash", sort=False)}


def _header(column: str, values: Any, objective: bool = False) -> tuple[str, Any]:
    """(escaped header "latency [ms]" or "chip.cores.sram_kib [KiB]", display unit or None for parameters)."""
    if column.startswith(PARAM_PREFIX):
        u = config_unit(column)
        return _breakable(bare_name(column)) + (f" [{_esc(u.symbol)}]" if u.symbol else ""), None
    unit = unit_for(column, values)
    text = _esc(axis_label(column, unit)) + (" (objective)" if objective else "")
    return text, unit


def _front_table(
    front: pd.DataFrame,
    objs: Sequence[Objective],
    knee: Any,
    samples: dict[str, list[int]] | None = None,
    config: dict[str, Any] | None = None,
) -> str:
    """The Pareto designs, one row each: trial (and how many trials sampled the same configuration), every
    searched parameter, the objectives and context metrics in one unit per column, and why it is slow."""
    samples = samples or {}
    params = [c for c in front.columns if c.startswith(PARAM_PREFIX)]
    metrics = [o.name if o.name in front.columns else "metric." + o.name for o in objs]
    extra = [
        c for c in _CONTEXT_METRICS if c in front.columns and c not in metrics and front[c].notna().any()
    ]
    cols = [(c, False) for c in params] + [(c, True) for c in metrics] + [(c, False) for c in extra]
    headers, units = [], []
    for c, is_obj in cols:
        text, unit = _header(c, front[c].to_numpy() if c in front.columns else [], is_obj)
        headers.append(text)
        units.append(unit)
    header = ["trial", "sampled", *headers]
    rows, classes, why = [], [], []
    for idx, row in front.iterrows():
        trials = samples.get(str(row.get("config_hash")), [int(row["trial"])])
        others = [t for t in trials if t != int(row["trial"])]
        sampled = f"{len(trials)}x" + (f" (also {', '.join(map(str, others[:6]))}{', ...' if len(others) > 6 else ''})"
                                       if others else "")
        cells = [(str(int(row["trial"])) + (" (knee)" if idx == knee else ""), True), (_esc(sampled), False)]
        for (c, _), unit in zip(cols, units, strict=True):
            value = row[c]
            numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
                value, bool
            )
            if numeric and unit is None:  # parameters: config units, named in the header
                text = str(int(value)) if float(value).is_integer() else f"{float(value):.4g}"
            elif numeric and not pd.isna(value):
                text = f"{float(value) * unit.scale:.4g}"
            else:
                text = "n/a" if pd.isna(value) else str(value)
            cells.append((_esc(text), numeric))
        why.append(f"<li><b>trial {int(row['trial'])}</b>: {_esc(diagnosis.why_slow(row.to_dict(), config or {}))}</li>")
        rows.append(cells)
        classes.append("knee" if idx == knee else "")
    return _table(header, rows, classes) + (
        '<p><b>Why each design is slow</b> (largest part of its latency breakdown; matrix-unit utilisation = '
        "FLOPs / (peak FLOP/s x compute time)):</p><ul class=why>" + "".join(why) + "</ul>"
        + (f'<p class="note">{_esc(diagnosis.LOW_UTILISATION_NOTE)}</p>' if any("per weight tile" in w for w in why) else "")
    )


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
    Raises ConfigError naming the folder or file when a folder does not exist or a file in it is corrupt.
    """
    if not sweep_dirs:
        raise ConfigError("report", None, "give at least one sweep folder")
    dirs = [Path(d) for d in sweep_dirs]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:  # a typo should fail, not produce an empty "no trials yet" report
        raise ConfigError("report", missing[0], "not a sweep folder (no such directory)")
    names = [d.resolve().name for d in dirs]
    labels = [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]
    sweeps = [load_sweep(d, lab) for d, lab in zip(dirs, labels, strict=True)]
    out = Path(out_dir) if out_dir is not None else dirs[0] / "report"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):  # figures of an earlier build that this one may not redraw
        old.unlink()
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
    ]
    for s in sweeps:
        body.extend(_warn(f"{s.label}: {w}") for w in s.warnings)
        if s.df.empty:
            body.append(f'<p class="empty">{_esc(s.label)}: no trials yet.</p>')
    if not with_rows:
        body.append('<p class="empty">No trials yet: nothing to plot.</p>')
        body += ["<h2>Provenance</h2>", _provenance(sweeps)]
        return _write_html(out, title, _with_toc(body))

    fronts: dict[str, tuple[pd.DataFrame, Any]] = {}  # label -> (front rows, knee index)
    front_notes: dict[str, str] = {}
    for s in with_rows:
        try:
            front = pareto_front(unique_designs(s.df), objs)  # a configuration sampled twice is one design
        except KeyError as err:
            front_notes[s.label] = _warn(f"{s.label}: {err.args[0]}")
            continue
        if front.empty:
            front_notes[s.label] = f'<p class="empty">{_esc(s.label)}: no feasible completed design yet.</p>'
            continue
        fronts[s.label] = (front, knee_point(front, objs))
    body.append(_summary(with_rows, objs, fronts))
    body += _pareto_section(with_rows, objs, out)
    body += _front_tables(with_rows, objs, fronts, front_notes)
    body += _breakdown_section(with_rows, fronts, out)
    body += _energy_section(with_rows, fronts, out)
    body += _roofline_section(with_rows, fronts, objs, out)
    body += _sensitivity_section(with_rows, objs, out)
    body += _timeline_section(with_rows, fronts, out)
    body += ["<h2>Provenance</h2>", _provenance(sweeps)]
    for s in sweeps:
        reasons = _reasons(s)
        if reasons:
            body.append(f"<h3>{_esc(s.label)}: infeasible and failed trials</h3>{reasons}")
        config = s.meta.get("composed_config")
        if config is not None:
            text = json.dumps(config, indent=2, sort_keys=True, default=str)
            body.append(
                f"<details><summary>{_esc(s.label)}: composed config (sweep.json)</summary>"
                f"<pre>{_esc(text)}</pre></details>"
            )
    return _write_html(out, title, _with_toc(body))


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", html.unescape(title).lower()).strip("-") or "section"


def _with_toc(body: Sequence[str]) -> list[str]:
    """Give every <h2> an id and put a table of contents linking them after the page's intro."""
    out, entries, seen = [], [], set()
    for part in body:
        m = re.fullmatch(r"<h2>(.*)</h2>", part)
        if m:
            slug = _slug(m.group(1))
            while slug in seen:
                slug += "-x"
            seen.add(slug)
            entries.append((slug, m.group(1)))
            part = f'<h2 id="{slug}">{m.group(1)}</h2>'
        out.append(part)
    if not entries:
        return out
    toc = '<nav class="toc"><b>Contents</b><ol>' + "".join(
        f'<li><a href="#{slug}">{text}</a></li>' for slug, text in entries
    ) + "</ol></nav>"
    first = next(i for i, p in enumerate(out) if p.startswith("<h2 "))
    return [*out[:first], toc, *out[first:]]


def _summary(sweeps: Sequence[SweepFolder], objs: Sequence[Objective], fronts: dict[str, Any]) -> str:
    """One line per sweep: trials by status, the front's size, the best value of each objective."""
    items = []
    for s in sweeps:
        ok = s.df[feasible_mask(s.df)]
        counts = ", ".join(f"{int((s.df['status'] == st).sum())} {st.lower()}" for st in STATUSES)
        if "metric.constraint_violation" in s.df.columns:
            over = int((s.df["metric.constraint_violation"] > 0).sum())
            counts += f"; {over} complete but over a budget of the space" if over else ""
        text = f"<b>{_esc(s.label)}</b>: {len(s.df)} trials ({_esc(counts)})"
        if s.label in fronts:
            front, knee = fronts[s.label]
            best = []
            for o in objs:
                col = o.name if o.name in ok.columns else "metric." + o.name
                if col in ok.columns and ok[col].notna().any():
                    v = ok[col].min() if o.direction == "minimize" else ok[col].max()
                    best.append(f"best {human_name(col)} {format_quantity(col, v)}")
            text += f"; {len(front)} Pareto designs, knee trial {int(front.loc[knee, 'trial'])}"
            text += ("; " + ", ".join(_esc(b) for b in best)) if best else ""
        items.append(f"<li>{text}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _pareto_section(sweeps: Sequence[SweepFolder], objs: Sequence[Objective], out: Path) -> list[str]:
    """Pareto plots, one per objective pair, all sweeps overlaid."""
    body = ["<h2>Pareto fronts</h2>"]
    pairs = list(itertools.combinations(objs, 2))
    if not pairs:
        body.append("<p>Only one objective: no trade-off to plot; see the table of best designs.</p>")
    for ox, oy in pairs:
        datasets = []
        for s in sweeps:
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
                    f"{human_name(oy.name)} vs {human_name(ox.name)}: front of each sweep in this plane "
                    "(one point per distinct design), dominated designs faded, infeasible ones as crosses, "
                    "knee starred (named in the legend). Axes are logarithmic when the values span more "
                    "than 3x, and zoomed on the fronts when outliers would squeeze them (the corner note "
                    "counts the designs outside the view).",
                )
            )
    return body


def _front_tables(
    sweeps: Sequence[SweepFolder], objs: Sequence[Objective], fronts: dict[str, Any], notes: dict[str, str]
) -> list[str]:
    body = ["<h2>Pareto designs</h2>"]
    for s in sweeps:
        body.append(f"<h3>{_esc(s.label)}</h3>")
        if s.label not in fronts:
            body.append(notes.get(s.label, ""))
            continue
        front, knee = fronts[s.label]
        body.append(
            f"<p>{len(front)} non-dominated feasible designs over "
            f"{', '.join(_esc(f'{human_name(o.name)} ({o.direction})') for o in objs)}; "
            f"knee (closest to the ideal after normalization, highlighted): trial {int(front.loc[knee, 'trial'])}."
            "</p>"
        )
        shown = front.iloc[:MAX_TABLE_ROWS]
        if knee not in shown.index:
            shown = pd.concat([shown.iloc[: MAX_TABLE_ROWS - 1], front.loc[[knee]]])
        config = s.meta.get("composed_config")
        body.append(_front_table(shown, objs, knee, _samples(s.df), config if isinstance(config, dict) else {}))
        if len(front) > len(shown):
            body.append(f'<p class="note">{len(front) - len(shown)} more Pareto designs not listed.</p>')
    return body


def _breakdown_section(sweeps: Sequence[SweepFolder], fronts: dict[str, Any], out: Path) -> list[str]:
    """Per Pareto design and per operator kind of the knee: compute, shift, exposed HBM load, sync, idle."""
    body = ["<h2>Latency breakdown</h2>"]
    for s in sweeps:
        if s.label not in fronts:
            continue
        front, knee = fronts[s.label]
        knee_trial = int(front.loc[knee, "trial"])
        trials = [int(t) for t in front["trial"].iloc[:MAX_TABLE_ROWS]]
        try:
            data = breakdown_plot.breakdown_designs_data(
                s.df, trials, title=f"{s.label}: latency breakdown of the Pareto designs"
            )
        except ValueError as err:
            body.append(_warn(f"{s.label}: breakdown skipped: {err}"))
            continue
        if data.labels:
            png = breakdown_plot.draw_breakdown(
                data, out / _safe_filename(f"breakdown_designs_{s.label}.png")
            )
            missing = f" {data.n_missing} designs have no stored breakdown." if data.n_missing else ""
            body.append(
                _figure(
                    png,
                    "Where each Pareto design's latency goes (sorted like the table; each bar sums to the "
                    "design's latency): compute, network time not hidden behind compute, HBM load the cores "
                    "wait for, barriers, idle." + missing,
                )
            )
        elif data.n_missing:
            body.append(
                f'<p class="note">{_esc(s.label)}: no latency breakdown stored (sweep from an older version).</p>'
            )
        design = _design_json(s, knee_trial, body)
        if design is not None:
            try:
                kinds = breakdown_plot.breakdown_kinds_data(
                    design, title=f"{s.label}: knee design (trial {knee_trial}) by operator kind"
                )
            except ValueError as err:
                body.append(_warn(f"{s.label}: per-kind breakdown of trial {knee_trial} skipped: {err}"))
            else:
                png = breakdown_plot.draw_breakdown(
                    kinds, out / _safe_filename(f"breakdown_kinds_{s.label}_trial{knee_trial}.png"), shares=True
                )
                body.append(
                    _figure(
                        png,
                        "The knee design's latency split by operator kind (bars sum to its latency; each "
                        "labelled with its time and share), and on the right each kind's own split as "
                        "fractions of its bar, so kinds with little time stay readable; a gap before an "
                        "operator counts for that operator's kind.",
                    )
                )
    return body


def _energy_section(sweeps: Sequence[SweepFolder], fronts: dict[str, Any], out: Path) -> list[str]:
    """Per Pareto design: energy per memory level (MAC, register files, SRAM, NoC, HBM, chip links, static)."""
    body = ["<h2>Energy by level</h2>"]
    for s in sweeps:
        if s.label not in fronts:
            continue
        front, _ = fronts[s.label]
        trials = [int(t) for t in front["trial"].iloc[:MAX_TABLE_ROWS]]
        try:
            data = energy_plot.energy_designs_data(s.df, trials, title=f"{s.label}: energy of the Pareto designs")
        except ValueError as err:
            body.append(_warn(f"{s.label}: energy split skipped: {err}"))
            continue
        if data.labels:
            png = energy_plot.draw_energy(data, out / _safe_filename(f"energy_designs_{s.label}.png"))
            missing = f" {data.n_missing} designs have no stored split." if data.n_missing else ""
            body.append(_figure(png, "Where each Pareto design's energy goes per pass (sorted like the table; "
                                "each bar sums to the design's energy_j): accesses per level from the compiled "
                                "plans x the chip's per-action energies, plus leakage x latency." + missing))
        elif data.n_missing:
            body.append(f'<p class="note">{_esc(s.label)}: no energy split stored (sweep from an older version).</p>')
    return body


def _design_json(s: SweepFolder, trial: int, body: list[str]) -> dict[str, Any] | None:
    """designs/trial_<n>.json, or None with a note (missing: the sweep has not finished) or a warning."""
    path = s.path / "designs" / f"trial_{trial}.json"
    if not path.exists():
        body.append(
            f'<p class="note">{_esc(s.label)}: no design file {_esc(path.name)} (written at the end of a '
            "sweep): per-operator figures of this design not drawn.</p>"
        )
        return None
    stat = path.stat()
    data = _parse_design(str(path), stat.st_mtime_ns, stat.st_size)
    if isinstance(data, str):
        body.append(_warn(f"{path}: {data}"))
        return None
    return data


@functools.lru_cache(maxsize=16)
def _parse_design(path: str, mtime_ns: int, size: int) -> dict[str, Any] | str:
    """A design file parsed once per version (the breakdown, roofline and timeline sections all read the
    knee's, a few hundred KB each); a string says why it cannot be used. Callers must not modify the dict."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        return f"cannot be read ({type(err).__name__}: {(str(err).splitlines() or [''])[0]})"
    return data if isinstance(data, dict) else "not a JSON object"


def _parallelism_note(design: dict[str, Any]) -> str:
    """One line on how the design spreads its model over the chips (issue 17): the strategy (auto: the one
    chosen), degrees, collectives per step and bytes across chips; empty for a single chip or an older file."""
    par = design.get("parallelism")
    if not isinstance(par, dict) or par.get("strategy") in (None, "single_chip"):
        return ""
    degrees = ", ".join(f"{k}={v}" for k, v in (par.get("degrees") or {}).items())
    chosen = ""
    if par.get("candidates"):
        timed = [c for c in par["candidates"] if c.get("latency_s") is not None]
        chosen = f" (chosen by auto from {len(timed)} compiled of {len(par['candidates'])} strategies)"
    cross = par.get("cross_chip_bytes")
    cross_text = f", {cross / 1e9:.3g} GB across chips per step" if isinstance(cross, int | float) else ""
    micro = f", {par['microbatches']} micro-batches" if par.get("microbatches", 1) > 1 else ""
    return (f'<p class="note">Parallelism across chips: <b>{_esc(str(par["strategy"]))}</b>'
            f"{' (' + _esc(degrees) + ')' if degrees else ''}{chosen}: {par.get('collectives_per_step', 0)} "
            f"collectives per step{micro}{cross_text}.</p>")


def _chosen_trials(front: pd.DataFrame, knee: Any) -> list[tuple[int, str]]:
    """The designs drawn in detail: the knee and the best design of the first objective."""
    chosen = [(int(front.loc[knee, "trial"]), "knee")]
    best = int(front["trial"].iloc[0])  # the front is sorted best-first by the first objective
    if best != chosen[0][0]:
        chosen.append((best, "best first objective"))
    return chosen


def _roofline_section(
    sweeps: Sequence[SweepFolder], fronts: dict[str, Any], objs: Sequence[Objective], out: Path
) -> list[str]:
    body = ["<h2>Rooflines</h2>"]
    for s in sweeps:
        if s.label not in fronts:
            continue
        front, knee = fronts[s.label]
        for trial, role in _chosen_trials(front, knee):
            design = _design_json(s, trial, body)
            if design is None:
                continue
            try:
                data = plots.roofline_ops_data(design)
            except ValueError as err:
                body.append(_warn(f"{s.label}: per-op roofline of trial {trial} skipped: {err}"))
                continue
            png = plots.draw_roofline_ops(
                data,
                out / _safe_filename(f"roofline_ops_{s.label}_trial{trial}.png"),
                title=f"Per-op roofline: {s.label}, trial {trial} ({role})",
            )
            skipped = f" {data.n_skipped} ops without FLOPs are not shown." if data.n_skipped else ""
            body.append(
                _figure(
                    png,
                    f"Trial {trial} ({role}): each operator's achieved FLOP/s (its FLOPs over its execution plus "
                    "its own HBM load time) at its FLOP per HBM byte (filled) and per on-chip network byte "
                    "(hollow), under the compute, HBM and network roofs; one colour per operator kind; ops "
                    f"without HBM traffic sit at the right edge.{skipped}",
                )
            )
            body.append(_parallelism_note(design))
            body.append(_op_groups_table(design))
    # All designs of every sweep, each normalized to its own chip.
    roof_sets = []
    for s in sweeps:
        try:
            roof_sets.append(plots.roofline_sweep_data(unique_designs(s.df), s.label))  # one point per design
        except (KeyError, ValueError) as err:
            body.append(_warn(f"{s.label}: roofline skipped: {err}"))
    if any(len(r.x) for r in roof_sets):
        png = plots.draw_roofline_sweep(roof_sets, out / "roofline_sweep.png")
        n_skipped = sum(r.n_skipped for r in roof_sets)
        note = f" {n_skipped} feasible trials lacked a metric or FLOPs and are not shown." if n_skipped else ""
        body.append(
            _figure(
                png,
                "Every feasible design at its arithmetic intensity relative to its own ridge point and its "
                "achieved FLOP/s relative to its own peak (both dimensionless)." + note,
            )
        )
    return body


# Rows of the per-operator-name table (the rest are summed in one "others" row).
MAX_OP_ROWS = 12


def _op_groups_table(design: dict[str, Any]) -> str:
    """The design's operators grouped by name, most execution time first: how many, how long, how far from
    their roof (readable at 500+ operators, where the roofline's points pile up)."""
    try:
        g = plots.op_groups_data(design)
    except ValueError as err:
        return _warn(f"operators by name skipped: {err}")
    if not g.name:
        return ""
    tu = unit_for("latency_s", g.time_s)
    fu = unit_for("achieved_flops_per_s", g.achieved)
    header = ["operator", "kind", "count", f"execution [{_esc(tu.symbol)}]", "share of latency",
              f"own HBM load [{_esc(tu.symbol)}]", "FLOP per HBM byte", f"achieved [{_esc(fu.symbol)}]",
              "of the compute roof", "of its roof"]
    rows = []
    idx = list(range(len(g.name)))
    shown, rest = idx[:MAX_OP_ROWS], idx[MAX_OP_ROWS:]

    def row(name: str, kind: str, sel: list[int]) -> list[tuple[str, bool | str]]:
        t, load = float(g.time_s[sel].sum()), float(g.load_s[sel].sum())
        flops, hbm = float(g.flops[sel].sum()), float(g.hbm_bytes[sel].sum())
        ach = flops / (t + load) if t + load > 0 else 0.0
        inten = flops / hbm if hbm > 0 else float("inf")
        roof = min(g.peak_flops_per_s, g.hbm_bytes_per_s * inten) if flops > 0 else float("nan")
        return [(_esc(name), False), (_esc(kind), False), (str(int(g.count[sel].sum())), True),
                (f"{t * tu.scale:.4g}", True), (f"{t / g.latency_s:.1%}" if g.latency_s > 0 else "n/a", True),
                (f"{load * tu.scale:.4g}", True),
                ("no HBM" if hbm == 0 else f"{inten:.3g}", True),
                (f"{ach * fu.scale:.4g}" if flops > 0 else "-", True),
                (f"{ach / g.peak_flops_per_s:.1%}" if flops > 0 else "-", True),
                (f"{ach / roof:.1%}" if flops > 0 and roof > 0 else "-", True)]

    rows = [row(g.name[i], g.kind[i], [i]) for i in shown]
    if rest:
        rows.append(row(f"{len(rest)} other operators", "", rest))
    return (
        "<p>Operators by name (each name once per layer), most execution time first: the points of the "
        "roofline above summed per name.</p>" + _table(header, rows)
    )


def _sensitivity_section(sweeps: Sequence[SweepFolder], objs: Sequence[Objective], out: Path) -> list[str]:
    body = ["<h2>Sensitivity</h2>"]
    for s in sweeps:
        # Latency is what architects ask about first; a sweep without it falls back to its first objective.
        target = Objective("metric.latency_s") if "metric.latency_s" in s.df.columns else objs[0]
        try:
            imp = sensitivity.importance_data(s.df, target)
        except (ValueError, KeyError) as err:
            body.append(f'<p class="note">{_esc(s.label)}: no parameter importance: {_esc(err)}.</p>')
            continue
        except ImportError as err:
            body.append(_warn(f"{s.label}: parameter importance needs Optuna ({err})"))
            continue
        png = sensitivity.draw_importance(imp, out / _safe_filename(f"importance_{s.label}.png"))
        body.append(
            _figure(
                png,
                f"{s.label}: how much of the variation of {human_name(imp.objective)} over the feasible trials "
                f"each parameter explains ({imp.evaluator}, Optuna's importance evaluator on the stored rows).",
            )
        )
        effects = [sensitivity.effect_data(s.df, p, target.name) for p in imp.params[:TOP_PARAMS]]
        png = sensitivity.draw_effects(effects, out / _safe_filename(f"effects_{s.label}.png"))
        body.append(
            _figure(
                png,
                f"{s.label}: {human_name(imp.objective)} of every feasible trial against the "
                f"{len(effects)} most important parameters (config units).",
            )
        )
    return body


def _timeline_section(sweeps: Sequence[SweepFolder], fronts: dict[str, Any], out: Path) -> list[str]:
    body = ["<h2>Timeline</h2>"]
    for s in sweeps:
        if s.label not in fronts:
            continue
        front, knee = fronts[s.label]
        trial = int(front.loc[knee, "trial"])
        design = _design_json(s, trial, body)
        if design is None:
            continue
        try:
            data = timeline.timeline_data(design)
        except ValueError as err:
            body.append(_warn(f"{s.label}: timeline of trial {trial} skipped: {err}"))
            continue
        png = timeline.draw_timeline(
            data,
            out / _safe_filename(f"timeline_{s.label}_trial{trial}.png"),
            title=f"{s.label}: knee design (trial {trial}), {len(data.kind)} operator instances",
        )
        body.append(
            _figure(
                png,
                "One pass of the knee design as simulated: HBM loads (top lane; preloads run ahead of their "
                "operator) and operator executions on the cores, one lane per operator kind so that short "
                "kinds stay visible (operators shorter than about a pixel are drawn a pixel wide); below, one layer instance from the middle of the pass (shaded above) "
                "with every operator named.",
            )
        )
    return body


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
