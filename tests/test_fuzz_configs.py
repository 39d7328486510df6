"""Fuzzing the config loaders: any mutation of a valid chip, model or scheduler config either loads (and then
evaluates without an exception, above the roofline bound) or is rejected by an ElkError whose one-line
message names the mutated field. Nothing else may escape: no KeyError, TypeError or ZeroDivisionError."""

from __future__ import annotations

import copy
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests_paths import CONF

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ElkError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, model_config_from_dict
from elk_dse.schema import build

BASE_CHIP = yaml.safe_load((CONF / "chip" / "mesh64.yaml").read_text())
BASE_CHIP["cores"].update(count=16, grid=[4, 4])  # small: each evaluation stays fast
SMALL_MODEL = {"name": "bert_large", "phase": "prefill", "batch": 1, "seq_len": 32, "kv_len": 32, "dtype": "fp16"}

BAD_VALUES = st.one_of(
    st.just(0), st.just(-1), st.just(-0.5), st.just(1e30), st.just(float("nan")), st.just(float("inf")),
    st.just("abc"), st.just(""), st.just(None), st.just([]), st.just([1, 2, 3]), st.just({"x": 1}), st.just(True),
    st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
)


def leaf_paths(d: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += leaf_paths(v, (*prefix, k))
        else:
            out.append((*prefix, k))
    return out


def mutate(d: dict, path: tuple, value) -> dict:
    d = copy.deepcopy(d)
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return d


def check_rejection(err: ElkError, path: tuple) -> None:
    message = str(err)
    assert "\n" not in message
    # The message names the field (its leaf name at least), or the field it contradicts (e.g. grid vs count).
    assert path[-1] in message or any(p in message for p in ("grid", "count", "attach", "cores")), message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_chip_loads_and_evaluates_or_is_rejected_naming_the_field(data):
    path = data.draw(st.sampled_from(leaf_paths(BASE_CHIP)))
    value = data.draw(BAD_VALUES)
    try:
        chip = chip_from_dict(mutate(BASE_CHIP, path, value))
    except ElkError as err:
        check_rejection(err, path)
        return
    try:
        result = evaluate(DesignPoint(chip, build(ModelConfig, SMALL_MODEL, "model")), include_ops=False)
    except ElkError as err:  # a value that only the cost models can judge must still be named
        check_rejection(err, path)
        return
    if result["feasible"]:
        assert math.isfinite(result["latency_s"])
        assert result["latency_s"] >= result["roofline_latency_s"] * (1 - 1e-9)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(SMALL_MODEL)), value=BAD_VALUES)
def test_mutated_model_config_is_rejected_naming_the_field_or_evaluates(field, value):
    try:
        cfg = model_config_from_dict(mutate(SMALL_MODEL, (field,), value))
    except ElkError as err:
        check_rejection(err, (field,))
        return
    chip = chip_from_dict(BASE_CHIP)
    try:
        result = evaluate(DesignPoint(chip, cfg), include_ops=False)
    except ElkError as err:  # e.g. an unknown model name is judged by the model registry
        check_rejection(err, (field,))
        return
    if result["feasible"]:
        assert result["latency_s"] >= result["roofline_latency_s"] * (1 - 1e-9)


SCHEDULER = {"name": "elk_full", "plans": "t10", "max_preload_depth": 0, "order_edit_distance": 4,
             "max_orders": 24, "static_exec_kib": 0, "static_steps": 16, "margin": 0.01}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(SCHEDULER)), value=BAD_VALUES)
def test_mutated_scheduler_config_is_rejected_naming_the_field_or_evaluates(field, value):
    try:
        scheduler = build(SchedulerConfig, mutate(SCHEDULER, (field,), value), "scheduler")
    except ElkError as err:
        check_rejection(err, (field,))
        return
    chip = chip_from_dict(BASE_CHIP)
    try:
        result = evaluate(DesignPoint(chip, build(ModelConfig, SMALL_MODEL, "model"), scheduler),
                          include_ops=False)
    except ElkError as err:
        check_rejection(err, (field,))
        return
    if result["feasible"]:
        assert result["latency_s"] >= result["roofline_latency_s"] * (1 - 1e-9)
