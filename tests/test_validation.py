"""The validation suite (issue 10): the CLI writes the table with every column, sources are complete, the
calibration sees only calibration points, and the shipped descriptions carry the fitted values."""

from __future__ import annotations

import copy
import math
import re

import pytest

from elk_dse.cli import main
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import build_model, model_config_from_dict
from elk_dse.validation import COLUMNS, fit, load_suite, points, write
from elk_dse.validation import suite as suite_mod
from elk_dse.validation.suite import chip_data


def test_validate_writes_the_table_with_every_column(tmp_path, capsys):
    out = tmp_path / "validation.md"
    out.write_text("# Validation\n\nprose before\n\n<!-- validation-table:start -->\nold\n"
                   "<!-- validation-table:end -->\n\nprose after\n")
    ids = ["n150_llama3.1-8b_b1_bfp4", "inf2_bert-large_s128_b1"]
    assert main(["validate", "fit=false", "points=" + ",".join(ids), f"out={out}"]) == 0
    text = out.read_text()
    assert "prose before" in text and "prose after" in text and "\nold\n" not in text
    header = next(line for line in text.splitlines() if line.startswith("| point"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(COLUMNS)
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| point")]
    assert [r.split("|")[1].strip() for r in rows] == ids
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert len(cells) == len(COLUMNS) and all(cells)
        assert re.fullmatch(r"[+-]\d+\.\d%", cells[COLUMNS.index("error")])
    assert "Held-out points: 1" in text and "tt_perf_md" in text
    assert "| n150_llama3.1-8b_b1_bfp4 |" in capsys.readouterr().out
    # The picture beside the document, linked above the table.
    png = tmp_path / "img" / "validation.png"
    assert "![prediction error per point](img/validation.png)" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_validate_rejects_bad_options_in_one_line(capsys):
    assert main(["validate", "fit=maybe"]) == 2
    assert main(["validate", "fit=false", "points=nope"]) == 2
    assert main(["validate", "colour=red"]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 3 and "fit" in errs[0] and "points" in errs[1] and "colour" in errs[2]


def test_every_point_has_a_complete_source():
    suite = load_suite()
    for key, src in suite["sources"].items():
        assert src["repo"] in ("tenstorrent/tt-metal", "aws-neuron/aws-neuron-sdk"), key
        assert re.fullmatch(r"[0-9a-f]{40}", src["commit"]) and re.fullmatch(r"\d{4}-\d\d-\d\d", src["read"])
    pts = points(suite)
    stack = {raw["id"]: raw["stack"] for raw in suite["points"]}  # every point names its software stack
    cal = [p.id for p in pts if p.role == "calibration"]
    assert [i for i in cal if stack[i] == "tt_transformers"] == ["n150_llama3.1-8b_b1_bfp4", "n150_llama3.1-8b_b1_bfp8"]
    # A small declared calibration set: at most two points per stack (issue 17).
    assert all(sum(stack[i] == s for i in cal) <= 2 for s in set(stack.values()))
    assert len({p.id for p in pts}) == len(pts) and sum(p.role == "held-out" for p in pts) >= 6


def test_fit_sees_calibration_points_only(monkeypatch):
    seen = set()

    def fake(point, d=None, e=None, shared_by=()):
        seen.add(point.id)
        # A stand-in with the real one's shape: fixed part, per-op dispatch, DRAM bytes / efficiency.
        return 1.0 / (0.01 + 483 * d * 1e-6 + 0.02 / e)

    monkeypatch.setattr(suite_mod, "predict", fake)
    cal = [p for p in points() if p.role == "calibration"]
    result = fit(cal, ("wormhole_n150",))
    assert seen == {p.id for p in cal}
    assert 0.0 <= result.dispatch_us_per_op <= 200 and 0.5 <= result.hbm_efficiency <= 1.0
    with pytest.raises(ValueError):
        fit([p for p in points() if p.role == "held-out"][:1], ("wormhole_n150",))


def test_write_appends_markers_to_a_new_file(tmp_path):
    path = write(tmp_path / "new.md", "| table |")
    assert path.read_text().startswith("<!-- validation-table:start -->\n| table |\n")


def test_shared_chips_carry_one_calibration():
    shared = load_suite()["calibration"]["shared_by"]
    values = {(chip_data(c)["overheads"]["dispatch_us_per_op"], chip_data(c)["hbm"]["efficiency"]) for c in shared}
    assert len(values) == 1


@pytest.mark.slow
def test_shipped_descriptions_hold_the_fitted_values():
    suite = load_suite()
    stack = {raw["id"]: raw["stack"] for raw in suite["points"]}
    cal = fit([p for p in points(suite) if p.role == "calibration" and stack[p.id] == "tt_transformers"],
              suite["calibration"]["shared_by"])
    n150 = chip_data("wormhole_n150")
    assert math.isclose(n150["overheads"]["dispatch_us_per_op"], cal.dispatch_us_per_op, abs_tol=0.05)
    assert n150["hbm"]["efficiency"] == cal.hbm_efficiency


# --- issue 17: held-out points on multi-chip systems, declared before they are predicted -------------------------

_PARALLEL = ("parallelism", "tp", "pp", "ep", "dp")


def _chip_and_degrees(point):
    """The point's chip description with its overrides, without the parallelism fields, and those fields."""
    over = copy.deepcopy(point.chip_overrides)
    chips = over.get("chips", {})
    degrees = {k: chips.pop(k) for k in _PARALLEL if k in chips}
    return chip_from_dict(suite_mod._merge(chip_data(point.chip), over)), degrees


def test_every_point_loads_and_multi_chip_points_declare_their_parallelism():
    """Each point's chip (with its overrides) and model build; every multi-chip point names the parallelism its
    source states, with degrees whose product is the number of chips (the rule of chips.parallelism)."""
    for p in points():
        chip, degrees = _chip_and_degrees(p)
        build_model(model_config_from_dict({"phase": "decode", **p.model}))
        if chip.chips.count > 1:
            assert degrees.get("parallelism") in ("tp", "pp", "ep", "dp"), p.id
            assert math.prod(v for k, v in degrees.items() if k != "parallelism") == chip.chips.count, p.id
        else:
            assert not degrees, p.id


def test_held_out_points_cover_the_issue_17_systems():
    """At least 20 held-out points on at least 4 systems, 3 of them multi-chip, including an n300."""
    held = [p for p in points() if p.role == "held-out"]
    systems = {p.chip: _chip_and_degrees(p)[0].chips.count for p in held}
    assert len(held) >= 20 and len(systems) >= 4
    assert sum(n > 1 for n in systems.values()) >= 3 and systems.get("wormhole_n300") == 2
