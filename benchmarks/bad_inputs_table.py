"""Regenerate the bad-input table of docs/reliability.md: run every case of tests/bad_input_cases.py through the
CLI and record its exit status and one-line message. The text above the generated marker is kept.

    python benchmarks/bad_inputs_table.py   (make reliability-table)
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bad_input_cases import CASES, materialize  # noqa: E402

from elk_dse.cli import main  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
MARKER = "<!-- generated: bad inputs -->"


def run_case(argv: list[str]) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        argv = materialize(argv, tmp)
        if argv[0] == "sweep":
            given = {a.split("=", 1)[0] for a in argv}
            argv += [d for d in ("progress=false", "report=false") if d.split("=")[0] not in given]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    return code, err.getvalue().strip()


def main_table() -> None:
    rows = ["| # | bad input | typed | exit | message |", "|---|---|---|---|---|"]
    for i, (name, argv, _) in enumerate(CASES, 1):
        code, message = run_case(argv)
        typed = " ".join(argv).replace("|", "\\|").replace("\x07", "\\x07")
        rows.append(f"| {i} | {name} | `{typed}` | {code} | {message.replace('|', '/')} |")
    head = DOC.read_text().split(MARKER)[0] if DOC.exists() else "# Reliability\n\n"
    DOC.write_text(head + MARKER + "\n\n" + "\n".join(rows) + "\n")
    print(f"{len(CASES)} bad inputs -> {DOC}")


if __name__ == "__main__":
    main_table()
