"""Every bad input of tests/bad_input_cases.py (the table in docs/reliability.md): exit status 2, one line on
stderr naming the field or value, no traceback, and a sweep that never starts."""

from __future__ import annotations

import pytest
from bad_input_cases import CASES, materialize

from elk_dse.cli import main


def test_at_least_forty_distinct_bad_inputs():
    assert len(CASES) >= 40 and len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("name, argv, needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, name, argv, needle):
    out = tmp_path / "s"
    argv = materialize(argv, str(tmp_path))
    if argv[0] == "sweep":
        given = {a.split("=", 1)[0] for a in argv}
        argv += [d for d in ("progress=false", "report=false", "search.workers=0") if d.split("=")[0] not in given]
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, (code, captured.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert needle in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not (out / "results.parquet").exists()
