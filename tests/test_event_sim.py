"""Event-driven simulator: a conformance suite shared with the analytic simulator, modes, hand-checkable cases."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import small_chip_dict

from elk_dse.cli import main
from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.roofline import roofline_bound
from elk_dse.hw.chip import chip_from_dict
from elk_dse.ir.graph import Graph, Layer, Operator, Role, Tensor
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import OpWork, Plan, Program, ProgramOp
from elk_dse.sim import SIMULATORS, simulate
from elk_dse.sim.event import EventSimulator

CONF = __import__("pathlib").Path(__file__).resolve().parents[1] / "conf" / "chip"


def shipped(name):
    return chip_from_dict(yaml.safe_load((CONF / f"{name}.yaml").read_text()))


def cases():
    mesh = chip_from_dict(small_chip_dict(hbm={"capacity_gib": 64}))
    torus = chip_from_dict(small_chip_dict(interconnect={"topology": "torus"}, hbm={"capacity_gib": 64}))
    a2a = chip_from_dict(small_chip_dict(interconnect={"topology": "all_to_all"}, hbm={"capacity_gib": 64,
                                                                                         "attach": "all"}))
    no_hbm = chip_from_dict({**small_chip_dict(cores={"count": 64, "grid": [8, 8], "sram_kib": 16384}), "hbm": None})
    decode = ModelConfig("llama2_7b", batch=2, kv_len=256)
    return [
        ("mesh-decode-elk", mesh, decode, "elk_full"),
        ("mesh-decode-seq", mesh, decode, "sequential"),
        ("torus-prefill", torus, ModelConfig("bert_large", phase="prefill", batch=1, seq_len=128), "elk_dyn"),
        ("a2a-decode", a2a, decode, "basic"),
        ("no-hbm-vit", no_hbm, ModelConfig("vit_large", phase="prefill", batch=1), "sequential"),
    ]


@pytest.fixture(scope="module", params=cases(), ids=lambda c: c[0])
def compiled(request):
    _, chip, model, scheduler = request.param
    graph = build_model(model)
    program = compile_graph(graph, chip, SchedulerConfig(name=scheduler))
    assert isinstance(program, Program)
    return graph, program


@pytest.mark.parametrize("sim", sorted(k for k, v in SIMULATORS.items() if v.physical))
def test_conformance(compiled, sim):
    graph, program = compiled
    chip = program.chip
    result = simulate(program, sim)
    bound = roofline_bound(chip, graph.flops, graph.weight_bytes, graph.kv_cache_read_bytes,
                           graph.kv_cache_write_bytes)
    assert result.latency_s >= bound.latency_s * (1 - 1e-9)
    assert program.flops == pytest.approx(graph.flops)  # FLOPs conserved from workload to Program
    for name, busy in result.busy_s.items():
        assert busy <= result.latency_s * (1 + 1e-9), name
    for t in result.timings:
        assert t.end_s >= t.start_s >= t.load_end_s - 1e-12 >= t.load_start_s - 1e-12


def test_event_conserves_bytes_and_compute(compiled):
    _, program = compiled
    sim = EventSimulator()
    sim.run(program)
    assert sim.stats["hbm_bytes"] == pytest.approx(program.hbm_bytes, rel=1e-9, abs=1.0)
    expected = sum(op.work.compute_cycles / program.chip.clock_hz * op.plan.cores_used for op in program.ops)
    assert sim.stats["compute_core_s"] == pytest.approx(expected, rel=1e-9)


def test_event_and_analytic_agree_on_small_cases(compiled):
    _, program = compiled
    a, e = simulate(program, "analytic").latency_s, simulate(program, "event").latency_s
    assert abs(e / a - 1) < 0.10


def test_exact_and_aggregated_modes_match():
    for chip, model in ((shipped("mesh64"), ModelConfig("llama2_7b", batch=1, kv_len=512)),
                        (shipped("torus256"), ModelConfig("resnet50", phase="prefill", batch=2))):
        program = compile_graph(build_model(model), chip, SchedulerConfig(name="elk_full"))
        exact = EventSimulator(mode="exact").run(program).latency_s
        agg = EventSimulator(mode="aggregated").run(program).latency_s
        assert abs(agg / exact - 1) <= 0.02


def one_op_program(chip, op: Operator) -> Program:
    graph = Graph("one", "prefill", (Layer("l", (op,)),), parameter_bytes=op.bytes_by_role(Role.WEIGHT))
    program = compile_graph(graph, chip, SchedulerConfig(name="sequential"))
    assert isinstance(program, Program)
    return program


def test_compute_bound_gemm_runs_near_peak():
    chip = chip_from_dict(small_chip_dict(cores={"sram_kib": 16384, "op_overhead_cycles": 0},
                                          hbm={"bandwidth_gb_s": 100000, "capacity_gib": 64, "attach": "all"}))
    n = 2048
    op = Operator("gemm", "matmul", (("m", n), ("n", n), ("k", n)),
                  (Tensor("a", ("m", "k"), Role.ACTIVATION), Tensor("b", ("k", "n"), Role.WEIGHT)),
                  Tensor("c", ("m", "n"), Role.ACTIVATION))
    program = one_op_program(chip, op)
    ideal = op.flops / chip.peak_flops_per_s
    for sim in ("analytic", "event"):
        latency = simulate(program, sim).latency_s
        assert ideal <= latency <= 1.25 * ideal, (sim, latency / ideal)


def test_hbm_bound_gemv_runs_at_hbm_bandwidth():
    # Matrix units big enough that the single-row GEMV's compute (m = 1 wastes most of a systolic array)
    # stays small next to streaming the 32 MiB weight.
    chip = chip_from_dict(small_chip_dict(clock_ghz=2.0, cores={"matrix_rows": 64, "matrix_cols": 64},
                                          interconnect={"topology": "all_to_all", "link_bytes_per_cycle": 256},
                                          hbm={"bandwidth_gb_s": 50, "capacity_gib": 64, "attach": "all"}))
    op = Operator("gemv", "matmul", (("m", 1), ("n", 4096), ("k", 4096)),
                  (Tensor("x", ("m", "k"), Role.ACTIVATION), Tensor("w", ("k", "n"), Role.WEIGHT)),
                  Tensor("y", ("m", "n"), Role.ACTIVATION))
    program = one_op_program(chip, op)
    ideal = op.bytes_by_role(Role.WEIGHT) / chip.hbm_bytes_per_s
    for sim in ("analytic", "event"):
        latency = simulate(program, sim).latency_s
        assert ideal <= latency <= 1.10 * ideal, (sim, latency / ideal)


def test_mesh_ring_transfer_is_bound_by_its_busiest_link():
    """8 cores in a line: a ring shift sends b bytes from every core to the next; the closing transfer 7 -> 0
    runs back along the line, so every link carries exactly b bytes in each direction: time = b / link bw."""
    chip = chip_from_dict(small_chip_dict(cores={"count": 8, "grid": [1, 8]},
                                          interconnect={"hop_latency_cycles": 0, "barrier_cycles": 0}))
    b = 64e6
    work = OpWork(compute_cycles=0.0, steps=1, shift_bytes=8 * b, shift_core_bytes=b, shift_link_bytes=8 * b * 1.75,
                  rings=(("shift", 1, 8, b),))
    op = ProgramOp(0, "ring", "matmul", "l", 0, (("m", 8),), 0.0, 0.0, 0.0,
                   Plan((("m", 8),), 8, 1), work)
    program = Program(chip, "ring", "prefill", "sequential", (op,), 0.0, load_order=(0,))
    expected = b / chip.link_bytes_per_s
    assert EventSimulator().run(program).latency_s == pytest.approx(expected, rel=1e-6)
    # Three rings of 8 on an 8x... a line of 24 cores: rings overlap on no link, so still b / bw.
    chip24 = chip_from_dict(small_chip_dict(cores={"count": 24, "grid": [1, 24]},
                                            interconnect={"hop_latency_cycles": 0, "barrier_cycles": 0}))
    op24 = ProgramOp(0, "ring", "matmul", "l", 0, (("m", 24),), 0.0, 0.0, 0.0, Plan((("m", 24),), 24, 1), work)
    p24 = Program(chip24, "ring", "prefill", "sequential", (op24,), 0.0, load_order=(0,))
    assert EventSimulator().run(p24).latency_s == pytest.approx(expected, rel=1e-6)
    # Stride 3: three interleaved rings share links: each link carries 3 transfers' worth -> 3 b / bw.
    work3 = OpWork(compute_cycles=0.0, steps=1, shift_bytes=24 * b, shift_core_bytes=b, shift_link_bytes=0.0,
                   rings=(("shift", 3, 8, b),))
    op3 = ProgramOp(0, "ring", "matmul", "l", 0, (("m", 24),), 0.0, 0.0, 0.0, Plan((("m", 24),), 24, 1), work3)
    p3 = Program(chip24, "ring", "prefill", "sequential", (op3,), 0.0, load_order=(0,))
    assert EventSimulator().run(p3).latency_s == pytest.approx(3 * expected, rel=1e-6)


def test_trace_opens_as_chrome_trace_json(tmp_path, capsys):
    path = tmp_path / "trace.json"
    assert main(["evaluate", "+chip=mesh64", "model.kv_len=256", "sim=event", f"trace={path}"]) == 0
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    phases = {e["ph"] for e in events}
    assert {"X", "C", "M"} <= phases
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e.get("name") == "thread_name"}
    assert {"ops", "hbm load", "compute", "noc"} <= names
    assert all(e["dur"] >= 0 for e in events if e["ph"] == "X")
    assert "event" in capsys.readouterr().out


def test_trace_needs_the_event_simulator(capsys, tmp_path):
    code = main(["evaluate", "+chip=mesh64", f"trace={tmp_path / 't.json'}"])
    assert code == 2 and "sim=event" in capsys.readouterr().err
