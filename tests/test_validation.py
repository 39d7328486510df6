"""The validation suite (issue 10): the CLI writes the table with every column, sources are complete, the
calibration sees only calibration points, and the shipped descriptions carry the fitted values."""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import replace

import pytest

from elk_dse.cli import main
from elk_dse.errors import ConfigError
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import load_stack, stack_names
from elk_dse.models import build_model, model_config_from_dict
from elk_dse.models.zoo import zoo_arches
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
    assert main(["validate", "workers=0"]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 4 and "fit" in errs[0] and "points" in errs[1] and "colour" in errs[2]
    assert "workers" in errs[3] and "1 to 64" in errs[3]


def test_workers_give_the_same_rows_in_the_same_order():
    """Fits and points in 2 processes (spawned: real pickling of points and profiles) give the rows of one."""
    ids = ["n150_llama3.2-1b_b1", "n150_llama3.1-8b_b1_bfp4"]
    one, _ = suite_mod.run(ids, calibrate=False)
    lines: list[str] = []
    two, _ = suite_mod.run(ids, calibrate=False, workers=2, progress=lines.append)
    assert [r.point.id for r in two] == [r.point.id for r in one] == [p.id for p in points() if p.id in ids]
    assert [r.predicted for r in two] == [r.predicted for r in one]
    assert sorted(lines) == sorted(f"predicted {i}" for i in ids)


def test_every_point_has_a_complete_source():
    suite = load_suite()
    for key, src in suite["sources"].items():
        assert src["repo"] in ("tenstorrent/tt-metal", "aws-neuron/aws-neuron-sdk"), key
        assert re.fullmatch(r"[0-9a-f]{40}", src["commit"]) and re.fullmatch(r"\d{4}-\d\d-\d\d", src["read"])
    pts = points(suite)
    tt = [p.id for p in pts if p.role == "calibration" and p.stack == "tt_transformers"]
    assert tt == ["n150_llama3.1-8b_b1_bfp4", "n150_llama3.1-8b_b1_bfp8"]
    cal = [p.id for p in pts if p.role == "calibration"]
    # A small declared calibration set: at most two points per stack (issue 17).
    assert all(sum(p.stack == s for p in pts if p.id in cal) <= 2 for s in {p.stack for p in pts})
    assert len({p.id for p in pts}) == len(pts) and sum(p.role == "held-out" for p in pts) >= 6


def _fake_predict(seen):
    def fake(point, stack=None):
        seen.add(point.id)
        # A stand-in with the real one's shape: fixed part, per-op dispatch, DRAM bytes / efficiency.
        return 1.0 / (0.01 + 483 * stack.dispatch_us_per_op * 1e-6 + 0.02 / stack.dram_efficiency)
    return fake


def test_fit_sees_only_its_stacks_calibration_points(monkeypatch):
    all_points = points()
    sets = suite_mod.calibration_sets(all_points)
    assert "tt_transformers" in sets
    for name, cal in sets.items():
        seen: set[str] = set()
        monkeypatch.setattr(suite_mod, "predict", _fake_predict(seen))
        result = fit(cal, load_stack(name))
        # Only this stack's declared calibration points were ever evaluated.
        assert seen == {p.id for p in cal} and all(p.role == "calibration" and p.stack == name for p in cal)
        assert result.stack == name and result.points == tuple(p.id for p in cal)
        assert 0.0 <= result.dispatch_us_per_op <= 200 and 0.5 <= result.hbm_efficiency <= 1.0
    tt = load_stack("tt_transformers")
    with pytest.raises(ValueError):
        fit([p for p in all_points if p.role == "held-out" and p.stack == "tt_transformers"][:1], tt)
    other = next(p for p in all_points if p.stack != "tt_transformers")
    with pytest.raises(ValueError):  # a calibration point of another stack is refused as well
        fit([replace(other, role="calibration")], tt)


def test_run_fits_every_stack_on_its_own_points_and_predicts_with_its_values(monkeypatch):
    seen: set[str] = set()
    calls = []

    def fake(point, stack=None):
        calls.append((point.id, stack.name if stack else point.stack))
        return _fake_predict(seen)(point, stack or load_stack(point.stack))

    monkeypatch.setattr(suite_mod, "predict", fake)
    rows, cals = suite_mod.run()
    all_points = points()
    sets = suite_mod.calibration_sets(all_points)
    assert {c.stack for c in cals} == set(sets)
    fit_calls = calls[: len(calls) - len(rows)]
    calibration_ids = {p.id for pts in sets.values() for p in pts}
    assert {pid for pid, _ in fit_calls} == calibration_ids  # the fits saw calibration points only
    stack_of = {p.id: p.stack for p in all_points}
    assert all(stack == stack_of[pid] for pid, stack in calls)  # every point ran its own stack's values


def test_declared_calibration_points_must_match_both_files(monkeypatch):
    pts = points()
    held = next(p for p in pts if p.role == "held-out" and p.stack == "tt_transformers")
    with pytest.raises(ConfigError, match="calibration.points"):
        suite_mod.calibration_sets([replace(p, role="calibration") if p is held else p for p in pts])


def test_write_appends_markers_to_a_new_file(tmp_path):
    path = write(tmp_path / "new.md", "| table |")
    assert path.read_text().startswith("<!-- validation-table:start -->\n| table |\n")


def test_chips_of_a_stack_carry_no_overheads_of_their_own():
    # The software's costs live in the stack profile only, so every chip running it shares one calibration.
    for p in points():
        data = chip_data(p.chip)
        assert not any(data.get("overheads", {}).values()), p.chip
        assert data["hbm"].get("efficiency", 1.0) == 1.0, p.chip


@pytest.mark.slow
def test_shipped_profiles_hold_the_fitted_values():
    checked = []
    for name, cal_points in suite_mod.calibration_sets(points()).items():
        shipped = load_stack(name)
        if not any(shipped.sources.of(f).startswith("fitted") for f in shipped.calibration.fit):
            continue  # shipped as an assumption until its fit is run (docs/stacks.md)
        checked.append(name)
        cal = fit(cal_points, shipped)
        assert math.isclose(shipped.dispatch_us_per_op, cal.dispatch_us_per_op, abs_tol=0.05), name
        assert shipped.dram_efficiency == cal.hbm_efficiency, name
        for field, value in cal.times_us:  # every fitted fixed cost (issue 17n: the neuron collective startup)
            assert math.isclose(shipped.value(field), value, abs_tol=0.05), (name, field)  # issue 17b: per arch too
    assert "tt_transformers" in checked


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
            assert degrees.get("parallelism") in ("tp", "tp2d", "pp", "ep", "dp"), p.id
            if degrees["parallelism"] == "tp2d":  # degrees: the chips' mesh axes (compiler/parallel/tp2d.py)
                assert chip.chips.grid is not None and math.prod(chip.chips.grid) == chip.chips.count, p.id
            else:
                assert math.prod(v for k, v in degrees.items() if k != "parallelism") == chip.chips.count, p.id
        else:
            assert not degrees, p.id


def test_held_out_points_cover_the_issue_17_systems():
    """At least 20 held-out points on at least 4 systems, 3 of them multi-chip, including an n300."""
    held = [p for p in points() if p.role == "held-out"]
    systems = {p.chip: _chip_and_degrees(p)[0].chips.count for p in held}
    assert len(held) >= 20 and len(systems) >= 4
    assert sum(n > 1 for n in systems.values()) >= 3 and systems.get("wormhole_n300") == 2


# --- issue 17 (2026-11-29): fresh held-out points; every point names shipped files and no condition twice ----------

def _condition(point):
    """What a point's measurement ran (chip with its overrides, stack, the model mapping with batch, context and
    formats, scheduler, metric) as one comparable key: two points with the same key would be one condition."""
    return json.dumps([point.chip, point.chip_overrides, point.stack, point.stack_overrides, point.model,
                       point.scheduler, point.metric], sort_keys=True)


def test_every_held_out_point_names_a_shipped_chip_model_stack_and_a_pinned_source():
    suite = load_suite()
    shipped_models = set(zoo_arches())
    for p in points(suite):
        if p.role != "held-out":
            continue
        assert chip_data(p.chip)["name"] == p.chip, p.id
        assert p.model["name"] in shipped_models, p.id
        assert p.stack in stack_names(), p.id
        src = suite["sources"][p.source]
        assert {"repo", "path", "commit", "read"} <= set(src), p.id
        assert re.fullmatch(r"[0-9a-f]{40}", src["commit"]) and re.fullmatch(r"\d{4}-\d\d-\d\d", src["read"]), p.id
        assert p.conditions and p.measured > 0, p.id


def test_no_condition_is_declared_twice():
    pts = points()
    seen: dict[str, str] = {}
    for p in pts:
        key = _condition(p)
        assert key not in seen, f"{p.id} repeats the condition of {seen.get(key)}"
        seen[key] = p.id
    # The key tells points apart by what differs between real ones: formats, batch and context.
    by_id = {p.id: p for p in pts}
    assert _condition(by_id["n150_llama3.1-8b_b1_bfp4"]) != _condition(by_id["n150_llama3.1-8b_b1_bfp8"])
    assert _condition(by_id["galaxy_llama3.3-70b_b1_in4k_tp32"]) != _condition(by_id["galaxy_llama3.3-70b_b1_in8k_tp32"])
    twin = replace(by_id["n300_llama3.1-8b_b32_tp2"], id="copy", model=dict(by_id["n300_llama3.1-8b_b32_tp2"].model))
    assert _condition(twin) == _condition(by_id["n300_llama3.1-8b_b32_tp2"])


def test_points_declared_2026_11_29_are_held_out_on_four_systems_three_multi_chip():
    """The fresh block (issue 17): at least 25 held-out points on at least 4 systems, 3 of them multi-chip."""
    pts = points()
    start = next(i for i, p in enumerate(pts) if p.id == "n300_llama3.2-1b_b32_tp2")
    end = next(i for i, p in enumerate(pts) if p.id == _SEVENTH_SESSION_FIRST)  # up to the block with calibration
    fresh = pts[start:end]
    assert all(p.role == "held-out" for p in fresh)
    systems = {p.chip: _chip_and_degrees(p)[0].chips.count for p in fresh}
    assert len(fresh) >= 25 and len(systems) >= 4 and sum(n > 1 for n in systems.values()) >= 3


def test_points_declared_in_the_fourth_session_are_held_out_and_mostly_multi_chip():
    """The fourth session's block (issue 17, 2026-11-29): 20-40 held-out points, at least half of them on systems
    of chips, on at least 4 systems; no calibration point was added, so no stack's fit changes."""
    pts = points()
    start = next(i for i, p in enumerate(pts) if p.id == "galaxy_tt_llama3.2-1b_b1")
    end = next(i for i, p in enumerate(pts) if p.id == _FIFTH_SESSION_FIRST)  # the next session's block
    _check_declared_block(pts, pts[start:end], pts[:start])


def _check_declared_block(pts, fresh, earlier, sizes=(20, 40)):
    """A session's block of declared points: 20-40 held-out points (``sizes``), at least half of them on systems
    of chips, on at least 4 systems, every source read on 2026-11-29; the calibration sets are the ones declared
    before the block (no stack's fit changes)."""
    assert sizes[0] <= len(fresh) <= sizes[1] and all(p.role == "held-out" for p in fresh)
    chips = {p.id: _chip_and_degrees(p)[0].chips.count for p in fresh}
    assert 2 * sum(n > 1 for n in chips.values()) >= len(fresh)
    assert len({p.chip for p in fresh}) >= 4
    suite = load_suite()
    assert all(suite["sources"][p.source]["read"] == "2026-11-29" for p in fresh)
    # (the one calibration point declared since, in the seventh session's block, is the only one allowed)
    assert {p.id for p in pts if p.role == "calibration"} - {p.id for p in earlier} <= {_SEVENTH_SESSION_FIRST}


# --- issue 17 (2026-11-29, fifth session): fresh held-out points, declared before any prediction of them -----------

_FIFTH_SESSION_FIRST = "inf2x48_llama3-8b-int8_b1_s8192_in4096_tp24"
_SIXTH_SESSION_FIRST = "n300_falcon3-1b_b1_tp2"  # issue 17, sixth session (its block follows the fifth's)
_SEVENTH_SESSION_FIRST = "p150_resnet50_b32"  # issue 17, seventh session (its block follows the sixth's)
_EIGHTH_SESSION_FIRST = "inf2x48_llama2-13b_b1_s256_in64_tp24"  # issue 17, eighth session (after the seventh's)
_NINTH_SESSION_FIRST = "inf2_roberta-base_s128_b8"  # issue 17, ninth session (17w3; after the eighth's)


def test_points_declared_in_the_fifth_session_are_held_out_new_and_mostly_multi_chip():
    """The fifth session's block (issue 17, 2026-11-29): 20-40 held-out points at the end of the file, at least
    half of them on systems of chips, on at least 4 systems, every source pinned and read on 2026-11-29; no
    calibration point was added (no stack's fit changes) and no row of a source file is read twice (a point's
    source, model, batch and context differ from every earlier point's)."""
    pts = points()
    start = next(i for i, p in enumerate(pts) if p.id == _FIFTH_SESSION_FIRST)
    end = next(i for i, p in enumerate(pts) if p.id == _SIXTH_SESSION_FIRST)  # the next session's block
    fresh, earlier = pts[start:end], pts[:start]
    _check_declared_block(pts, fresh, earlier)
    suite = load_suite()

    def row(p):  # the source file's row a point reads: file, model, batch, context (or sequence) and weights
        src = suite["sources"][p.source]
        m = p.model
        return (src["repo"], src["path"], m["name"], m.get("batch"), m.get("kv_len", m.get("seq_len")),
                json.dumps(m.get("formats"), sort_keys=True), p.chip)

    rows_before = {row(p) for p in earlier}
    for p in fresh:
        assert row(p) not in rows_before, f"{p.id} reads a row an earlier point reads"


# --- issue 17 (2026-11-29, sixth session): fresh held-out points, declared before any prediction of them -----------


def _source_row(suite, p):
    """The source file's row a point reads: file, model, batch, context (or sequence), weights and chip."""
    src = suite["sources"][p.source]
    m = p.model
    return (src["repo"], src["path"], m["name"], m.get("batch"), m.get("kv_len", m.get("seq_len")),
            json.dumps(m.get("formats"), sort_keys=True), p.chip)


def test_points_declared_in_the_sixth_session_are_held_out_new_and_mostly_multi_chip():
    """The sixth session's block (issue 17, 2026-11-29): 15-30 held-out points at the end of the file (the
    brief's range), at least half on systems of chips, on at least 4 systems (here 8), every source pinned and
    read on 2026-11-29; no calibration point added and no source-file row read by an earlier point."""
    pts = points()
    start = next(i for i, p in enumerate(pts) if p.id == _SIXTH_SESSION_FIRST)
    end = next(i for i, p in enumerate(pts) if p.id == _SEVENTH_SESSION_FIRST)  # the next session's block
    fresh, earlier = pts[start:end], pts[:start]
    _check_declared_block(pts, fresh, earlier, sizes=(15, 30))
    suite = load_suite()
    rows_before = {_source_row(suite, p) for p in earlier}
    for p in fresh:
        assert _source_row(suite, p) not in rows_before, f"{p.id} reads a row an earlier point reads"
    systems = {p.chip for p in fresh}
    assert {"trn2_48xlarge", "wormhole_n300", "wormhole_t3k", "wormhole_galaxy"} <= systems
    # the new chip file: 16 Trainium2 chips in a 4x4 torus, as the SDK's trn2-arch.rst states
    trn2 = _chip_and_degrees(next(p for p in fresh if p.chip == "trn2_48xlarge"))[0]
    assert (trn2.chips.count, trn2.chips.topology, tuple(trn2.chips.grid)) == (16, "torus", (4, 4))
    assert trn2.cores.count == 8 and trn2.hbm.bandwidth_gb_s == 2900



# --- issue 17 (2026-11-29, seventh session): fresh points, declared before any prediction of them ----------------


def test_points_declared_in_the_seventh_session_are_new_and_one_is_a_blackhole_calibration_point():
    """The seventh session's block (issue 17, 2026-11-29), at the end of the file: first one tt_cnn calibration
    point on a Blackhole (for the per-architecture fit), named by the stack profile too, then 12-25 held-out
    points on at least 4 systems, 4 or more of them on systems of chips; every source pinned and read on
    2026-11-29, and no point reads a source-file row (file, model, batch, context, formats, chip) an earlier
    point reads."""
    pts = points()
    start = next(i for i, p in enumerate(pts) if p.id == _SEVENTH_SESSION_FIRST)
    end = next(i for i, p in enumerate(pts) if p.id == _EIGHTH_SESSION_FIRST)  # the next session's block
    block, earlier = pts[start:end], pts[:start]
    cal, held = block[0], block[1:]
    # issue 17b3 (ninth session): declared as calibration, now a check point (tt_cnn's Blackhole gap follows the
    # Wormhole fit plus a sourced offset): never fitted, not held out
    assert (cal.role, cal.stack, cal.chip) == ("check", "tt_cnn", "blackhole_p150")
    assert cal.id not in load_stack("tt_cnn").calibration.points
    assert 12 <= len(held) <= 25 and all(p.role == "held-out" for p in held)
    chips = {p.id: _chip_and_degrees(p)[0].chips.count for p in held}
    assert sum(n > 1 for n in chips.values()) >= 4 and len({p.chip for p in held}) >= 4
    suite = load_suite()
    assert all(suite["sources"][p.source]["read"] == "2026-11-29" for p in block)
    rows_before = {_source_row(suite, p) for p in earlier}
    for p in block:
        assert _source_row(suite, p) not in rows_before, f"{p.id} reads a row an earlier point reads"
    # the calibration point is not a condition any held-out point measures (model, batch and chip differ)
    assert all((p.chip, p.model.get("name"), p.model.get("batch")) != (cal.chip, "resnet50", 32) for p in held)


# --- issue 17 (2026-11-29, eighth session, 17w): fresh held-out points, declared before any prediction of them ------


def test_points_declared_in_the_eighth_session_are_held_out_new_and_mostly_multi_chip():
    """The eighth session's block (issue 17, 2026-11-29), at the end of the file: 12-25 held-out points (the
    brief's range), at least half of them on systems of chips, on at least 4 systems, every source pinned to a
    commit and read on 2026-11-29; no calibration point is added (none met the brief: docs/validation.md) and no
    point reads a source-file row (file, model, batch, context, formats, chip) an earlier point reads."""
    pts = points()
    start = next(i for i, p in enumerate(pts) if p.id == _EIGHTH_SESSION_FIRST)
    end = next(i for i, p in enumerate(pts) if p.id == _NINTH_SESSION_FIRST)  # the next session's block
    fresh, earlier = pts[start:end], pts[:start]
    _check_declared_block(pts, fresh, earlier, sizes=(12, 25))
    assert {p.id for p in pts if p.role == "calibration"} == {p.id for p in earlier if p.role == "calibration"}
    suite = load_suite()
    for p in fresh:
        src = suite["sources"][p.source]
        assert len(src["commit"]) == 40 and int(src["commit"], 16) >= 0, p.id
    rows_before = {_source_row(suite, p) for p in earlier}
    for p in fresh:
        assert _source_row(suite, p) not in rows_before, f"{p.id} reads a row an earlier point reads"
    # the systems of chips this block adds: two Galaxies (64 chips) and two Blackhole p150s
    counts = {p.id: _chip_and_degrees(p)[0].chips.count for p in fresh}
    assert counts["tgg_resnet50_b1024_dp64"] == 64 and counts["bh2_llama3.1-8b_b64_dp2"] == 2


# --- issue 17 (2026-11-29, ninth session, 17w3): fresh held-out points, declared before any prediction of them ------


def test_points_declared_in_the_ninth_session_are_held_out_new_and_half_multi_chip():
    """The ninth session's block (issue 17, 2026-11-29), at the end of the file: 10-20 held-out points (the
    brief's range), at least half of them on systems of chips, on at least 4 systems, every source pinned to a
    commit and read on 2026-11-29; no calibration point is added and no point reads a source-file row (file,
    model, batch, context, formats, chip) an earlier point reads. Its new files: the p100a chip (120 Tensix, an
    11 x 10 compute grid, 7 GDDR6 banks at 448 GB/s, as the vendor's table and tt-metal state) and RoBERTa-base."""
    pts = points()
    start = next(i for i, p in enumerate(pts) if p.id == _NINTH_SESSION_FIRST)
    fresh, earlier = pts[start:], pts[:start]
    _check_declared_block(pts, fresh, earlier, sizes=(10, 20))
    assert {p.id for p in pts if p.role == "calibration"} == {p.id for p in earlier if p.role == "calibration"}
    suite = load_suite()
    for p in fresh:
        assert re.fullmatch(r"[0-9a-f]{40}", suite["sources"][p.source]["commit"]), p.id
    rows_before = {_source_row(suite, p) for p in earlier}
    for p in fresh:
        assert _source_row(suite, p) not in rows_before, f"{p.id} reads a row an earlier point reads"
    p100 = _chip_and_degrees(next(p for p in fresh if p.chip == "blackhole_p100"))[0]
    assert (p100.cores.count, tuple(p100.cores.grid), p100.cores.die_cores) == (110, (10, 11), 120)
    assert (p100.hbm.bandwidth_gb_s, p100.hbm.capacity_gib, p100.hbm.channels) == (448, 28, 7)
    assert {p.model["name"] for p in fresh} >= {"roberta_base", "llama2_70b", "llama3_1_8b"}


# --- eighth session: a point's own host loop (stack_overrides), e.g. the two-Galaxy ResNet-50 test's one queue ------

def test_a_point_may_override_its_stacks_host_loop_and_nothing_else():
    """n300 ResNet-50 DP=2 under tt_cnn: the two-queue loop hides the input write under the compute; one queue
    (a point's ``stack_overrides: {host_batch_io: trace_1cq}``) adds it whole: 2 chips x 4,816,896 B over the
    n300's one host link at 6.93 GB/s = 1.3901 ms. Other fields and unknown rules are refused at load."""
    base = next(p for p in points() if p.id == "n300_resnet50_b32_dp2")
    one_queue = replace(base, stack_overrides={"host_batch_io": "trace_1cq"})
    write_ms = 2 * 4_816_896 / 6.93e9 * 1e3
    assert suite_mod.predict(one_queue) - suite_mod.predict(base) == pytest.approx(write_ms, rel=1e-6)
    tgg = next(p for p in points() if p.id == "tgg_resnet50_b1024_dp64")
    assert tgg.stack_overrides == {"host_batch_io": "trace_1cq"} and tgg.chip_overrides["chips"]["host_links"] == 8
    suite = load_suite()
    raw = next(r for r in suite["points"] if r["id"] == "n300_resnet50_b32_dp2")
    for over, field in (({"dispatch_us_per_op": 1.0}, "stack_overrides.dispatch_us_per_op"),
                        ({"host_batch_io": "trace_3cq"}, "host_batch_io")):
        bad = {**suite, "points": [{**raw, "stack_overrides": over}]}
        with pytest.raises(ConfigError, match=field):
            points(bad)


def test_a_subset_run_fits_only_the_stacks_its_points_run(monkeypatch):
    """`validate points=<ids>` with the fit fits the selected points' stacks and no other (each fit is replaced
    here by the shipped values, so only which stacks are fitted is under test), and predicts only those points."""
    fitted = []

    def shipped_fit(name, pts):
        fitted.append(name)
        s = load_stack(name)
        return suite_mod.Calibration(name, s.dispatch_us_per_op, s.dram_efficiency, ())

    monkeypatch.setattr(suite_mod, "_fit_task", shipped_fit)
    rows, cals = suite_mod.run(["n300_resnet50_b32_dp2"], calibrate=True)
    assert fitted == ["tt_cnn"] and [c.stack for c in cals] == ["tt_cnn"]
    assert [r.point.id for r in rows] == ["n300_resnet50_b32_dp2"] and math.isfinite(rows[0].predicted)


# --- issue 17b3 (ninth session): a check point is predicted, never fitted and not counted as held out -------------


def test_a_check_point_is_predicted_but_never_fitted_nor_counted_as_held_out():
    from elk_dse.validation.suite import Row
    from elk_dse.validation.table import summary

    pts = points()
    check = [p for p in pts if p.role == "check"]
    assert [p.id for p in check] == ["p150_resnet50_b32"]
    sets = suite_mod.calibration_sets(pts)
    assert all(p.role == "calibration" for cal in sets.values() for p in cal)
    with pytest.raises(ValueError):  # the fit refuses it as it refuses a held-out point
        fit(check, load_stack("tt_cnn"))
    held = next(p for p in pts if p.role == "held-out")
    rows = [Row(held, 1.1 * held.measured, 0.1), Row(check[0], 3.0 * check[0].measured, 2.0)]
    s = summary(rows)
    assert s["held_out"] == 1 and s["max_abs_error"] == pytest.approx(0.1)
