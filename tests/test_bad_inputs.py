"""Every bad input of tests/bad_input_cases.py (the table in docs/reliability.md): exit status 2, one line on
stderr naming the field or value, no traceback, and a sweep that never starts."""

from __future__ import annotations

import pytest
from bad_input_cases import CASES

from elk_dse.cli import main


def test_at_least_forty_distinct_bad_inputs():
    assert len(CASES) >= 40 and len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("name, argv, needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, name, argv, needle):
    out = tmp_path / "s"
    argv = [a.replace("{out}", str(out)) for a in argv]
    if argv[0] == "sweep":
        argv += ["progress=false", "report=false", "search.workers=0"] * ("search.workers=-1" not in argv)
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, (code, captured.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert needle in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not (out / "results.parquet").exists()
