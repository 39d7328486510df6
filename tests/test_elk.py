"""Elk preloading schedulers: invariants of the schedules, the ordering the paper reports, and physics."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import small_chip_dict
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.elk import (
    OpChoices,
    fixed_window_schedule,
    forward_latency,
    induction,
    load_dependencies,
)
from elk_dse.compiler.schedulers import SCHEDULERS, SchedulerConfig
from elk_dse.compiler.schedulers.elk_full import group_permutations
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Program
from elk_dse.sim import simulate

CONF = __import__("pathlib").Path(__file__).resolve().parents[1] / "conf" / "chip"
NAMES = list(SCHEDULERS)


def pod4():
    return chip_from_dict(yaml.safe_load((CONF / "ipu_pod4.yaml").read_text()))


def mesh_chip():
    return chip_from_dict(small_chip_dict(cores={"count": 16, "grid": [4, 4], "sram_kib": 2048},
                                          hbm={"capacity_gib": 64, "bandwidth_gb_s": 800}))


@pytest.fixture(scope="module")
def llama_results():
    chip = pod4()
    graph = build_model(ModelConfig("llama2_13b", batch=32, kv_len=2048))
    return {name: evaluate_graph(graph, chip, SchedulerConfig(name=name), include_ops=True) for name in NAMES}


def test_every_scheduler_respects_the_roofline(llama_results):
    for name, r in llama_results.items():
        assert r["feasible"], name
        assert r["latency_s"] >= r["roofline_latency_s"], name


def test_scheduler_ordering_on_llama2_13b(llama_results):
    lat = {k: v["latency_s"] for k, v in llama_results.items()}
    assert lat["elk_full"] <= lat["elk_dyn"] * (1 + 1e-9)
    assert lat["elk_dyn"] <= lat["static"] < lat["basic"] < lat["sequential"]
    assert lat["ideal"] <= lat["elk_full"]
    assert lat["ideal"] / lat["elk_full"] > 0.9


def test_program_sram_split_and_timeline(llama_results):
    chip = pod4()
    graph = build_model(ModelConfig("llama2_13b", batch=32, kv_len=2048))
    program = compile_graph(graph, chip, SchedulerConfig(name="elk_dyn"))
    assert isinstance(program, Program)
    sram = chip.sram_bytes_per_core
    assert all(op.sram_exec_bytes + op.sram_preload_bytes <= sram for op in program.ops)
    assert any(op.sram_preload_bytes > 0 for op in program.ops)
    timings = simulate(program).timings
    for op, t in zip(program.ops, timings, strict=True):
        assert t.start_s >= t.load_end_s - 1e-15
        for dep in op.load_after:
            assert t.load_start_s >= timings[dep].end_s - 1e-15
    # Loads never overlap on the HBM path, in the program's load order.
    spans = sorted((timings[i].load_start_s, timings[i].load_end_s) for i in program.load_order
                   if timings[i].load_s > 0)
    assert all(b[0] >= a[1] - 1e-12 for a, b in zip(spans, spans[1:], strict=False))
    # Preloading overlaps loads with execution: some load runs while an earlier operator executes.
    assert any(timings[i].load_start_s < timings[i - 1].end_s for i in range(1, len(timings)) if timings[i].load_s)


def test_json_ops_carry_the_schedule(llama_results):
    op = llama_results["elk_dyn"]["ops"][100]
    for key in ("load_start_s", "load_end_s", "start_s", "end_s", "compute_s", "noc_s", "sync_s", "hbm_bytes",
                "noc_bytes", "plan", "sram_exec_bytes", "sram_preload_bytes"):
        assert key in op


def synthetic(n, rng):
    out = []
    for _ in range(n):
        mem = sorted(rng.uniform(10, 100, size=4))
        ex = sorted(rng.uniform(1, 10, size=4), reverse=True)
        out.append(OpChoices(table=None, rows=[0, 1, 2, 3], mem=list(mem), exec_s=list(ex),
                             load_s=float(rng.uniform(0, 12)), idle_bytes=float(rng.uniform(5, 60)),
                             ideal_rows=[0], ideal_mem=[mem[0]], ideal_exec_s=[ex[-1]], ideal_load_s=0.0))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 9), sram=st.floats(110, 400))
def test_induction_is_consistent_and_beats_fixed_depths(seed, n, sram):
    rng = np.random.default_rng(seed)
    choices = synthetic(n, rng)
    free = [sram] * n
    sched = induction(choices, free, list(range(n)), n, 0.0)
    assert sched is not None  # depth 0 always fits (smallest plan <= 100 < sram)
    fwd = forward_latency(choices, sched)
    assert fwd <= sched.latency_s * (1 + 1e-9) + 1e-12  # running ASAP is never later than the plan
    assert all(b >= a for a, b in zip(sched.window_end, sched.window_end[1:], strict=False))
    for i in range(n):
        assert sched.preload_bytes[i] + choices[i].mem[sched.plan_index[i]] <= free[i] + 1e-9
    lower = sum(c.load_s for c in choices)
    assert fwd >= max(lower, sum(min(c.exec_s) for c in choices)) - 1e-9
    for depth in range(n):
        fixed = fixed_window_schedule(choices, free, depth, float("inf"), 0.0)
        if fixed is not None:
            assert fwd <= fixed.latency_s * (1 + 1e-9) + 1e-9


def test_load_dependencies_point_backwards():
    # Window ends e = (1, 2, 2, 4, 4); load order puts op 2 before op 1 (positions: 0->0, 2->1, 1->2, 3->3, 4->4).
    # A load at position p waits for the last op whose window ends before p.
    deps = load_dependencies((1, 2, 2, 4, 4), (0, 2, 1, 3, 4))
    assert deps == [(), (0,), (), (2,), (2,)]


def test_group_permutations_within_edit_distance():
    perms = group_permutations(5, 2, 100)
    assert perms[0] == (0, 1, 2, 3, 4)
    for p in perms:
        inversions = sum(1 for a in range(5) for b in range(a + 1, 5) if p[a] > p[b])
        assert inversions <= 2
    assert len(perms) == len(set(perms)) == 1 + 4 + 9  # Kendall distance 0, 1, 2 permutations of 5


def test_mesh_chip_preloading_beats_sequential():
    chip = mesh_chip()
    graph = build_model(ModelConfig("llama2_7b", batch=4, kv_len=512))
    lat = {n: evaluate_graph(graph, chip, SchedulerConfig(name=n), include_ops=False)["latency_s"] for n in NAMES}
    assert lat["elk_dyn"] < lat["sequential"]
    assert lat["elk_full"] <= lat["elk_dyn"] * (1 + 1e-9)
    for n in NAMES:
        assert np.isfinite(lat[n])


def test_scheduler_knobs_are_validated():
    from elk_dse.errors import ConfigError

    with pytest.raises(ConfigError, match="margin"):
        SchedulerConfig(name="elk_dyn", margin=2.0)
    with pytest.raises(ConfigError, match="order_edit_distance"):
        SchedulerConfig(name="elk_full", order_edit_distance=-1)


def naive_fixed_window(choices, free, depth, cap, margin):
    """The fixed-window rule written plainly (every depth tried from the top): the reference for fixed_window."""
    n = len(choices)
    idle = [c.idle_bytes * (1.0 + margin) for c in choices]
    plans, ends = [], []
    prev_end = -1
    for i, c in enumerate(choices):
        space = free[i] - (0.0 if cap == float("inf") else cap)
        k = max(0, min(depth, n - 1 - i))
        while k > 0 and (sum(idle[i + 1:i + k + 1]) > space + 1e-9 * abs(space)
                         or c.exec_at(free[i] - sum(idle[i + 1:i + k + 1]))[1] < 0):
            k -= 1
        end = max(i + k, prev_end, i)
        fi = c.exec_at(min(cap, free[i] - sum(idle[i + 1:end + 1])))[1]
        if fi < 0:
            return None
        plans.append(fi)
        ends.append(end)
        prev_end = end
    return tuple(plans), tuple(ends)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), sram=st.floats(60, 400), cap=st.floats(10, 400),
       depth=st.integers(0, 12))
def test_fixed_window_matches_the_plain_rule(seed, n, sram, cap, depth):
    from elk_dse.compiler.elk import fixed_window

    rng = np.random.default_rng(seed)
    choices = synthetic(n, rng)
    for c in choices[:: 3]:
        c.idle_bytes = 0.0  # runs of operators without weights (equal prefix sums) are the delicate case
    free = [sram] * n
    fast = fixed_window(choices, free, depth, cap, 0.01)
    ref = naive_fixed_window(choices, free, depth, cap, 0.01)
    assert (fast is None) == (ref is None)
    if fast is not None:
        assert (fast.plan_index, fast.window_end) == ref
