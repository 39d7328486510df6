"""Collectives overlapped by compute (issue 17g): ``CollectivePoint.overlap`` -> ``ProgramOp.concurrent`` -> the one
timing rule (cost/timeline.py), in both simulators; tp2d overlaps the FF1 reduce_scatter with the FF3 matmul as
tt-metal's Galaxy demo (``llama_rs_matmul``) does."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_dse.compiler.parallel import PARALLELISMS, Workload, assemble
from elk_dse.compiler.parallel.base import instance_layers, one_chip_view
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.collectives import Collective, collective_cost
from elk_dse.cost.roofline import roofline_bound
from elk_dse.cost.timeline import asap_timeline
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import OpWork, Plan, Program, ProgramOp
from elk_dse.sim import simulate
from elk_dse.testing.collectives import example_system

US = 1e-6


def test_timing_rule_runs_a_concurrent_op_beside_the_next_one():
    # gate 3, its reduce_scatter 5 (concurrent), up 2, up's reduce_scatter 4 (after both), act 1 (after both).
    dur = [3.0, 5.0, 2.0, 4.0, 1.0]
    exec_after = [(), (0,), (0,), (1, 2), (1, 3)]
    _, _, s, e = asap_timeline([0.0] * 5, dur, [()] * 5, exec_after, None, [False, True, False, False, False])
    assert list(s) == [0.0, 3.0, 3.0, 8.0, 12.0] and list(e) == [3.0, 8.0, 5.0, 12.0, 13.0]
    # Not concurrent (up waits for the reduce_scatter it used to overlap): 3 + 5 + 2 + 4 + 1.
    _, _, s, e = asap_timeline([0.0] * 5, dur, [()] * 5, [(), (0,), (1,), (2,), (3,)])
    assert list(e) == [3.0, 8.0, 10.0, 14.0, 15.0]
    # The op after a concurrent one never starts before it: starts keep program order.
    _, _, s, _ = asap_timeline([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [(), (), ()], [(), (), ()], None,
                               [False, True, False])
    assert s[1] >= s[0] and s[2] >= s[1]


def _mlp_program(system, overlap: bool) -> Program:
    """gate (20 us of compute), its reduce_scatter over a column of the 2x2 mesh (overlapped or not), up (20 us),
    up's reduce_scatter, the activation (1 us): the tail of a tp2d MLP, built by hand."""
    view = one_chip_view(system)
    plan = Plan(spatial=(), cores_used=view.num_cores, sram_bytes_per_core=0)
    rs = Collective("reduce_scatter", 1e6, (0, 2), "line", ((1, 3),))

    def op(i, name, kind, cycles=0.0, coll=(), after=(), conc=False):
        return ProgramOp(i, name, kind, "mlp", 0, (), 2 * cycles, 0.0, 0.0, plan,
                         OpWork(compute_cycles=cycles, collectives=coll), (), after, concurrent=conc)

    ops = (op(0, "gate_proj", "matmul", 20_000.0),
           op(1, "reduce_scatter", "collective", coll=(rs,), after=(0,), conc=overlap),
           op(2, "up_proj", "matmul", 20_000.0, after=(0,) if overlap else (1,)),
           op(3, "reduce_scatter", "collective", coll=(rs,), after=(1, 2)),
           op(4, "swiglu", "elementwise", 1_000.0, after=(1, 3)))
    return Program(chip=view, model="mlp", phase="decode", scheduler="sequential", ops=ops, parameter_bytes=0.0,
                   system=system)


def test_hand_computed_step_with_and_without_overlap():
    # 1 GHz cores: 20,000 cycles = 20 us. A 2x2 mesh, 100 GB/s per chip (each of a chip's two links half of it),
    # 1 us per hop, 2 us startup: a line reduce_scatter over 2 chips sends half of 1 MB over one 50 GB/s link in
    # one step: 2 + 10 + 1 = 13 us (cost/collectives.py, the alpha-beta closed form).
    system = example_system("mesh", 4, [2, 2])
    rs_s = collective_cost(Collective("reduce_scatter", 1e6, (0, 2), "line", ((1, 3),)), system).time_s
    assert rs_s == pytest.approx(13 * US)
    # Without overlap: 20 + 13 + 20 + 13 + 1 = 67 us. With: the first reduce_scatter runs beside up's 20 us,
    # up's waits for both (it needs the links): 20 + max(20, 13) + 13 + 1 = 54 us.
    for name in ("analytic", "event"):
        assert simulate(_mlp_program(system, False), name).latency_s == pytest.approx(67 * US, rel=1e-6)
        assert simulate(_mlp_program(system, True), name).latency_s == pytest.approx(54 * US, rel=1e-6)
    # A reduce_scatter longer than up's compute (slow links) is exposed, and up's own reduce_scatter waits for
    # it on the links: 20 + max(20, 53) + 53 + 1.
    slow = example_system("mesh", 4, [2, 2], link_gb_s=20.0)
    long_s = collective_cost(Collective("reduce_scatter", 1e6, (0, 2), "line", ((1, 3),)), slow).time_s
    assert long_s == pytest.approx(53 * US)  # 2 + 500 kB / 10 GB/s + 1
    for name in ("analytic", "event"):
        assert simulate(_mlp_program(slow, True), name).latency_s == pytest.approx((20 + 53 + 53 + 1) * US, rel=1e-6)


def _small_tp2d(overlap: bool, batch: int = 8, link_gb_s: float = 100.0, startup_us: float = 2.0):
    system = example_system("mesh", 8, [2, 4], link_gb_s=link_gb_s, startup_us=startup_us)
    plan = PARALLELISMS["tp2d"]().plan(Workload(build_model(ModelConfig("llama3_2_1b", batch=batch, kv_len=128))),
                                       system, 8)
    if not overlap:
        plan = replace(plan, stages=tuple(replace(s, collectives=tuple(replace(p, overlap=False)
                                                                        for p in s.collectives))
                                          for s in plan.stages))
    program = assemble(plan, SchedulerConfig(name="sequential"))
    assert isinstance(program, Program)
    return plan, program


def test_tp2d_overlaps_the_ff1_reduce_scatter_with_the_ff3_matmul_only():
    plan, program = _small_tp2d(True)
    stage = plan.stages[0]
    names = [op.name for _, _, op in instance_layers(stage.graph)]
    overlapped = [p for p in stage.collectives if p.overlap]
    # One per decoder layer (16 in Llama-3.2-1B), each the reduce_scatter after gate_proj.
    assert len(overlapped) == 16
    assert all(names[p.after] == "gate_proj" and p.collective.kind == "reduce_scatter" for p in overlapped)
    ops = program.ops
    conc = [op for op in ops if op.concurrent]
    assert len(conc) == 16
    for c in conc:
        gate, up = ops[c.index - 1], ops[c.index + 1]
        assert gate.name == "gate_proj" and up.name == "up_proj"
        assert c.exec_after == (gate.index,) and c.index not in up.exec_after  # up runs beside it
        after_up = ops[up.index + 1]  # up's reduce_scatter: waits for the links
        assert after_up.kind == "collective" and c.index in after_up.exec_after
        swiglu = ops[up.index + 2]
        assert swiglu.name == "swiglu" and c.index in swiglu.exec_after  # it reads the reduced gate output


def test_small_tp2d_overlap_saves_what_it_hides_and_the_simulators_agree():
    _, serial = _small_tp2d(False)
    _, fused = _small_tp2d(True)
    a_serial, a_fused = simulate(serial, "analytic"), simulate(fused, "analytic")
    e_fused = simulate(fused, "event").latency_s
    assert a_fused.latency_s < a_serial.latency_s
    assert e_fused == pytest.approx(a_fused.latency_s, rel=0.05)
    # What it can hide per layer is the shorter of the two it overlaps: the gate reduce_scatter and up's run.
    t = a_serial.timings
    hidden = sum(min(t[c.index].end_s - t[c.index].start_s, t[c.index + 1].end_s - t[c.index + 1].start_s)
                 for c in fused.ops if c.concurrent)
    saved = a_serial.latency_s - a_fused.latency_s
    assert 0 < saved <= hidden * (1 + 1e-9)


@settings(max_examples=8, deadline=None)
@given(batch=st.sampled_from([1, 8, 32]), link_gb_s=st.floats(1.0, 400.0), startup_us=st.floats(0.0, 20.0))
def test_overlap_never_beats_compute_collectives_or_the_roofline(batch, link_gb_s, startup_us):
    _, serial = _small_tp2d(False, batch, link_gb_s, startup_us)
    _, fused = _small_tp2d(True, batch, link_gb_s, startup_us)
    lat = simulate(fused, "analytic")
    system = fused.whole_system
    coll_s = sum(collective_cost(c, system).time_s for op in fused.ops for c in op.work.collectives)
    core_s = sum(t.end_s - t.start_s for op, t in zip(fused.ops, lat.timings, strict=True) if op.kind != "collective")
    assert lat.latency_s >= max(coll_s, core_s) * (1 - 1e-9)  # the links and the cores each run one thing at a time
    assert lat.latency_s <= simulate(serial, "analytic").latency_s * (1 + 1e-9)
    graph = fused.meta["parallel_graph"]
    roof = roofline_bound(fused.chip, graph.flops, graph.must_weight_bytes, graph.kv_cache_read_bytes,
                          graph.kv_cache_write_bytes)
    assert lat.latency_s >= roof.latency_s * (1 - 1e-9)
