"""parallelism=auto's compute floors (compiler/parallel/auto.py ``compute_floor_s``; issue 17a, sixth session).

The Tightener's first step charges every operator at least its compute floor: the least cycles of one core's
block over every spatial split, from the core model alone (no plan table). It is a floor only because

- the core models it is used for never get cheaper when a core's block is cut into sequential steps (T10's
  rotation steps, the streamed plans' passes): checked here with hypothesis on the cores of every shipped chip
  file whose model is in STEP_MONOTONE_CORES and on systolic variants (double buffering, column tiles, a
  minimum tile time, fast weight loads);
- no plan the compiler can give an operator computes faster: checked against every row of its plan tables
  (with and without rotation) and against the streamed fallback plan, on small chips with each core model;
- it is 0 (no floor) where the argument does not hold (the artifact's plan rules, ipu_mk2_elk).

Its cache is keyed by what it reads: two chips differing in one read field, or two operators differing in a
format, never share an entry. On the benchmark's toy case the first step alone rules dp and tp2d out (they
needed 5 and 1 plan tables before). Whether the bounds stay below compiled latencies end to end:
tests/test_parallel_auto.py (the Tightener's first step runs in every tight bound there).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elk_dse.compiler import t10
from elk_dse.compiler.parallel import ParallelPlan, assemble
from elk_dse.compiler.parallel.auto import (
    _COMPUTE_FLOORS,
    STEP_MONOTONE_CORES,
    Tightener,
    candidates,
    clear_compute_floors,
    compute_floor_s,
)
from elk_dse.compiler.partition import stream_plan
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.core_models import core_model
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Program
from elk_dse.sim import simulate
from elk_dse.testing.parallelism import conformance_cases, small_system

CONF = Path(__file__).resolve().parents[1] / "conf" / "chip"
TINY = (("hidden_size", 256), ("intermediate_size", 512), ("num_hidden_layers", 1), ("vocab_size", 1024))


def _shipped_cores():
    """The distinct core descriptions of the shipped chip files whose core model has a compute floor."""
    out = {}
    for path in sorted(CONF.glob("*.yaml")):
        chip = chip_from_dict(yaml.safe_load(path.read_text()))
        if chip.cores.model in STEP_MONOTONE_CORES:
            out.setdefault(chip.cores, path.stem)
    return list(out)


SYSTOLIC = chip_from_dict(small_system(1)).cores
CORES = _shipped_cores() + [
    replace(SYSTOLIC, weight_double_buffer=True),
    replace(SYSTOLIC, matrix_col_tile=8, matrix_min_tile_cycles=64, weight_load_speedup=4.0),
    replace(SYSTOLIC, weight_double_buffer=True, matrix_min_tile_cycles=64, weight_load_speedup=4.0,
            op_overhead_cycles=0),
]


def _ops() -> list:
    """Distinct operators of a small decoder (decode), an encoder (prefill) and ResNet-50 (convolutions; a few)."""
    graphs = [build_model(ModelConfig("llama3_2_1b", batch=4, kv_len=128, arch=TINY)),
              build_model(ModelConfig("bert_base", phase="prefill", batch=2, seq_len=64,
                                      arch=(*TINY[:3], ("num_attention_heads", 4)))),
              build_model(ModelConfig("resnet50", phase="prefill", batch=1))]
    ops = {}
    for g in graphs:
        for _, _, op in g.instances():
            ops.setdefault(op.signature, op)
    convs = [op for op in ops.values() if op.kind == "conv"]
    return [op for op in ops.values() if op.kind != "conv"] + convs[:2] + convs[-2:]


OPS = _ops()


def test_the_cases_cover_every_core_model_with_a_floor():
    assert {c.model for c in CORES} == set(STEP_MONOTONE_CORES)
    assert any(op.uses_matrix_unit for op in OPS) and any(not op.uses_matrix_unit for op in OPS)
    assert any(op.kind == "conv" for op in OPS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(core=st.sampled_from(CORES), op=st.sampled_from(OPS), data=st.data())
def test_cutting_a_block_into_steps_never_costs_fewer_cycles(core, op, data):
    """cycles(ceil(sub / t)) x prod(t) >= cycles(sub) for any block ``sub`` and steps ``t`` per dim."""
    model = core_model(core, 1.4e9)  # a clock: the Neuron cores' vector-engine floor (cores.vector_engine) needs one
    sub = {d: np.array([data.draw(st.integers(1, min(n, 512)), label=d)]) for d, n in op.dims}
    steps = {d: data.draw(st.integers(1, 8), label=f"t_{d}") for d, _ in op.dims}
    whole = float(model.cycles(op, sub)[0])
    stepped_sub = {d: -(-sub[d] // steps[d]) for d in sub}
    stepped = float(model.cycles(op, stepped_sub)[0]) * float(np.prod(list(steps.values())))
    assert stepped >= whole * (1 - 1e-12), (core.model, op.name, sub, steps, stepped, whole)


def _chip(model: str, cores: int = 16, **core_fields):
    data = small_system(1)
    side = int(cores ** 0.5)
    data["cores"] = {**data["cores"], "model": model, "count": cores, "grid": [side, side], **core_fields}
    return chip_from_dict(data)


@pytest.mark.parametrize("chip", [_chip("systolic"), _chip("systolic", 4, weight_double_buffer=True),
                                  _chip("tensix", 16, matrix_rows=8, matrix_cols=16),
                                  _chip("ipu_mk2", 16)], ids=["systolic", "systolic_db", "tensix", "ipu_mk2"])
def test_no_plan_computes_faster_than_the_floor(chip):
    clear_compute_floors()
    checked = 0
    for op in OPS:
        floor = compute_floor_s(op, chip)
        assert floor > 0.0
        for rotation in (True, False):
            table = t10.build_table(op, chip, rotation)
            fastest = float(np.min(table.compute_cycles)) / chip.clock_hz
            assert floor <= fastest * (1 + 1e-12), (op.name, rotation, floor, fastest)
        streamed = stream_plan(op, chip, 4096.0, pinned_weights=False)  # a small budget: many passes
        if hasattr(streamed, "work"):
            assert floor <= streamed.work.compute_cycles / chip.clock_hz * (1 + 1e-12), op.name
            checked += 1
    assert checked  # some operators streamed


def test_no_floor_where_the_argument_does_not_hold():
    op = next(op for op in OPS if op.uses_matrix_unit)
    assert compute_floor_s(op, _chip("systolic")) > 0.0
    assert compute_floor_s(op, replace(_chip("systolic"), plan_rules="artifact")) == 0.0  # any integer factors
    assert compute_floor_s(op, _chip("ipu_mk2_elk")) == 0.0  # its orientation rule


def test_the_cache_keeps_apart_what_it_reads():
    """Chips differing in one field the floor reads (the clock, a core field, a format's rate, the core count)
    and operators differing only in a format get entries and values of their own."""
    op = next(op for op in OPS if op.uses_matrix_unit and op.name == "gate_proj")
    wide = replace(op, inputs=tuple(replace(t, bytes_per_element=4.0, fmt="fp32") for t in op.inputs))
    base = _chip("systolic")
    variants = [replace(base, clock_ghz=2 * base.clock_ghz),
                replace(base, cores=replace(base.cores, matrix_rows=8)),
                replace(base, cores=replace(base.cores, op_overhead_cycles=base.cores.op_overhead_cycles + 500)),
                replace(base, cores=replace(base.cores, format_speedup=replace(base.cores.format_speedup,
                                                                                fp32=2.0))),
                replace(base, cores=replace(base.cores, count=4, grid=(2, 2)))]
    alone = []
    for chip in variants:
        clear_compute_floors()
        alone.append(compute_floor_s(wide, chip))
    clear_compute_floors()
    first = compute_floor_s(wide, base)
    shared = [compute_floor_s(wide, chip) for chip in variants]
    assert shared == alone  # each as if nothing were cached
    assert all(v != first for v in shared)  # and each field changes the floor here
    assert len(_COMPUTE_FLOORS) == 1 + len(variants)
    assert compute_floor_s(op, base) > 0.0 and len(_COMPUTE_FLOORS) == 2 + len(variants)  # another format


def test_the_first_step_rules_out_dp_and_tp2d_on_the_benchmarks_toy_case():
    """The benchmark's toy case (4 x 16-core chips, 4-layer decoder b8, elk_full): tp is the fastest; the compute
    floors alone lift dp's and tp2d's bounds above its latency, with no plan table built for them."""
    case = next(c for c in conformance_cases() if c.name == "decoder_mesh4")
    work = case.workload()
    system = case.system("auto")
    plans = {name: p for _, name, p in candidates(work, system) if isinstance(p, ParallelPlan)}
    program = assemble(plans["tp"], SchedulerConfig(name="elk_full"))
    assert isinstance(program, Program)
    tp_latency = simulate(program, "analytic").latency_s
    clear_compute_floors()
    t10.clear_tables()
    for name in ("dp", "tp2d"):
        tight = Tightener(plans[name], overlap=True, rotation=True, exec_floor=True)
        cheap = tight.bound_s()
        assert cheap < tp_latency  # the cheap bound alone could not rule it out
        assert tight.step() > tp_latency, name  # step 0: the compute floors
    assert not t10._TABLES  # without a plan table
