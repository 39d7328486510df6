"""tt_transformers' collectives as its code runs them (issue 17t; stack field ``ccl_scheme``, docs/parallelism.md
"tt_transformers' collectives"): hand counts of the collectives and their bytes per decode step for one n300 batch-32
row and one Galaxy ("TG") row, the roofline never beaten, and the event and analytic simulators in agreement."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
import yaml
from tests_paths import CONF

from elk_dse.compiler.parallel import PARALLELISMS, DeviceOp, Workload, assemble
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.collectives import Collective, collective_cost
from elk_dse.errors import ConfigError
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import apply_stack, load_stack, stack_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Program
from elk_dse.sim import simulate


def _system(name: str, parallelism: str, stack: str = "tt_transformers"):
    data = yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())
    data["chips"]["parallelism"] = parallelism
    return apply_stack(chip_from_dict(data), load_stack(stack))


def _plan(system, model: str, batch: int, parallelism: str, degree: int):
    graph = build_model(ModelConfig(model, batch=batch, kv_len=128))
    return graph, PARALLELISMS[parallelism]().plan(Workload(graph), system, degree)


def test_n300_llama32_1b_b32_collectives_equal_the_hand_count():
    """n300 (1 x 2 mesh), Llama-3.2-1B, batch 32 (the seen point n300_llama3.2-1b_b32_tp2). tt_transformers keeps
    the residual stream fractured (hidden 2048 / 2 per chip): per layer (16) o_proj and down_proj each end in a
    reduce_scatter of the chip's partial t x 2048 bf16 output (32 x 2048 x 2 = 131,072 B; tt_all_reduce on a
    1 x n mesh), and the next norm all_gathers the residual back (131,072 B per chip at the end); one more
    all_gather before layer 0's norm (the embedding's output enters fractured). 32 reduce_scatters + 33
    all_gathers; on 2 chips each moves half of its 131,072 B from each chip to the other: 65 x 131,072 = 8,519,680
    B on the links per step. Issue 17t (seventh session): at decode the LM head's vocabulary shards (64,128 columns
    per chip) are all_gathered on the device before the host reads them (model.py ttnn_decode_forward,
    all_gather_async dim 3 when num_devices > 1): one all_gather of 32 x 128,256 x 2 = 8,208,384 B, each chip
    sending its half to the other, 8,208,384 B on the links; 16,728,064 B per step in all."""
    n300 = _system("wormhole_n300", "tp")
    assert n300.overheads.ccl_scheme == "tt_transformers"
    graph, plan = _plan(n300, "llama3_2_1b", 32, "tp", 2)
    got = Counter((c.kind, c.bytes_per_chip) for c in plan.collectives)
    assert got == {("reduce_scatter", 131_072): 32, ("all_gather", 131_072): 33, ("all_gather", 8_208_384): 1}
    link = sum(collective_cost(c, n300).link_bytes for c in plan.collectives)
    assert link == 65 * 131_072 + 8_208_384 == 16_728_064
    out = evaluate_graph(graph, n300, SchedulerConfig(name="sequential"), include_ops=False)
    assert out["feasible"] and out["parallelism"]["collectives_per_step"] == 66
    assert out["chip_link_bytes"] == pytest.approx(16_728_064, rel=1e-12)
    assert out["latency_s"] >= out["roofline_latency_s"]
    # Without the stack's scheme, the Megatron plan: 32 all-reduces + the logits' all_gather (33 collectives).
    data = yaml.safe_load((CONF / "chip" / "wormhole_n300.yaml").read_text())
    data["chips"]["parallelism"] = "tp"
    _, megatron = _plan(chip_from_dict(data), "llama3_2_1b", 32, "tp", 2)
    assert Counter(c.kind for c in megatron.collectives) == {"all_reduce": 32, "all_gather": 1}


def test_galaxy_tt_llama32_1b_b1_collectives_equal_the_hand_count():
    """Galaxy (4 x 8 mesh: A = the 8 chips of a row, B = the 4 of a column), Llama-3.2-1B, batch 1 (the seen point
    galaxy_tt_llama3.2-1b_b1): hidden 2048 < 8192, so tt_transformers' all-reduces are all_gathers of whole
    partial buffers + a local sum (line_gather), the MLP's gate and up outputs are all-reduced over B (not
    scattered), and the CCL buffers are bfloat8_b (1.0625 B per element). t = 1 token; 32 heads / 8 KV heads of 64,
    FFN 8192, vocab 128,256. Per layer (16):
    - 2 norm-stats all_gathers over B (each chip's t x 32 bf16 stats: 4 x 64 = 256 B gathered), + the final norm;
    - QKV partial sums all-reduced over B: (4 + 1 + 1) heads x 64 x 1.0625 = 408 B;
    - the attention context all_gathered over B (bf16): 4 chips x 1 user x 4 heads x 64 x 2 = 2,048 B;
    - o_proj and down_proj all-reduced over A: 2048 / 4 x 1.0625 = 544 B each;
    - gate and up all-reduced over B: 8192 / 8 x 2 = 2,048 B each (bfloat16: mlp.py's two calls pass no ``dtype``,
      so ccl.py casts the matmuls' bfloat8_b outputs to the default bfloat16 before gathering; issue 17c);
    and the LM head (vocabulary / 8 = 16,032 columns) reduce_scatter + all_gather over B: 17,034 B.
    Link bytes, every row (column) at once: a line of n chips has 2(n-1) directed links; an all_gather /
    reduce_scatter of B runs n-1 steps of B/n on each, a line_gather all-reduce n-1 steps of B on each."""
    galaxy = _system("wormhole_galaxy", "tp2d")
    _, plan = _plan(galaxy, "llama3_2_1b", 1, "tp2d", 32)
    got = Counter((c.kind, c.algorithm, c.bytes_per_chip, len(c.group), 1 + len(c.replicas))
                  for c in plan.collectives)
    assert got == {
        ("all_gather", "auto", 256, 4, 8): 33,
        ("all_reduce", "line_gather", 408, 4, 8): 16,
        ("all_gather", "auto", 2048, 4, 8): 16,
        ("all_reduce", "line_gather", 544, 8, 4): 32,
        ("all_reduce", "line_gather", 2048, 4, 8): 32,
        ("reduce_scatter", "auto", 17034, 4, 8): 1,
        ("all_gather", "auto", 17034, 4, 8): 1,
    }
    col, row = 8 * 3 * 6, 4 * 7 * 14  # groups x steps x directed links
    hand = (33 * col * 256 / 4 + 16 * col * 2048 / 4 + 16 * col * 408 + 32 * col * 2048 + 32 * row * 544
            + 2 * col * 17034 / 4)
    assert hand == 19_911_376
    link = sum(collective_cost(c, galaxy).link_bytes for c in plan.collectives)
    assert link == pytest.approx(hand, rel=1e-12)
    # The same point under the Galaxy demo's own stack keeps the demo's nine collectives per layer.
    demo = _system("wormhole_galaxy", "tp2d", "tt_galaxy")
    _, demo_plan = _plan(demo, "llama3_2_1b", 1, "tp2d", 32)
    assert not any(c.algorithm == "line_gather" for c in demo_plan.collectives)
    assert len(demo_plan.collectives) == 16 * 9 + 2


@pytest.mark.parametrize("name,model,batch,parallelism,degree", [
    ("wormhole_n300", "llama3_2_1b", 32, "tp", 2),
    ("wormhole_t3k", "llama3_2_1b", 32, "tp", 8),
    ("wormhole_galaxy", "llama3_2_1b", 1, "tp2d", 32),
    ("wormhole_galaxy", "llama3_1_70b", 1, "tp2d", 32),
])
def test_simulators_agree_and_the_roofline_holds(name, model, batch, parallelism, degree):
    system = _system(name, parallelism)
    graph, plan = _plan(system, model, batch, parallelism, degree)
    program = assemble(plan, SchedulerConfig(name="sequential"))
    assert isinstance(program, Program)
    analytic, event = simulate(program, "analytic").latency_s, simulate(program, "event").latency_s
    assert event == pytest.approx(analytic, rel=0.05)
    out = evaluate_graph(graph, system, SchedulerConfig(name="sequential"), include_ops=False)
    assert out["feasible"] and out["latency_s"] >= out["roofline_latency_s"]


def test_llama70b_on_the_galaxy_composes_reduce_scatter_and_all_gather():
    """hidden 8192: attention.py / mlp.py take the composite path (use_composite, reduce_scatter_minimal_async then
    all_gather_async) for o_proj and down_proj over A, and reduce_scatter gate / up over B then all_gather the
    activation (no line_gather, no fused overlap: tt_transformers runs two plain reduce_scatters)."""
    galaxy = _system("wormhole_galaxy", "tp2d")
    _, plan = _plan(galaxy, "llama3_1_70b", 1, "tp2d", 32)
    points = plan.stages[0].collectives
    assert not any(p.overlap for p in points)
    kinds = Counter((p.collective.kind, p.collective.algorithm, len(p.collective.group)) for p in points)
    assert kinds[("all_reduce", "line_gather", 4)] == 80  # QKV only
    assert kinds[("reduce_scatter", "auto", 8)] == kinds[("all_gather", "auto", 8)] == 160  # o_proj, down_proj
    assert kinds[("reduce_scatter", "auto", 4)] == 2 * 80 + 1  # gate, up; the LM head


def test_unknown_ccl_scheme_is_one_config_error():
    data = yaml.safe_load((CONF / "stack" / "tt_transformers.yaml").read_text())
    data["ccl_scheme"] = "megatron2"
    with pytest.raises(ConfigError, match="ccl_scheme"):
        stack_from_dict(data)
    data["ccl_scheme"] = "tt_transformers"
    del data["sources"]["ccl"]
    with pytest.raises(ConfigError, match="sources.ccl"):
        stack_from_dict(data)


# tenstorrent/tt-metal tech_reports/CCLs/results/SUMMARY_wormhole_b0_bfloat16_6144.md @3a4ad18f: measured kernel times
# (us) of the two CCL ops tt_transformers issues on n300 / T3K, (kind, n): [(bytes per chip, us)], nccl sizes (an
# all_gather's output, a reduce_scatter's input), 4 KiB - 256 KiB (the decode payloads). Not validation points.
SUMMARY_ROWS = {
    ("all_gather", 2): [(4096, 7.09), (8192, 7.65), (16384, 8.28), (32768, 9.67), (65536, 12.20), (131072, 17.50),
                        (262144, 27.30)],
    ("all_gather", 4): [(8192, 10.50), (16384, 11.69), (32768, 12.97), (65536, 14.16), (131072, 19.30),
                        (262144, 27.17)],
    ("all_gather", 8): [(16384, 17.61), (32768, 19.20), (65536, 20.36), (131072, 24.08), (262144, 31.51)],
    ("reduce_scatter", 2): [(4096, 6.90), (8192, 7.67), (16384, 8.79), (32768, 10.16), (65536, 12.88),
                            (131072, 17.53), (262144, 26.01)],
    ("reduce_scatter", 4): [(8192, 14.53), (16384, 16.47), (32768, 18.68), (65536, 22.33), (131072, 29.58),
                            (262144, 38.15)],
    ("reduce_scatter", 8): [(16384, 19.61), (32768, 21.24), (65536, 24.70), (131072, 32.97), (262144, 49.75)],
}
GROUPS = {2: ("wormhole_n300", (0, 1)), 4: ("wormhole_t3k", (0, 1, 2, 3)), 8: ("wormhole_t3k", tuple(range(8)))}


def test_the_shipped_ccl_costs_reproduce_the_vendor_micro_benchmark():
    """tt_transformers' collective_startup_us (5.50 us) and ccl_link_latency_ns (2300 ns) are the least-squares fit
    (relative residuals, grid 0.05 us x 25 ns) of our collective_cost to these 36 rows (docs/stacks.md): residuals
    median 15.7%, max 31.7% (the chips' own 2910 ns with the all_reduce startup 9.07 us: median 27.4%)."""
    residuals = []
    for (kind, n), rows in SUMMARY_ROWS.items():
        name, group = GROUPS[n]
        system = _system(name, "tp")
        assert system.chips.link_latency_ns == 2300.0 and system.overheads.collective_startup_us == 5.50
        for size, us in rows:
            got = collective_cost(Collective(kind, float(size), group), system).time_s * 1e6
            residuals.append((got - us) / us)
    assert len(residuals) == 36
    mags = sorted(abs(r) for r in residuals)
    assert (mags[17] + mags[18]) / 2 == pytest.approx(0.157, abs=0.002)
    assert mags[-1] == pytest.approx(0.317, abs=0.002)


def test_t3k_gathers_the_attention_output_inside_o_proj():
    """T3K, Llama-3.2-1B (hidden 2048: 2048 / 32 / 8 = 8, a multiple of 8): per layer the attention output
    (32 x 4 heads x 64 x 2 B per chip) is all_gathered while o_proj runs (overlap), o_proj is split by its output
    columns and its t x 256 output gathered back (131,072 B); down_proj ends in a reduce_scatter and the residual
    all_gather. Llama-3.2-3B (3072 / 32 / 8 = 12, not a multiple of 8) keeps reduce_scatter + all_gather after
    o_proj. Both end with the decode logits' all_gather (32 x 128,256 x 2 B; issue 17t, seventh session)."""
    t3k = _system("wormhole_t3k", "tp")
    _, plan = _plan(t3k, "llama3_2_1b", 32, "tp", 8)
    got = Counter((p.collective.kind, p.collective.bytes_per_chip, p.overlap) for p in plan.stages[0].collectives)
    assert got == {("all_gather", 131_072, True): 16, ("all_gather", 131_072, False): 33,
                   ("reduce_scatter", 131_072, False): 16, ("all_gather", 8_208_384, False): 1}
    o_proj = [op for _, _, op in plan.stages[0].graph.instances() if op.name == "o_proj"][0]
    assert dict(o_proj.dims)["o"] == 2048 // 8 and dict(o_proj.dims)["h"] == 2048
    _, plan3b = _plan(t3k, "llama3_2_3b", 32, "tp", 8)
    assert not any(p.overlap for p in plan3b.stages[0].collectives)
    assert Counter(p.collective.kind for p in plan3b.stages[0].collectives) == {"reduce_scatter": 56,
                                                                                 "all_gather": 58}


# ---- issue 17t, second session: the device operations around the collectives ---------------------------------

def _layer_ops(program: Program, rep: int = 1) -> list[tuple[str, str]]:
    return [(op.name, op.kind) for op in program.ops if (op.layer, op.repetition) == ("decoder", rep)]


def test_galaxy_tt_llama32_1b_b1_device_ops_per_layer_equal_the_hand_count():
    """Galaxy, Llama-3.2-1B, batch 1 (the seen point galaxy_tt_llama3.2-1b_b1). ccl.py ``tt_all_reduce``, the TG
    branch without use_composite, runs ``all_gather_async`` then, as every decode call passes sharded=True,
    ``to_memory_config`` of the gathered buffer to L1 and ``fast_reduce_nc``: two device ops after each of the 5
    line_gather all-reduces of a layer (QKV over B, o_proj over A, gate and up over B, down over A). Issue 17c
    (tp2d.tg_extra_ops) adds the TG path's ops that have no n150 counterpart: the norm's second half
    (``rms_norm_post_all_gather``) after each of the 2 stats gathers, the ``user_selection_matrix`` matmul after
    the attention's users gather, and 2 typecasts before each of the gate / up all-reduces (mlp.py passes no dtype):
    7 more. Per layer: 15 graph operators (2 norms, q / k / v, score, softmax, value, o_proj, attention residual,
    gate, up, swiglu, down, MLP residual) + 8 collectives (2 norm stats, QKV, attention gather, o_proj, gate, up,
    down) + 10 + 7 device ops = 40. Bytes (noc: read + written, unpadded): a buffer of b B gathered over n chips is
    n b B; the conversion reads and writes it (2 n b), the reduce reads it and writes one buffer ((n + 1) b): QKV
    b = 408, n = 4: 3,264 and 2,040; o_proj / down b = 544, n = 8: 8,704 and 4,896; gate / up b = 2,048 (bf16),
    n = 4: 16,384 and 10,240, their typecast reads the 1,088 B bfloat8_b output and writes 2,048 (3,136) and the
    conversion to the sharded config reads and writes 2,048 (4,096). The norm's post op reads the chip's slice (the
    norm's output, 2048 / 4 x 2 = 1,024 B) and the 256 B of gathered stats and writes the slice: 2,304. The
    selection matmul reads the gathered 2,048 B and writes one chip's 512: 2,560."""
    galaxy = _system("wormhole_galaxy", "tp2d")
    _, plan = _plan(galaxy, "llama3_2_1b", 1, "tp2d", 32)
    program = assemble(plan, SchedulerConfig(name="sequential"))
    assert isinstance(program, Program)
    layer = _layer_ops(program)
    kinds = Counter(kind for _, kind in layer)
    assert len(layer) == 40 and kinds["collective"] == 8 and kinds["device_op"] == 17
    assert len(layer) - kinds["collective"] - kinds["device_op"] == 15
    device = [(op.name, op.work.noc_bytes) for op in program.ops
              if op.kind == "device_op" and (op.layer, op.repetition) == ("decoder", 1)]
    assert device == [("rms_norm_post_all_gather", 2304),                      # attention_norm
                      ("to_memory_config", 3264), ("fast_reduce_nc", 2040),   # QKV
                      ("matmul_user_selection", 2560),                          # users gather
                      ("to_memory_config", 8704), ("fast_reduce_nc", 4896),   # o_proj
                      ("rms_norm_post_all_gather", 2304),                      # ff_norm
                      ("to_memory_config", 16384), ("fast_reduce_nc", 10240),  # gate
                      ("typecast", 3136), ("to_memory_config", 4096),
                      ("to_memory_config", 16384), ("fast_reduce_nc", 10240),  # up
                      ("typecast", 3136), ("to_memory_config", 4096),
                      ("to_memory_config", 8704), ("fast_reduce_nc", 4896)]   # down
    # each runs right after its collective (its only dependency is the op before it)
    for i, op in enumerate(program.ops):
        if op.kind == "device_op":
            assert op.exec_after == (i - 1,) and program.ops[i - 1].kind in ("collective", "device_op")
            assert op.flops == 0 and op.work.hbm_bytes == 0
    # 16 layers x 17, and the final norm's post op (its stats gather before the LM head)
    assert sum(op.kind == "device_op" for op in program.ops) == 16 * 17 + 1
    # Charged as every operator: each of the 273 ops runs for the stack's dispatch (25.23 us) plus its network time,
    # one after another, in both simulators. The step grows by that much, less what the longer chain hides of the
    # next operators' weight loads (they prefetch while the device ops run): at most 1% of it here.
    bare = replace(plan, stages=tuple(replace(st, collectives=tuple(replace(p, device_ops=()) for p in st.collectives))
                                      for st in plan.stages))
    without = assemble(bare, SchedulerConfig(name="sequential"))
    assert isinstance(without, Program) and len(without.ops) == len(program.ops) - 273
    dispatch = galaxy.overheads.dispatch_s
    assert dispatch == pytest.approx(25.23e-6)
    for sim in ("analytic", "event"):
        result = simulate(program, sim)
        runs = [t.end_s - t.start_s for t in result.timings if program.ops[t.index].kind == "device_op"]
        assert len(runs) == 273 and all(dispatch * (1 - 1e-9) <= r <= dispatch + 1e-6 for r in runs), sim
        extra = result.latency_s - simulate(without, sim).latency_s
        assert 0.99 * 273 * dispatch <= extra <= 273 * (dispatch + 1e-6), sim


def test_n300_and_the_galaxy_70b_device_ops():
    """n300 (1 x 2 mesh), Llama-3.2-1B, batch 32: ccl.py's "N300 and T3K" branch runs reduce_scatter_minimal_async
    alone (its sharded_to_interleaved only when a sharded input is passed with sharded=False, not charged), so a
    layer is 15 graph operators + 4 collectives (2 reduce_scatters, 2 residual all_gathers) = 19, no device op.
    Galaxy Llama-3.1-70B (hidden 8192): o_proj and down take the composite path (reduce_scatter + all_gather, no
    local reduce) and gate / up plain reduce_scatters, so only QKV's line_gather all-reduce brings its two ops;
    issue 17c's TG-only ops at hidden 8192 are 4 per layer (tp2d.tg_extra_ops): the 2 norms' post ops (+ the final
    norm's), the users' selection matmul and mlp.py's ``to_memory_config(w2_in, L1)`` after the all_gather of the
    MLP width (gate / up are bfloat8_b reduce_scatters there: no typecast)."""
    n300 = _system("wormhole_n300", "tp")
    _, plan = _plan(n300, "llama3_2_1b", 32, "tp", 2)
    program = assemble(plan, SchedulerConfig(name="sequential"))
    assert isinstance(program, Program)
    layer = _layer_ops(program)
    assert len(layer) == 19 and Counter(k for _, k in layer)["collective"] == 4
    assert not any(op.kind == "device_op" for op in program.ops)
    galaxy = _system("wormhole_galaxy", "tp2d")
    _, plan70 = _plan(galaxy, "llama3_1_70b", 1, "tp2d", 32)
    device = Counter(d.name for p in plan70.stages[0].collectives for d in p.device_ops)
    assert device == {"to_memory_config": 80 + 80, "fast_reduce_nc": 80, "matmul_user_selection": 80,
                      "rms_norm_post_all_gather": 2 * 80 + 1}
    # the Galaxy demo's own stack (tt_galaxy) has no such ops
    demo = _system("wormhole_galaxy", "tp2d", "tt_galaxy")
    _, demo_plan = _plan(demo, "llama3_2_1b", 1, "tp2d", 32)
    assert not any(p.device_ops for p in demo_plan.stages[0].collectives)


def test_device_op_needs_a_name_and_non_negative_bytes():
    with pytest.raises(ValueError, match="noc_bytes"):
        DeviceOp("fast_reduce_nc", -1.0)
    with pytest.raises(ValueError):
        DeviceOp("", 1.0)


# ---- issue 17c (sixth session): what an operation running a collective pays under trace ----------------------------
def test_a_collective_operation_pays_the_stacks_ccl_dispatch_not_the_per_operator_dispatch():
    """n300 (1 x 2), Llama-3.2-1B, batch 1, tt_transformers: 16 layers x 4 collectives (2 reduce_scatters, 2 residual
    all_gathers) + the all_gather before layer 0 + the decode logits' all_gather (issue 17t, seventh session) = 66
    collective operations. Each pays the stack's ``ccl_dispatch_us_per_op`` (0.75 us, the vendor's traced op-to-op
    gap of its CCL ops) instead of the n150-fitted 25.23 us per operator; every other operation still pays 25.23
    us. So the step is exactly 66 x (25.23 - 0.75) us = 1,615.7 us shorter than with the per-operator dispatch, in
    both simulators, and never below the roofline."""
    stack = load_stack("tt_transformers")
    assert stack.ccl_dispatch_us_per_op == 0.75 and stack.dispatch_us_per_op == pytest.approx(25.23)
    n300 = _system("wormhole_n300", "tp")
    assert n300.overheads.ccl_dispatch_s == pytest.approx(0.75e-6)
    assert n300.overheads.dispatch_s == pytest.approx(25.23e-6)
    data = yaml.safe_load((CONF / "chip" / "wormhole_n300.yaml").read_text())
    data["chips"]["parallelism"] = "tp"
    old = apply_stack(chip_from_dict(data), replace(stack, ccl_dispatch_us_per_op=None))
    assert old.overheads.ccl_dispatch_s == old.overheads.dispatch_s
    graph = build_model(ModelConfig("llama3_2_1b", batch=1, kv_len=128))
    programs = []
    for system in (n300, old):
        plan = PARALLELISMS["tp"]().plan(Workload(graph), system, 2)
        program = assemble(plan, SchedulerConfig(name="sequential"))
        assert isinstance(program, Program)
        assert sum(op.work.collective_op for op in program.ops) == 66 == 16 * 4 + 2
        assert all(op.work.collective_op == (op.kind == "collective") for op in program.ops)
        programs.append(program)
    for sim in ("analytic", "event"):
        new_s, old_s = (simulate(p, sim).latency_s for p in programs)
        assert old_s - new_s == pytest.approx(66 * (25.23 - 0.75) * 1e-6, rel=1e-6), sim
    out = evaluate_graph(graph, n300, SchedulerConfig(name="sequential"), include_ops=False)
    assert out["latency_s"] >= out["roofline_latency_s"]
    assert out["chip"]["overheads"]["ccl_dispatch_us_per_op"] == pytest.approx(0.75)


def test_op_sync_time_charges_collective_operations_their_own_dispatch():
    """cost/network.op_sync_time_s, the one place: per operation, barriers + the per-operator dispatch, or for a
    collective operation the stack's ccl dispatch; a stack that leaves it unset (tt_galaxy, neuron) charges every
    operation alike."""
    import numpy as np

    from elk_dse.cost.network import barrier_time_s, op_sync_time_s

    n300 = _system("wormhole_n300", "tp")
    got = op_sync_time_s(n300, np.array([0, 1, 0]), np.array([False, False, True]))
    barrier = float(barrier_time_s(n300, 1))
    assert got == pytest.approx([25.23e-6, 25.23e-6 + barrier, 0.75e-6])
    galaxy = _system("wormhole_galaxy", "tp2d", "tt_galaxy")
    assert galaxy.overheads.ccl_dispatch_us_per_op is None
    assert op_sync_time_s(galaxy, 0, True) == op_sync_time_s(galaxy, 0, False) == galaxy.overheads.dispatch_s


def test_ccl_dispatch_needs_a_source_and_a_non_negative_value():
    base = yaml.safe_load((CONF / "stack" / "tt_transformers.yaml").read_text())
    data = dict(base, sources={k: v for k, v in base["sources"].items() if k != "ccl_dispatch"})
    with pytest.raises(ConfigError, match="sources.ccl_dispatch"):
        stack_from_dict(data)
    with pytest.raises(ConfigError, match="ccl_dispatch_us_per_op"):
        stack_from_dict(dict(base, ccl_dispatch_us_per_op=-1.0))
    assert stack_from_dict(dict(base, ccl_dispatch_us_per_op=None)).ccl_dispatch_us_per_op is None
