"""The hostile-input fuzzer (issue 21): hypothesis writes command lines and sweep files as a hostile user would.
The only accepted outcomes are a result that respects the roofline bound (or an infeasible point with its
reason), or exactly one line starting with ``error:`` and exit status 2 (bad input) or 74 (a file).
Anything else (a traceback, "internal error", exit 1, several lines) is a defect.

The default suite runs a few dozen examples of each; ``make test-all`` runs the ``slow`` variants with ten
times as many."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elk_dse.cli import main

SMALL = ["+chip=mesh64", "chip.cores.count=16", "chip.cores.grid=[4,4]", "model=bert_base", "model.seq_len=32"]

KEYS = [
    # chip
    "chip.clock_ghz", "chip.cores.count", "chip.cores.grid", "chip.cores.sram_kib", "chip.cores.matrix_rows",
    "chip.cores.matrix_cols", "chip.cores.vector_lanes", "chip.cores.model", "chip.cores.op_overhead_cycles",
    "chip.interconnect.topology", "chip.interconnect.link_bytes_per_cycle", "chip.interconnect.hop_latency_cycles",
    "chip.hbm.bandwidth_gb_s", "chip.hbm.capacity_gib", "chip.hbm.channels", "chip.hbm.attach", "chip.name",
    "+chip.chips.count", "+chip.chips.topology", "+chip.chips.grid", "chip.chips.count",
    # model
    "model", "model.name", "model.phase", "model.batch", "model.seq_len", "model.kv_len", "model.dtype",
    "model.fused_attention", "+model.formats.kv_cache", "model.formats.weights",
    # scheduler, sim, top level
    "scheduler", "scheduler.plans", "scheduler.cross_op", "scheduler.max_preload_depth", "scheduler.margin",
    "sim", "sim.mode", "format", "chip", "+chip", "~model", "unknown.key", "chip.cores", "model.batch.x",
]

TEXT_VALUES = st.sampled_from([
    "", "abc", "llamä", "'llamä'", "\x07", "a b", "[1,2]", "[8,8]", "[]", "{a: 1}", "null", "true", "NaN", "nan",
    "inf", "-inf", "1e308", "1e-320", "0x10", "${oc.env:HOME}", "${model.batch}", "${nope}", "'", '"', "[", "]",
    "{", "=", "a=b", ",", "mesh", "torus", "all_to_all", "ring", "hypercube", "fp8", "bfp4", "int8", "decode",
    "prefill", "train", "event", "exact", "aggregated", "json", "text", "4x4", "🙂", "\\", "%", "..", "/etc/passwd",
])
NUMBER_VALUES = st.one_of(
    st.integers(-2**70, 2**70).map(str), st.integers(-3, 70000).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
)
OVERRIDE = st.tuples(st.sampled_from(KEYS), st.one_of(TEXT_VALUES, NUMBER_VALUES)).map(lambda kv: f"{kv[0]}={kv[1]}")


def _check_outcome(code: int, out: str, err: str) -> None:
    lines = err.strip().splitlines()
    assert code in (0, 2, 74), (code, err)
    assert "Traceback" not in err + out and "internal error" not in err, err
    if code != 0:
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        return
    result = json.loads(out)
    if result["feasible"]:
        latency, bound = result["latency_s"], result["roofline_latency_s"]
        assert math.isfinite(latency) and latency > 0
        assert latency >= bound * (1 - 1e-9), (latency, bound)
    else:
        assert result["infeasible_reason"], result
    for key, value in result.items():
        if key.endswith(("_bytes", "_s")) and isinstance(value, int | float):
            assert value >= 0, (key, value)


def _fuzz_evaluate(capsys, overrides: list[str]) -> None:
    code = main(["evaluate", *SMALL, *overrides, "format=json"])
    cap = capsys.readouterr()
    _check_outcome(code, cap.out, cap.err)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.lists(OVERRIDE, min_size=1, max_size=3))
def test_hostile_overrides_give_a_result_or_one_line(capsys, overrides):
    _fuzz_evaluate(capsys, overrides)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.lists(OVERRIDE, min_size=1, max_size=4))
def test_hostile_overrides_long_run(capsys, overrides):
    _fuzz_evaluate(capsys, overrides)


PARAM_KEYS = ["chip.cores.sram_kib", "chip.cores.count", "chip.cores.grid", "chip.cores", "chip.hbm.bandwidth_gb_s",
              "chip.interconnect.topology", "model.batch", "model.name", "model.dtype", "scheduler.cross_op",
              "scheduler.plans", "chip.nope", "model", "search.seed", "chip.cores.sram_kib.x"]
LEAF = st.one_of(st.integers(-5, 5000), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                 st.sampled_from(["mesh", "torus", "4x4", "2x8", "llama2_7b", "bert_base", "llama9", "fp8", "t10",
                                  "", "x"]))
SPEC = st.one_of(
    st.fixed_dictionaries({"choices": st.lists(LEAF, min_size=0, max_size=4)}),
    st.fixed_dictionaries({"low": LEAF, "high": LEAF}, optional={
        "log": st.one_of(st.booleans(), LEAF), "step": LEAF, "type": st.sampled_from(["int", "float", "str", 3])}),
    LEAF,
    st.fixed_dictionaries({"choices": st.lists(LEAF, min_size=1, max_size=3)},
                          optional={"when": st.dictionaries(st.sampled_from(PARAM_KEYS), LEAF, max_size=1)}),
)
SPACE = st.fixed_dictionaries(
    {"params": st.dictionaries(st.sampled_from(PARAM_KEYS), SPEC, max_size=3)},
    optional={
        "objectives": st.lists(st.fixed_dictionaries(
            {"metric": st.sampled_from(["latency_s", "area_mm2", "energy_j", "nope", 3])},
            optional={"direction": st.sampled_from(["minimize", "maximize", "sideways"])}), max_size=2),
        "constraints": st.lists(st.fixed_dictionaries(
            {"metric": st.sampled_from(["area_mm2", "power_w", "x"]), "max": LEAF}), max_size=1),
        "description": st.text(max_size=10),
        "extra": LEAF,
    },
)


def _fuzz_sweep(tmp_path, capsys, space: dict, sampler: str) -> None:
    import shutil

    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space, allow_unicode=True))
    out = tmp_path / "out"
    shutil.rmtree(out, ignore_errors=True)
    code = main(["sweep", *SMALL, f"sweep={path}", f"out={out}", "search.n_trials=2", "search.batch_size=2",
                 "search.workers=0", "progress=false", "report=false", f"search.sampler={sampler}"])
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert code in (0, 2, 74), (code, cap.err)
    assert "Traceback" not in cap.err and "internal error" not in cap.err, cap.err
    if code != 0:
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        return
    from elk_dse.results.store import ResultStore

    rows = ResultStore(out).read()
    assert list(rows["trial"]) == [0, 1] or (sampler == "grid" and len(rows) >= 1)
    assert set(rows["status"]) <= {"COMPLETE", "INFEASIBLE"}, rows[["status", "error"]].to_dict("records")
    assert not (out / "pending_rows.jsonl").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(space=SPACE, sampler=st.sampled_from(["nsga2", "tpe", "random", "grid"]))
def test_hostile_search_spaces_run_or_are_refused_in_one_line(tmp_path, capsys, space, sampler):
    _fuzz_sweep(tmp_path, capsys, space, sampler)


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(space=SPACE, sampler=st.sampled_from(["nsga2", "tpe", "random", "grid"]))
def test_hostile_search_spaces_long_run(tmp_path, capsys, space, sampler):
    _fuzz_sweep(tmp_path, capsys, space, sampler)
