"""Weights larger than SRAM stream while computing (issue 17 item 4b): a multi-pass plan double-buffers its
passes, so pass i+1's HBM transfer overlaps pass i's compute, through the one time rule both simulators use
(cost/op_time.ExecTime.body_s, OpWork.stream_passes), and never beats the roofline."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.op_time import exec_time, load_time_s
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.ir.graph import Graph, Layer, Operator, Role, Tensor
from elk_dse.program import OpWork


def one_core(sram_kib: float = 2048, hbm_gb_s: float = 16.0, rows: int = 32):
    """One 32x32 weight-stationary core with 2 MiB of SRAM, as ZigZag's tpu_like (docs/area_energy.md)."""
    return chip_from_dict({
        "name": "one_core", "clock_ghz": 1.0,
        "cores": {"count": 1, "grid": [1], "sram_kib": sram_kib, "model": "systolic", "matrix_rows": rows,
                  "matrix_cols": rows, "vector_lanes": 32},
        "interconnect": {"topology": "ring", "link_bytes_per_cycle": 64},
        "hbm": {"bandwidth_gb_s": hbm_gb_s, "capacity_gib": 8, "channels": 1, "attach": "all"}})


def matmul_graph(m: int, k: int, n: int) -> Graph:
    op = Operator("conv", "matmul", (("m", m), ("k", k), ("n", n)),
                  (Tensor("x", ("m", "k"), Role.ACTIVATION, 1.0), Tensor("w", ("k", "n"), Role.WEIGHT, 1.0)),
                  Tensor("y", ("m", "n"), Role.ACTIVATION, 1.0))
    return Graph("g", "prefill", (Layer("l", (op,), repeat=1),), parameter_bytes=op.bytes_by_role(Role.WEIGHT),
                 batch=1, seq_len=m)


def test_resnet18_layer4_conv_streams_its_weights_while_computing():
    # ResNet-18's layer-4 3x3 convolution as its im2col matmul: 7x7 = 49 pixels, k = 512 x 9, n = 512, int8.
    # Its 2.36 MB of weights do not fit the 2 MiB core: the plan runs in passes over n.
    chip, graph = one_core(), matmul_graph(49, 4608, 512)
    program = compile_graph(graph, chip, SchedulerConfig(name="sequential"))
    w = program.ops[0].work
    p = w.stream_passes
    assert p > 1 and program.ops[0].plan.num_passes == p
    assert 4608 * 512 <= w.hbm_read_bytes  # every weight byte crosses the HBM interface
    load_all = float(load_time_s(chip, OpWork(**{**w.__dict__, "stream_passes": 1})))
    ex = exec_time(chip, w)
    compute, stream = float(ex.compute_s), float(ex.stream_s)
    # The first pass loads, then passes 2..P stream beside the compute of passes 1..P-1, then the last computes.
    assert float(load_time_s(chip, w)) == pytest.approx(load_all / p)
    assert stream == pytest.approx(load_all * (p - 1) / p)
    sync = float(ex.sync_s)
    expected = load_all / p + max(compute * (p - 1) / p, stream) + compute / p + sync
    for sim in ("analytic", "event"):
        r = evaluate_graph(graph, chip, SchedulerConfig(name="sequential"), sim=sim, include_ops=False)
        assert r["latency_s"] == pytest.approx(expected, rel=1e-9), sim
        # Faster than loading everything first, never faster than the roofline or than either phase alone.
        assert r["roofline_latency_s"] <= max(load_all, compute) <= r["latency_s"] < load_all + compute
        parts = r["breakdown"]["total"]
        assert parts["compute_s"] == pytest.approx(compute) and parts["hbm_exposed_s"] > 0


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 256), k=st.integers(64, 4096), n=st.integers(64, 2048),
       sram_kib=st.sampled_from([64, 256, 1024]), hbm=st.sampled_from([4.0, 64.0, 1024.0]))
def test_streamed_plans_never_beat_the_roofline_and_both_simulators_agree(m, k, n, sram_kib, hbm):
    chip, graph = one_core(sram_kib, hbm), matmul_graph(m, k, n)
    a = evaluate_graph(graph, chip, SchedulerConfig(name="sequential"), include_ops=False)
    if not a["feasible"]:
        return
    e = evaluate_graph(graph, chip, SchedulerConfig(name="sequential"), sim="event", include_ops=False)
    assert a["latency_s"] >= a["roofline_latency_s"] * (1 - 1e-12)
    assert e["latency_s"] == pytest.approx(a["latency_s"], rel=0.01)
