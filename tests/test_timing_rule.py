"""The one timing rule (cost/timeline.py) and the null simulator built on it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.elk import load_dependencies
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.timeline import TimingRule, asap_timeline
from elk_dse.errors import ConfigError
from elk_dse.program import Program
from elk_dse.sim import SimConfig, simulate
from elk_dse.testing.schedulers import conformance_cases


@st.composite
def schedules(draw):
    n = draw(st.integers(1, 12))
    ends = sorted(draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n)))
    ends = [max(e, i) for i, e in enumerate(ends)]  # every window covers its own load (identity order)
    dur = st.floats(0, 10, allow_nan=False)
    load = draw(st.lists(dur, min_size=n, max_size=n))
    ex = draw(st.lists(dur, min_size=n, max_size=n))
    return ends, load, ex


@settings(max_examples=80, deadline=None)
@given(schedules())
def test_asap_meets_every_dependency_and_waits_for_nothing_else(case):
    ends, load, ex = case
    n = len(ex)
    order = tuple(range(n))
    load_after = load_dependencies(tuple(ends), order)
    exec_after = [(i - 1,) if i else () for i in range(n)]
    ls, le, s, e = asap_timeline(load, ex, load_after, exec_after, order)
    hbm_free = 0.0
    for p in range(n):
        j = order[p]
        earliest = max([hbm_free, *(e[m] for m in load_after[j])])
        assert ls[j] == pytest.approx(earliest)  # starts exactly when the rule allows
        assert le[j] == pytest.approx(ls[j] + load[j])
        if load[j] > 0:
            hbm_free = le[j]
    for i in range(n):
        assert s[i] == pytest.approx(max([le[i], *(e[m] for m in exec_after[i])]))
        assert e[i] == pytest.approx(s[i] + ex[i])


def test_a_load_waiting_for_its_own_execution_deadlocks():
    with pytest.raises(ValueError, match="deadlocks at op 1"):
        asap_timeline([1.0, 1.0], [1.0, 1.0], [(), (1,)], [(), (0,)])


def test_the_rule_refuses_out_of_order_starts():
    rule = TimingRule([(), ()], [(), (0,)])
    assert rule.ready_load() == (0, 0.0)
    with pytest.raises(ValueError, match="not the next ready load"):
        rule.start_load(1)
    assert rule.ready_exec() is None  # op 0's load has not ended


@pytest.fixture(scope="module")
def programs():
    case = {c.name: c for c in conformance_cases()}["tight"]
    graph, chip = case.build()
    out = {}
    for name in ("sequential", "elk_dyn"):
        program = compile_graph(graph, chip, SchedulerConfig(name=name))
        assert isinstance(program, Program)
        out[name] = program
    return out


def test_null_simulator_times_sequential_as_loads_plus_executions(programs):
    p = programs["sequential"]
    r = simulate(p, "null", exec_s=2e-6, load_s=3e-6)
    loads = sum(1 for op in p.ops if op.work.hbm_bytes > 0 or op.work.hbm_delivered_bytes > 0)
    assert loads > 0
    assert r.latency_s == pytest.approx(len(p.ops) * 2e-6 + loads * 3e-6)


def test_null_simulator_shows_preloading_overlap(programs):
    seq, dyn = (simulate(programs[k], "null", exec_s=2e-6, load_s=3e-6) for k in ("sequential", "elk_dyn"))
    n = len(programs["elk_dyn"].ops)
    assert n * 2e-6 <= dyn.latency_s < seq.latency_s  # loads overlap earlier executions
    starts = np.array([t.load_start_s for t in dyn.timings])
    ends = np.array([t.end_s for t in dyn.timings])
    assert (starts[1:] < ends[:-1]).any()


def test_null_simulator_is_not_selectable_for_sweeps(programs):
    with pytest.raises(ConfigError, match="analytic"):
        SimConfig(name="null")
    with pytest.raises(ConfigError, match="exec_s"):
        simulate(programs["sequential"], "null", exec_s=-1.0)
