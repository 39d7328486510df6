"""Tensor, pipeline and expert parallelism in numbers (issue 17): the hand count of Llama-3.1-70B TP=8 on T3K,
TP's splits, the configuration's one-line errors, infeasible choices as results, and the two simulators'
agreement on TP and PP programs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml
from tests_paths import CONF

from elk_dse.cli import main
from elk_dse.compiler.parallel import PARALLELISMS, Workload, assemble
from elk_dse.compiler.parallel.base import meta_int, ring_order
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.collectives import collective_cost
from elk_dse.cost.pipeline import bubble_fraction, pipeline_latency_s
from elk_dse.errors import ConfigError
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, build_model, model_config_from_dict
from elk_dse.program import Program
from elk_dse.sim import simulate
from elk_dse.testing.parallelism import conformance_cases

PERF = {"weights": "bfp8", "mlp_weights": "bfp4", "attention_weights": "bfp8", "kv_cache": "bfp8",
        "activations": "bf16"}
CASES = {c.name: c for c in conformance_cases()}


def _chip(name: str, **chips):
    data = yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())
    data["chips"].update(chips)
    return chip_from_dict(data)


def _llama70b(batch: int = 32) -> ModelConfig:
    return model_config_from_dict({"name": "llama3_1_70b", "batch": batch, "kv_len": 128, "formats": PERF})


def test_llama70b_tp8_t3k_cross_chip_bytes_equal_the_hand_count():
    t3k = _chip("wormhole_t3k")
    assert t3k.chips.parallelism == "tp"  # what tt-metal runs on T3K (conf/chip/wormhole_t3k.yaml)
    cfg = _llama70b(32)
    plan = PARALLELISMS["tp"]().plan(Workload(build_model(cfg)), t3k, 8)
    kinds = [c.kind for c in plan.collectives]
    # Two all-reduces per layer (after o_proj and down_proj) x 80 layers, one all_gather of the LM head's logits.
    assert kinds.count("all_reduce") == 80 * 2 and kinds.count("all_gather") == 1 and len(kinds) == 161
    # All-reduce buffer: 32 tokens x 8192 hidden x 2 bytes (bf16 activations) = 524,288 B on every chip.
    assert {c.bytes_per_chip for c in plan.collectives if c.kind == "all_reduce"} == {32 * 8192 * 2}
    # All-gather: every chip ends with all 32 x 128,256 logits x 2 B = 8,208,384 B (16,032 vocabulary rows each).
    assert [c.bytes_per_chip for c in plan.collectives if c.kind == "all_gather"] == [32 * 128_256 * 2]
    # The ring: the 2x4 mesh's Hamiltonian cycle, every ring step one hop.
    assert plan.collectives[0].group == (0, 1, 2, 3, 7, 6, 5, 4)
    ring = replace(plan, stages=tuple(replace(s, collectives=tuple(replace(p, collective=replace(
        p.collective, algorithm="ring")) for p in s.collectives)) for s in plan.stages))
    program = assemble(ring, SchedulerConfig(name="sequential"))
    assert isinstance(program, Program) and program.system is t3k and program.chip.num_chips == 1
    # Ring all-reduce: each of the n = 8 chips sends 2(n-1)/n of the buffer, one hop each:
    # 80 x 2 x 524,288 B x 2 x 7/8 x 8 chips = 1,174,405,120 B. Ring all_gather: each chip sends (n-1)/n of the
    # gathered buffer: 8,208,384 x 7/8 x 8 = 57,458,688 B. Total 1,231,863,808 B per decode step.
    hand_ring = 80 * 2 * 524_288 * 2 * 7 / 8 * 8 + 8_208_384 * 7 / 8 * 8
    assert hand_ring == 1_231_863_808
    assert program.chip_link_bytes == pytest.approx(hand_ring, rel=1e-12)
    # As compiled (algorithm auto): with the measured Wormhole links (11.1 GB/s, one per neighbour; 2.91 us
    # per step, conf/chip/wormhole_t3k.yaml) the bidirectional ring is the fastest all-reduce and all_gather on
    # the 2x4 mesh's Hamiltonian cycle: two rings of half the buffer, the same bytes as one ring, every step
    # one hop. (With the 5.25 us per hop shipped before issue 17t, the 2-step direct all-reduce was.)
    out = evaluate_graph(build_model(cfg), t3k, SchedulerConfig(name="sequential"), include_ops=False)
    hand_auto = hand_ring
    assert out["feasible"] and out["parallelism"]["strategy"] == "tp"
    assert out["parallelism"]["collectives_per_step"] == 161 and out["parallel_tp"] == 8
    assert out["chip_link_bytes"] == pytest.approx(hand_auto, rel=1e-12)
    assert out["parallelism"]["cross_chip_bytes"] == out["chip_link_bytes"]
    assert out["latency_s"] >= out["roofline_latency_s"]


def test_mixtral_tp16_trn2_cross_chip_bytes_equal_the_hand_count(capsys):
    """Issue 17x: Mixtral-8x7B decode, batch 16, tp over trn2.48xlarge's 16 chips (a 4x4 torus). A new user
    (17u) saw 838,074,368 B per step where a ring estimate gave ~267 MB: tp all-reduced the experts' output
    over the 2 x 16 token-expert pairs. The vendors all-reduce after the combine (tokens x hidden):
    neuronx-distributed modules/moe/model.py @0598cd8b, tt-metal tt_transformers/tt/mixtral_moe.py @07fed00b."""
    trn2 = _chip("trn2_48xlarge", parallelism="tp")
    plan = PARALLELISMS["tp"]().plan(Workload(build_model(model_config_from_dict(
        {"name": "mixtral_8x7b", "batch": 16}))), trn2, 16)
    stage = plan.stages[0]
    ops = [op for _, _, op in stage.graph.instances()]
    after = [ops[p.after].name for p in stage.collectives]
    # Per layer (32): an all_reduce after o_proj and one after expert_combine; the LM head's all_gather.
    assert after == ["o_proj", "expert_combine"] * 32 + ["lm_head"]
    kinds = [c.kind for c in plan.collectives]
    assert kinds.count("all_reduce") == 64 and kinds == ["all_reduce"] * 64 + ["all_gather"]
    # Every all_reduce: 16 tokens x 4096 hidden x 2 B = 131,072 B (not the 32 pairs' 262,144 B).
    assert {c.bytes_per_chip for c in plan.collectives if c.kind == "all_reduce"} == {16 * 4096 * 2}
    # All-gather: every chip ends with the 16 x 32,000 logits x 2 B = 1,024,000 B (2,000 vocabulary rows each).
    assert plan.collectives[-1].bytes_per_chip == 16 * 32_000 * 2
    assert plan.collectives[0].group == (0, 1, 2, 3, 7, 6, 5, 9, 10, 11, 15, 14, 13, 12, 8, 4)  # one hop per edge
    # Ring (the trial's estimate): all_reduce 2 x 15/16 of the buffer per chip, all_gather 15/16, one hop each:
    # 64 x 131,072 x 2 x 15/16 x 16 + 1,024,000 x 15/16 x 16 = 251,658,240 + 15,360,000 = 267,018,240 B.
    ring = sum(collective_cost(replace(c, algorithm="ring"), trn2).link_bytes for c in plan.collectives)
    assert ring == 64 * 131_072 * 2 * 15 / 16 * 16 + 1_024_000 * 15 / 16 * 16 == 267_018_240
    # As compiled (auto): `direct` is the fastest for these sizes (2 steps of at most 4 hops against the ring's 30
    # steps at 1 us per hop). Each chip sends 1/16 of the buffer to each of the other 15 chips, dimension-ordered:
    # 0, 1, 2, 1 hops along each 4-chip torus axis, 4 x 4 + 4 x 4 = 32 hops over all destinations, so a phase
    # puts 16 x 32 x B/16 = 32 B on the links (B the buffer; all_gather: the gathered 1,024,000 B), an
    # all_reduce two phases: 64 x 131,072 x 64 + 1,024,000 x 32 = 536,870,912 + 32,768,000 = 569,638,912 B.
    assert {collective_cost(c, trn2).algorithm for c in plan.collectives} == {"direct"}
    hand_direct = 64 * 131_072 * 64 + 1_024_000 * 32
    assert hand_direct == 569_638_912
    # The new user's command, as the CLI reports it (the neuron stack, the chip file as shipped).
    code = main(["evaluate", "+chip=trn2_48xlarge", "model=mixtral_8x7b", "model.batch=16",
                 "chip.chips.parallelism=tp", "format=json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["parallelism"]["strategy"] == "tp" and out["parallelism"]["degrees"] == {"tp": 16}
    assert out["parallelism"]["collectives_per_step"] == 65
    assert out["chip_link_bytes"] == out["parallelism"]["cross_chip_bytes"] == hand_direct
    assert out["latency_s"] >= out["roofline_latency_s"]


def test_tp_splits_heads_and_replicates_kv_heads_when_fewer_than_tp():
    # 32 query heads, 8 KV heads over 16 chips: 2 query heads and one (replicated) KV head per chip.
    case = CASES["decoder_kv_replicated16"]
    work, system = case.workload(), case.system("tp")
    plan = PARALLELISMS["tp"]().plan(work, system, 16)
    ops = {op.name: op for layer in plan.stages[0].graph.layers for op in layer.ops}
    full = {op.name: op for layer in work.graph.layers for op in layer.ops}
    assert ops["q_proj"].sizes["o"] == full["q_proj"].sizes["o"] // 16
    assert ops["k_proj"].sizes["o"] == full["k_proj"].sizes["o"] // 8  # one of the 8 KV heads
    assert ops["attn_score"].sizes["g"] == 1 and ops["attn_score"].sizes["r"] == 2
    assert ops["o_proj"].sizes["h"] == full["o_proj"].sizes["h"] // 16 and ops["o_proj"].sizes["o"] == 512
    assert ops["attn_norm"] == full["attn_norm"] and ops["lm_head"].sizes["o"] == 4096 // 16


def test_ring_order_is_a_cycle_of_neighbours_on_meshes():
    for grid in ([2, 4], [4, 8], [4, 4], [3, 4], [2, 2]):
        chip = CASES["decoder_mesh4"].system()
        data = {**CASES["decoder_mesh4"].chip, "chips": {"count": grid[0] * grid[1], "topology": "mesh", "grid": grid}}
        chip = chip_from_dict(data)
        order = ring_order(chip)
        assert sorted(order) == list(range(chip.num_chips))
        cols = grid[1]
        for a, b in zip(order, order[1:] + order[:1], strict=True):
            assert abs(a // cols - b // cols) + abs(a % cols - b % cols) == 1, (grid, order)


def test_tp_pads_heads_it_does_not_divide():
    # 32 query heads and 8 KV heads over 3 chips: 11 query heads per chip (padded to 33) and, with at least 3
    # KV heads, ceil(8 / 3) = 3 KV heads per chip, as NxD Inference and tt-metal pad heads to a multiple of tp.
    case = CASES["decoder_mesh4"]
    work = case.workload()
    full = {op.name: op for layer in work.graph.layers for op in layer.ops}
    heads, kv = meta_int(work.graph, "heads"), meta_int(work.graph, "kv_heads")
    assert (heads, kv) == (32, 8)
    data = {**case.chip, "chips": {"count": 3, "topology": "ring", "parallelism": "tp"}}
    plan = PARALLELISMS["tp"]().plan(work, chip_from_dict(data), 3)
    ops = {op.name: op for layer in plan.stages[0].graph.layers for op in layer.ops}
    hd = full["q_proj"].sizes["o"] // heads
    assert ops["q_proj"].sizes["o"] == 11 * hd and ops["o_proj"].sizes["h"] == 11 * hd
    assert ops["k_proj"].sizes["o"] == 3 * hd and ops["v_proj"].sizes["o"] == 3 * hd
    assert ops["attn_score"].sizes["g"] == 3 and ops["attn_score"].sizes["r"] == 4  # 12 >= 11 query heads
    # The padding is real work: the chips together compute more than the model, never less.
    per_chip = sum(op.flops * layer.repeat for layer in plan.stages[0].graph.layers for op in layer.ops)
    assert 3 * per_chip > work.graph.flops
    out = evaluate_graph(work.graph, chip_from_dict(data), SchedulerConfig(name="sequential"), include_ops=False,
                         rebuild=work.rebuild)
    assert out["feasible"] and out["latency_s"] >= out["roofline_latency_s"]


def test_infeasible_choices_are_results_with_a_reason():
    case = CASES["decoder_mesh4"]
    work = case.workload()
    # pp over 64 chips has more stages than the model has layers: infeasible with the reason; auto goes on.
    data = {**case.chip, "chips": {"count": 64, "topology": "ring", "parallelism": "pp"}}
    out = evaluate_graph(work.graph, chip_from_dict(data), SchedulerConfig(name="sequential"), include_ops=False,
                         rebuild=work.rebuild)
    assert not out["feasible"] and out["infeasible_reason"] == "parallelism"
    data["chips"]["parallelism"] = "auto"
    out = evaluate_graph(work.graph, chip_from_dict(data), SchedulerConfig(name="sequential"), include_ops=False,
                         rebuild=work.rebuild)
    assert out["feasible"] and out["parallelism"]["strategy"] != "pp"
    reasons = {c["strategy"]: c.get("reason", "") for c in out["parallelism"]["candidates"]}
    assert reasons["pp"] and "no experts" in reasons["ep"]
    # A chip's HBM too small for its share: hbm_capacity, naming the share.
    out = evaluate_graph(build_model(_llama70b(32)), _chip("wormhole_t3k", parallelism="dp"),
                         SchedulerConfig(name="sequential"), include_ops=False,
                         rebuild=lambda b: build_model(replace(_llama70b(32), batch=b)))
    assert out["infeasible_reason"] == "hbm_capacity" and "dp (one chip's share)" in out["infeasible_detail"]


@pytest.mark.parametrize("override, field", [
    ("chip.chips.parallelism=tensor", "chip.chips.parallelism"),
    ("chip.chips.tp=3", "chip.chips.tp"),
    ("chip.chips.pp=8", "chip.chips.pp"),
])
def test_bad_parallelism_is_one_line_exit_2(capsys, override, field):
    code = main(["evaluate", "+chip=wormhole_t3k", "model=llama3_2_1b", override])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and field in err


def test_parallelism_config_rules():
    from elk_dse.hw.chip import ChipLinkSpec

    assert ChipLinkSpec(count=8, parallelism="tp").tp == 0  # unset = count
    assert ChipLinkSpec(count=8, parallelism="tp", tp=8).tp == 8
    assert ChipLinkSpec(count=8, parallelism="auto", tp=8).tp == 8
    with pytest.raises(ConfigError, match="must equal chips.count=8"):
        ChipLinkSpec(count=8, parallelism="tp", tp=4)
    with pytest.raises(ConfigError, match="needs parallelism dp"):
        ChipLinkSpec(count=8, dp=8)
    with pytest.raises(ConfigError, match="one of all_core"):
        ChipLinkSpec(count=8, parallelism="zero")


def test_pipeline_composition():
    assert pipeline_latency_s([1.0, 2.0, 1.0], 1) == 4.0
    assert pipeline_latency_s([1.0, 2.0, 1.0], 4) == 4.0 + 3 * 2.0
    assert bubble_fraction(4, 4) == pytest.approx(3 / 7)
    with pytest.raises(ValueError):
        pipeline_latency_s([1.0], 0)


def _both(program: Program) -> tuple[float, float]:
    return simulate(program, "analytic").latency_s, simulate(program, "event").latency_s


@pytest.mark.parametrize("strategy", ["tp", "pp", "ep"])
def test_event_and_analytic_agree_within_5_percent_on_small_chips(strategy):
    # Sequential schedules on 16-core chips. (elk_full on these toy chips differs by up to 25% with or without
    # collectives: the analytic model does not see loads contending with tiny operators' traffic; on the
    # shipping chips below the two agree within 1%.)
    case = CASES["moe_ring4"] if strategy == "ep" else CASES["decoder_mesh4"]
    plan = PARALLELISMS[strategy]().plan(case.workload(), case.system(strategy), 4)
    program = assemble(plan, SchedulerConfig(name="sequential"))
    assert isinstance(program, Program) and any(op.kind == "collective" for op in program.ops)
    analytic, event = _both(program)
    assert event == pytest.approx(analytic, rel=0.05), (strategy, analytic, event)
    if strategy == "pp":  # both simulators' results go through the pipeline composition
        assert program.meta["microbatches"] == 4
        ends = program.meta["stage_ends"]
        assert len(ends) == 4 and ends[-1] == len(program.ops) - 1
        assert analytic > simulate(program, "analytic").timings[-1].end_s  # m - 1 further micro-batches


@pytest.mark.parametrize("scheduler", ["sequential", "elk_full"])
def test_event_and_analytic_agree_on_llama70b_tp8_t3k(scheduler):
    # Measured 2026-11-28: sequential 75.076 vs 75.071 ms, elk_full 55.425 vs 55.857 ms (+0.8%).
    program = assemble(PARALLELISMS["tp"]().plan(Workload(build_model(_llama70b(32))), _chip("wormhole_t3k"), 8),
                       SchedulerConfig(name=scheduler))
    assert isinstance(program, Program)
    analytic, event = _both(program)
    assert event == pytest.approx(analytic, rel=0.05)


def test_parallelism_sweep_searches_the_strategy(tmp_path):
    """sweeps/parallelism.yaml: every strategy is tried; the rows carry the degrees used and the collectives, and
    a strategy that does not fit the model is an INFEASIBLE row with its reason."""
    from elk_dse.results.store import ResultStore

    out = tmp_path / "par"
    assert main(["sweep", "+chip=wormhole_t3k", "model=llama3_2_1b", "model.batch=8", "model.kv_len=256",
                 "sweep=parallelism", "scheduler=sequential", f"out={out}", "search.n_trials=24",
                 "search.batch_size=24", "search.workers=0", "progress=false",
                 "report=false"]) == 0
    df = ResultStore(out).read()
    strategy = df["param.chip.chips.parallelism"]
    assert set(strategy) == {"all_core", "tp", "pp", "ep", "dp", "auto"}
    ok = df[df["status"] == "COMPLETE"]
    assert (ok.loc[ok["param.chip.chips.parallelism"] == "tp", "metric.parallel_tp"] == 8).all()
    # wormhole_t3k's default stack is tt_transformers, whose code (issue 17t, ccl_scheme) runs per layer two
    # reduce_scatters and two residual all_gathers, one all_gather before layer 0's norm and, at decode, one of the
    # logits before the host reads them (issue 17t, seventh session: model.py ttnn_decode_forward)
    assert (ok.loc[ok["param.chip.chips.parallelism"] == "tp", "metric.collectives_per_step"] == 16 * 4 + 2).all()
    assert (ok.loc[ok["param.chip.chips.parallelism"] == "all_core", ["metric.parallel_tp", "metric.parallel_pp",
                                                                      "metric.parallel_dp"]] == 1).all().all()
    ep = df[strategy == "ep"]
    assert (ep["status"] == "INFEASIBLE").all() and (ep["infeasible_reason"] == "parallelism").all()
    # The report's design details say how the Pareto designs spread the model.
    from elk_dse.results.report import build_report

    html = build_report([out]).read_text()
    assert "Parallelism across chips: <b>" in html and "collectives per step" in html
