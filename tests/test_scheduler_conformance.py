"""Every registered scheduler passes the conformance suite shipped in elk_dse.testing.schedulers; the suite
itself catches a scheduler that breaks the rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from elk_dse.compiler.schedulers import SCHEDULERS, Scheduler, SchedulerConfig, register_scheduler
from elk_dse.compiler.schedulers.elk_dyn import ElkDyn
from elk_dse.testing.schedulers import (
    ConformanceError,
    check_program,
    check_schedule,
    check_scheduler,
    conformance_cases,
)

CASES = {c.name: c for c in conformance_cases()}
CONF = Path(__file__).resolve().parents[1] / "conf" / "scheduler"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_registered_scheduler_conforms(name, case):
    check_scheduler(name, CASES[case])


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_scheduler_has_a_config_file_with_known_knobs(name):
    data = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    assert data["name"] == name
    SchedulerConfig(**data)  # every key is a SchedulerConfig field
    knobs = SCHEDULERS[name].from_config(SchedulerConfig(**data)).knobs
    assert type(knobs) is SCHEDULERS[name].Knobs


@pytest.fixture
def plugin():
    """Register a scheduler for one test, then remove it."""
    added = []

    def add(name, cls):
        register_scheduler(name)(cls)
        added.append(name)
        return cls

    yield add
    for name in added:
        SCHEDULERS.pop(name, None)


def test_the_suite_rejects_decreasing_window_ends(plugin):
    class Shrinking(ElkDyn):
        def schedule(self, problem):
            s = super().schedule(problem)
            w = list(s.window_end)
            w[-1] = w[-2] - 1 if len(w) > 1 else w[-1]
            return replace(s, window_end=tuple(w))

    plugin("shrinking", Shrinking)
    with pytest.raises(ConformanceError, match="window end decreases|before its own load"):
        check_schedule("shrinking", CASES["tight"])


def test_the_suite_rejects_plans_beyond_free_sram(plugin):
    class Greedy(ElkDyn):
        def schedule(self, problem):  # the fastest plan everywhere, whatever the preloads leave
            s = super().schedule(problem)
            return replace(s, plan_index=tuple(len(c.mem) - 1 for c in problem.choices),
                           preload_bytes=tuple(problem.free_bytes))

    plugin("greedy", Greedy)
    with pytest.raises(ConformanceError, match="plan needs"):
        check_schedule("greedy", CASES["tight"])


def test_the_suite_rejects_a_scheduler_that_finds_nothing(plugin):
    class Nothing(Scheduler):
        def schedule(self, problem):
            return None

    plugin("nothing", Nothing)
    with pytest.raises(ConformanceError, match="no schedule"):
        check_schedule("nothing", CASES["roomy"])


def test_the_suite_rejects_an_sram_split_that_hides_preloads(plugin):
    class Hiding(ElkDyn):
        def schedule(self, problem):  # claims nothing is preloaded while the windows still preload
            s = super().schedule(problem)
            return replace(s, preload_bytes=(0.0,) * problem.num_ops)

    plugin("hiding", Hiding)
    with pytest.raises(ConformanceError, match="idle layouts are resident"):
        check_program("hiding", CASES["tight"])


def test_static_sweeps_in_10_kib_steps_from_the_largest_minimal_plan():
    from elk_dse.compiler.compile import scheduling_problem
    from elk_dse.compiler.schedulers.static import Static

    graph, chip = CASES["tight"].build()
    problem = scheduling_problem(graph, chip, SchedulerConfig(name="static"))
    sizes = Static.from_config(SchedulerConfig(name="static")).sizes(problem)
    smallest = max(c.mem[0] for c in problem.choices if c.stream is None)  # streamed operators do not bound it
    assert smallest < problem.sram_bytes - 20 * 1024
    assert sizes[0] == smallest and sizes[-1] == problem.sram_bytes
    assert all(b - a == pytest.approx(10 * 1024) for a, b in zip(sizes[:-2], sizes[1:-1], strict=True))
    assert 0 < sizes[-1] - sizes[-2] <= 10 * 1024
    even = Static.from_config(SchedulerConfig(name="static", static_step_kib=0, static_steps=5)).sizes(problem)
    assert len(even) == 5
