"""Physics first: over random chips and random workloads, no evaluated latency beats the roofline bound."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.evaluate import DesignPoint, evaluate, evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.ir.graph import Graph, Layer, Operator, Role, Tensor
from elk_dse.models import ModelConfig

TOPOLOGIES = ["mesh", "torus", "ring", "all_to_all"]


@st.composite
def chips(draw):
    rows, cols = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    count = rows * cols
    has_hbm = draw(st.booleans())
    attach = draw(st.sampled_from(["all", "edge", "list"]))
    d = {
        "name": "random",
        "clock_ghz": draw(st.floats(0.3, 3.0)),
        "cores": {"count": count, "grid": [rows, cols], "sram_kib": draw(st.integers(16, 8192)),
                  "model": draw(st.sampled_from(["systolic", "ipu_mk2"])),
                  "matrix_rows": draw(st.sampled_from([1, 4, 16, 64])), "matrix_cols": draw(st.sampled_from([1, 4, 16, 64])),
                  "vector_lanes": draw(st.sampled_from([1, 16, 256])), "op_overhead_cycles": draw(st.integers(0, 500)),
                  "overlap_compute_comm": draw(st.booleans()), "weight_double_buffer": draw(st.booleans())},
        "interconnect": {"topology": draw(st.sampled_from(TOPOLOGIES)),
                         "link_bytes_per_cycle": draw(st.floats(0.5, 256)),
                         "hop_latency_cycles": draw(st.floats(0, 10)), "barrier_cycles": draw(st.floats(0, 2000))},
        "chips": {"count": draw(st.integers(1, 4)), "link_gb_s": draw(st.floats(1, 1000)),
                  "topology": draw(st.sampled_from(["ring", "all_to_all", "mesh", "torus"]))},
    }
    if d["chips"]["topology"] in ("mesh", "torus"):  # a line or a 2x2 of chips
        d["chips"]["grid"] = [2, 2] if d["chips"]["count"] == 4 else [d["chips"]["count"]]
    if has_hbm:
        d["hbm"] = {"bandwidth_gb_s": draw(st.floats(10, 20000)), "capacity_gib": draw(st.floats(1, 512)),
                    "channels": draw(st.integers(1, 32)),
                    "attach": attach if attach != "list" else sorted({draw(st.integers(0, count - 1)) for _ in range(3)})}
    return chip_from_dict(d)


@st.composite
def graphs(draw):
    """Random chains of matmuls and element-wise ops, some weights, some KV-cache reads and appends."""
    tokens = draw(st.integers(1, 512))
    width = draw(st.integers(1, 1024))
    ops = []
    cur = "x"
    for i in range(draw(st.integers(1, 5))):
        out = draw(st.integers(1, 1024))
        kind = draw(st.sampled_from(["matmul", "elementwise", "kv"]))
        if kind == "matmul":
            ops.append(Operator(f"mm{i}", "matmul", (("t", tokens), ("h", width), ("o", out)),
                                (Tensor(cur, ("t", "h"), Role.ACTIVATION), Tensor(f"w{i}", ("h", "o"), Role.WEIGHT)),
                                Tensor(f"y{i}", ("t", "o"), Role.ACTIVATION)))
            width = out
        elif kind == "kv":
            ops.append(Operator(f"kv{i}", "matmul", (("t", tokens), ("h", width), ("l", out)),
                                (Tensor(cur, ("t", "h"), Role.ACTIVATION), Tensor(f"k{i}", ("l", "h"), Role.KV_CACHE)),
                                Tensor(f"y{i}", ("t", "l"), Role.ACTIVATION)))
            width = out
        else:
            ops.append(Operator(f"ew{i}", "elementwise", (("t", tokens), ("h", width)),
                                (Tensor(cur, ("t", "h"), Role.ACTIVATION),),
                                Tensor(f"y{i}", ("t", "h"), Role.ACTIVATION), flops_per_point=draw(st.integers(1, 8))))
        cur = f"y{i}"
    repeat = draw(st.integers(1, 3))
    layer = Layer("l", tuple(ops), repeat=repeat)
    params = sum(op.bytes_by_role(Role.WEIGHT) for op in ops) * repeat
    return Graph("random", "prefill", (layer,), parameter_bytes=params, batch=1, seq_len=tokens)


def _check(result: dict) -> None:
    if not result["feasible"]:
        assert result["infeasible_reason"] in {"sram_capacity", "hbm_capacity", "no_plan"}
        return
    lat = result["latency_s"]
    assert math.isfinite(lat) and lat > 0
    assert lat >= result["roofline_latency_s"] * (1 - 1e-9)
    assert lat >= result["flops"] / result["peak_flops_per_s"] * (1 - 1e-9)
    if result["hbm_bytes_per_s"]:
        assert lat >= result["hbm_bytes"] / result["hbm_bytes_per_s"] * (1 - 1e-9)
        assert result["hbm_bytes"] >= result["must_hbm_bytes"] * (1 - 1e-9)
    else:
        assert result["hbm_bytes"] == 0
    for op in result["ops"]:
        assert op["end_s"] >= op["start_s"] >= op["load_end_s"] >= op["load_start_s"] >= 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chip=chips(), graph=graphs())
def test_random_graphs_never_beat_the_roofline(chip, graph):
    result = evaluate_graph(graph, chip)
    assert result["flops"] == graph.flops
    _check(result)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chip=chips(), model=st.sampled_from(["llama2_7b", "llama2_70b", "gemma2_27b", "bert_large", "resnet50"]),
       batch=st.integers(1, 16), length=st.integers(16, 1024),
       scheduler=st.sampled_from(["sequential", "basic", "static", "elk_dyn", "elk_full", "ideal"]),
       plans=st.sampled_from(["t10", "replicate"]))
def test_zoo_models_never_beat_the_roofline(chip, model, batch, length, scheduler, plans):
    phase = "prefill" if model in ("bert_large", "resnet50") else "decode"
    cfg = ModelConfig(model, phase=phase, batch=batch, kv_len=length, seq_len=min(length, 512))
    _check(evaluate(DesignPoint(chip, cfg, SchedulerConfig(name=scheduler, plans=plans, max_orders=4))))
