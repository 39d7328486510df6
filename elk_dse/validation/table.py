"""The validation table: one Markdown row per point (point, conditions, measured, predicted, error, role,
source), a summary of the held-out errors, and writing it into a document between two marker lines."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elk_dse.validation.suite import Calibration, Row

COLUMNS = ("point", "chip", "stack", "conditions", "measured", "predicted", "error", "role", "source")
START, END = "<!-- validation-table:start -->", "<!-- validation-table:end -->"
UNITS = {"tokens_per_s_per_user": "t/s/u", "latency_ms": "ms"}


def summary(rows: Sequence[Row]) -> dict[str, float]:
    """Median and max |error| of the held-out points (fractions; NaN if none), and how many there are."""
    held = [abs(r.error) for r in rows if r.point.role == "held-out" and math.isfinite(r.error)]
    return {"held_out": float(len(held)), "median_abs_error": statistics.median(held) if held else math.nan,
            "max_abs_error": max(held) if held else math.nan}


def markdown(rows: Sequence[Row], sources: dict[str, Any], cals: Sequence[Calibration] = (),
             figure: str | None = None) -> str:
    """The table, its summary line, one line per calibrated stack and the sources, as Markdown; ``figure``: a
    relative path to the error chart (validation/plot.py), shown above the table."""
    lines = [f"![prediction error per point]({figure})", ""] if figure else []
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        p, unit = r.point, UNITS[r.point.metric]
        err = f"{r.error:+.1%}" if math.isfinite(r.error) else r.note
        pred = f"{r.predicted:.3g} {unit}" if math.isfinite(r.predicted) else "-"
        lines.append(f"| {p.id} | {p.chip} | {p.stack} | {p.conditions} | {p.measured:g} {unit} | {pred} | {err} "
                     f"| {p.role} | {p.source} |")
    s = summary(rows)
    lines.append("")
    if s["held_out"]:
        lines.append(f"Held-out points: {int(s['held_out'])}; median |error| {s['median_abs_error']:.1%}, "
                     f"max |error| {s['max_abs_error']:.1%}.")
    for cal in cals:
        errs = ", ".join(f"{e:+.1%}" for e in cal.errors)
        others = "".join(f", {name} {v:.2f} {'ns' if '_ns_' in name else 'us'}"  # issue 17s: ns per score tile
                         for name, v in cal.times_us if name != "dispatch_us_per_op")
        lines.append(f"Calibration of stack `{cal.stack}` (fitted {', '.join(cal.fitted)} on its "
                     f"{len(cal.points)} calibration points only): dispatch {cal.dispatch_us_per_op:.2f} us per "
                     f"operator, DRAM efficiency {cal.hbm_efficiency:.2f}{others}; calibration residuals {errs}.")
    lines.append("")
    lines.append("Sources: " + "; ".join(
        f"`{k}` = {v['repo']} `{v['path']}` @ {v['commit'][:12]} (read {v['read']})" for k, v in sources.items()))
    return "\n".join(lines)


def write(path: Path, table: str) -> Path:
    """Put ``table`` between the marker lines of ``path`` (the rest of the document is kept); a new file, or
    one without markers, gets the markers appended."""
    text = path.read_text() if path.exists() else ""
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
