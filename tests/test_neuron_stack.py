"""The neuron stack's structure (issue 17n): a launch cost per program execution instead of a per-operator
dispatch, a fitted per-collective startup, and the generalised per-stack fit that fits them."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from conftest import small_chip_dict

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import apply_stack, load_stack, stack_from_dict
from elk_dse.models import ModelConfig
from elk_dse.sim.base import SimConfig
from elk_dse.validation import fit, points
from elk_dse.validation import suite as suite_mod


def test_neuron_profile_structure_loads_with_its_sources():
    s = load_stack("neuron")
    # A whole-graph compiler: no per-operator dispatch; the host launch once per step (published, 437 us);
    # the per-collective startup is what the calibration fits.
    assert s.dispatch_us_per_op == 0.0 and s.launch_us_per_step == 437.0
    assert "async_execution.md" in s.sources.launch_us_per_step and "437" in s.sources.launch_us_per_step
    assert s.calibration.fit == ("collective_startup_us",)
    assert s.sources.collective_startup_us.startswith("fitted")
    assert s.collective_startup_us > 0.0


def test_a_launch_cost_needs_a_source_and_a_sane_value():
    data = {"name": "x", "launch_us_per_step": 10.0,
            "sources": {k: "assumption: 0" for k in ("dispatch_us_per_op", "sync_us_per_layer",
                                                     "chip_sync_us_per_layer", "collective_startup_us",
                                                     "dram_efficiency")}}
    with pytest.raises(ConfigError, match="launch_us_per_step"):
        stack_from_dict(data)
    with pytest.raises(ConfigError, match="launch_us_per_step"):
        stack_from_dict({**data, "launch_us_per_step": -1.0,
                         "sources": {**data["sources"], "launch_us_per_step": "assumption: -1"}})
    ok = stack_from_dict({**data, "sources": {**data["sources"], "launch_us_per_step": "assumption: 10"}})
    assert ok.launch_us_per_step == 10.0
    with pytest.raises(ConfigError, match="fit"):  # the fit may name only what the suite can fit
        stack_from_dict({**data, "calibration": {"points": ["a"], "fit": ["sync_us_per_layer"]}})


@pytest.mark.parametrize("sim", ["analytic", "event"])
def test_launch_adds_once_per_step_in_both_simulators(sim):
    chip = chip_from_dict(small_chip_dict())
    model = ModelConfig("llama3_2_1b", batch=1, kv_len=128, arch={"num_hidden_layers": 2})
    none = load_stack("none")
    with_launch = none.with_values(launch_us_per_step=250.0)
    assert apply_stack(chip, with_launch).overheads.launch_us_per_step == 250.0
    results = [evaluate(DesignPoint(chip, model, SchedulerConfig(), SimConfig(name=sim), stack=s),
                        include_ops=False) for s in (none, with_launch)]
    assert results[1]["latency_s"] - results[0]["latency_s"] == pytest.approx(250e-6, rel=1e-9)
    # The device idles meanwhile: the breakdown still sums to the latency (the launch counts as idle).
    parts = results[1]["breakdown"]["total"]
    assert sum(parts.values()) == pytest.approx(results[1]["latency_s"], rel=1e-9)
    assert parts["idle_s"] - results[0]["breakdown"]["total"]["idle_s"] == pytest.approx(250e-6, rel=1e-6)


def test_fit_recovers_a_collective_startup_and_a_launch_together(monkeypatch):
    # A stand-in with the real prediction's shape: fixed device time, a launch per step, a startup per
    # collective (the decoder has 81 collectives, the CNN none). Measured values made from known costs.
    cal = suite_mod.calibration_sets(points())["neuron"]
    collectives = {p.id: (81 if p.chip != "inferentia2" else 0) for p in cal}
    device_ms = {p.id: (3.0 if collectives[p.id] else 0.3) for p in cal}
    seen: set[str] = set()

    def fake(point, stack=None):
        seen.add(point.id)
        return (device_ms[point.id] + 1e-3 * (stack.launch_us_per_step
                                              + collectives[point.id] * stack.collective_startup_us))

    truth = {"launch_us_per_step": 420.0, "collective_startup_us": 55.0}
    cal = [replace(p, measured=device_ms[p.id] + 1e-3 * (truth["launch_us_per_step"]
                                                         + collectives[p.id] * truth["collective_startup_us"]))
           for p in cal]
    monkeypatch.setattr(suite_mod, "predict", fake)
    profile = load_stack("neuron")
    profile = replace(profile, calibration=replace(profile.calibration,
                                                   fit=("collective_startup_us", "launch_us_per_step")))
    result = fit(cal, profile)
    assert seen == {p.id for p in cal}  # only the stack's calibration points
    got = dict(result.times_us)
    assert got["launch_us_per_step"] == pytest.approx(420.0, abs=0.5)
    assert got["collective_startup_us"] == pytest.approx(55.0, abs=0.05)
    assert all(abs(e) < 1e-3 for e in result.errors)
    fitted = result.profile()
    assert (fitted.launch_us_per_step, fitted.collective_startup_us) == (got["launch_us_per_step"],
                                                                        got["collective_startup_us"])
    assert math.isclose(fitted.dispatch_us_per_op, 0.0)
