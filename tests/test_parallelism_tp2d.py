"""2-D tensor parallelism (compiler/parallel/tp2d.py, issue 17t): the hand count of Llama-3.1-70B's collectives on
the 4x8 Galaxy at batch 32, the per-chip split, concurrent collectives (Collective.replicas), the line algorithm,
auto choosing tp2d, and the refusals."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml
from tests_paths import CONF

from elk_dse.compiler.parallel import PARALLELISMS, Workload
from elk_dse.compiler.parallel.tp2d import mesh_axes
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.collectives import Collective, collective_cost
from elk_dse.errors import ConfigError
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.ir.graph import Role
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Infeasible
from elk_dse.testing.collectives import example_system

ROWS = tuple(tuple(r * 8 + c for c in range(8)) for r in range(4))  # the Galaxy's A groups: 8 chips of a row
COLS = tuple(tuple(r * 8 + c for r in range(4)) for c in range(8))  # its B groups: 4 chips of a column


def _chip(name: str, **chips):
    data = yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())
    data["chips"].update(chips)
    return chip_from_dict(data)


def _line_link_bytes(kind: str, n: int, groups: int, nbytes: float) -> float:
    """The line algorithm's link bytes (cost/collectives.py line): every step each of the 2(n-1) directed links
    of a group's line carries 1/n of the buffer; n-1 steps (reduce_scatter, all_gather) or 2(n-1) (all_reduce)."""
    steps = 2 * (n - 1) if kind == "all_reduce" else n - 1
    return groups * steps * 2 * (n - 1) * nbytes / n


def test_llama70b_tp2d_galaxy_collectives_equal_the_hand_count():
    galaxy = _chip("wormhole_galaxy")
    assert galaxy.chips.parallelism == "tp2d"  # the demo's scheme ships with the Galaxy
    assert mesh_axes(galaxy) == (ROWS, COLS)
    cfg = ModelConfig("llama3_1_70b", batch=32, kv_len=128)  # bf16 activations: 2 B per element
    plan = PARALLELISMS["tp2d"]().plan(Workload(build_model(cfg)), galaxy, 32)
    assert dict(plan.degrees) == {"tp": 32, "tp_a": 8, "tp_b": 4}
    got = Counter((c.kind, c.bytes_per_chip, (c.group, *c.replicas)) for c in plan.collectives)
    # Per layer (80), t = 32 tokens, hidden 8192 = 4 x 2048 per chip, 64 query / 8 KV heads of 128, FFN 28672:
    hand = {
        # Two distributed norms per layer and the final norm: each chip's t x 32 bf16 stats tile, gathered
        # over the 4 chips of its column (tt_distributed_rmsnorm): 4 x 32 x 64 B.
        ("all_gather", 4 * 32 * 64, COLS): 2 * 80 + 1,
        # Fused QKV (8 query + 1 K + 1 V head of 128 per chip) partial sums over the column: 32 x 1280 x 2 B.
        ("reduce_scatter", 32 * 1280 * 2, COLS): 80,
        # Attention context of 8 users x 8 heads x 128 from each of 4 chips: 32 x 1024 x 2 B gathered.
        ("all_gather", 32 * 1024 * 2, COLS): 80,
        # o_proj and down_proj: t x 2048 (the chip's hidden quarter) reduced over the 8 chips of its row.
        ("all_reduce", 32 * 2048 * 2, ROWS): 2 * 80,
        # gate and up (3584 = 28672 / 8 columns per chip) reduce-scattered over the column.
        ("reduce_scatter", 32 * 3584 * 2, COLS): 2 * 80,
        # The activation's 896 = 3584 / 4 columns gathered back over the column.
        ("all_gather", 32 * 896 * 2 * 4, COLS): 80,
        # LM head: 16,032 = 128,256 / 8 vocabulary rows per chip, partial over the column.
        ("all_reduce", 32 * 16_032 * 2, COLS): 1,
    }
    assert got == hand and len(plan.collectives) == 722
    # Cross-chip bytes on the line algorithm (what auto picks on these mesh axes), every row / column at once.
    hand_bytes = sum(count * _line_link_bytes(kind, len(groups[0]), len(groups), b)
                     for (kind, b, groups), count in hand.items())
    assert hand_bytes == 4_583_047_168
    line = [collective_cost(Collective(k, b, g[0], "line", g[1:]), galaxy) for k, b, g in hand]
    assert sum(c.link_bytes * n for c, n in zip(line, hand.values(), strict=True)) == pytest.approx(hand_bytes)
    out = evaluate_graph(build_model(cfg), galaxy, SchedulerConfig(name="sequential"), include_ops=False)
    assert out["feasible"] and out["parallelism"]["strategy"] == "tp2d"
    assert out["parallelism"]["degrees"] == {"tp": 32, "tp_a": 8, "tp_b": 4} and out["parallel_tp"] == 32
    assert out["parallelism"]["collectives_per_step"] == 722
    assert out["chip_link_bytes"] == pytest.approx(hand_bytes, rel=1e-12)
    assert out["latency_s"] >= out["roofline_latency_s"]
    # 1-D Megatron over all 32 chips moves the whole t x 8192 activation around 32 chips twice per layer.
    tp = evaluate_graph(build_model(cfg), _chip("wormhole_galaxy", parallelism="tp"),
                        SchedulerConfig(name="sequential"), include_ops=False)
    assert tp["chip_link_bytes"] > 4 * out["chip_link_bytes"]


def test_tp2d_gives_each_chip_a_32nd_of_the_matmuls_and_its_users_kv_head():
    galaxy = _chip("wormhole_galaxy")
    graph = build_model(ModelConfig("llama3_1_70b", batch=32, kv_len=128))
    stage = PARALLELISMS["tp2d"]().plan(Workload(graph), galaxy, 32).stages[0]
    full = {op.name: op for _, _, op in graph.instances()}
    mine = {op.name: op for _, _, op in stage.graph.instances()}
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"):
        assert mine[name].bytes_by_role(Role.WEIGHT) * 32 == full[name].bytes_by_role(Role.WEIGHT)
    # SDPA decode: one KV head (of 8) for 8 users (of 32) per chip: a 32nd of the KV cache.
    assert dict(mine["attn_score"].dims)["g"] == 1 and dict(mine["attn_score"].dims)["b"] == 8
    assert mine["attn_score"].bytes_by_role(Role.KV_CACHE) * 32 == full["attn_score"].bytes_by_role(Role.KV_CACHE)
    # The residual stream is fractured over the column (hidden / 4), replicated along the row.
    assert dict(mine["attn_norm"].dims)["h"] == 2048 and dict(mine["mlp_residual"].dims)["h"] == 2048
    assert stage.graph.parameter_bytes < graph.parameter_bytes / 16


def test_auto_picks_tp2d_when_it_is_fastest():
    cfg = ModelConfig("llama3_1_70b", batch=32, kv_len=128)
    sched = SchedulerConfig(name="sequential")
    fixed = {p: evaluate_graph(build_model(cfg), _chip("wormhole_galaxy", parallelism=p), sched,
                               include_ops=False)["latency_s"] for p in ("tp", "tp2d")}
    assert fixed["tp2d"] < fixed["tp"]
    out = evaluate_graph(build_model(cfg), _chip("wormhole_galaxy", parallelism="auto"), sched, include_ops=False)
    assert out["parallelism"]["strategy"] == "tp2d" and out["latency_s"] == pytest.approx(fixed["tp2d"])


def test_replicas_run_at_once_on_disjoint_links_and_count_every_group():
    mesh = example_system("mesh", 32, [4, 8])
    alone = [collective_cost(Collective("all_reduce", 2.0**20, row, "line"), mesh) for row in ROWS]
    four = collective_cost(Collective("all_reduce", 2.0**20, ROWS[0], "line", ROWS[1:]), mesh)
    # The rows use disjoint links: together they take as long as the slowest alone (an inner row, whose chips
    # share their bandwidth over 4 links, not 3), and move the bytes of all four.
    assert alone[1].time_s > alone[0].time_s
    assert four.time_s == pytest.approx(max(c.time_s for c in alone))
    assert four.link_bytes == pytest.approx(sum(c.link_bytes for c in alone))
    # Columns of a row-major 4x8 mesh: the same, along the other axis.
    cols = collective_cost(Collective("all_gather", 2.0**20, COLS[0], "line", COLS[1:]), mesh)
    assert cols.link_bytes == pytest.approx(8 * _line_link_bytes("all_gather", 4, 1, 2.0**20))
    with pytest.raises(ConfigError, match="collective.replicas"):
        Collective("all_reduce", 1.0, (0, 1), replicas=((1, 2),))  # overlaps the group
    with pytest.raises(ConfigError, match="collective.replicas"):
        Collective("all_reduce", 1.0, (0, 1), replicas=((2, 3, 4),))  # another size


def test_line_all_reduce_time_is_the_alpha_beta_closed_form():
    # A line of 4 chips, 100 GB/s per chip and direction: an inner chip's two links get 50 GB/s each.
    line4 = example_system("mesh", 4, [1, 4], link_gb_s=100.0, latency_ns=1000.0, startup_us=2.0)
    c = collective_cost(Collective("all_reduce", 4e6, (0, 1, 2, 3), "line"), line4)
    # 2(n-1) = 6 steps, each 1/4 of the buffer over a 50 GB/s link plus one hop: 2 us + 6 x (20 us + 1 us).
    assert c.steps == 6 and c.time_s == pytest.approx(2e-6 + 6 * (1e6 / 50e9 + 1e-6))


def test_tp2d_refusals_are_results_with_a_reason():
    galaxy = _chip("wormhole_galaxy")
    moe = PARALLELISMS["tp2d"]().plan(Workload(build_model(ModelConfig("mixtral_8x7b", batch=8, kv_len=128))),
                                      galaxy, 32)
    assert isinstance(moe, Infeasible) and "experts" in moe.detail
    ring = example_system("ring", 8)
    dense = Workload(build_model(ModelConfig("llama3_2_1b", batch=8, kv_len=128)))
    no_grid = PARALLELISMS["tp2d"]().plan(dense, ring, 8)
    assert isinstance(no_grid, Infeasible) and "chips.grid" in no_grid.detail
    # 24 query heads (Llama-3.2-3B) over rows of 16 chips: tp2d does not pad heads (tp does).
    wide = example_system("mesh", 32, [2, 16])
    odd = PARALLELISMS["tp2d"]().plan(Workload(build_model(ModelConfig("llama3_2_3b", batch=8, kv_len=128))),
                                      wide, 32)
    assert isinstance(odd, Infeasible) and "heads" in odd.detail


@pytest.mark.parametrize("scheduler", ["sequential", "elk_full"])
def test_event_and_analytic_agree_on_llama70b_tp2d_galaxy(scheduler):
    from elk_dse.compiler.parallel import assemble
    from elk_dse.program import Program
    from elk_dse.sim import simulate

    cfg = ModelConfig("llama3_1_70b", batch=32, kv_len=128)
    plan = PARALLELISMS["tp2d"]().plan(Workload(build_model(cfg)), _chip("wormhole_galaxy"), 32)
    program = assemble(plan, SchedulerConfig(name=scheduler))
    assert isinstance(program, Program)
    analytic, event = simulate(program, "analytic").latency_s, simulate(program, "event").latency_s
    assert event == pytest.approx(analytic, rel=0.05)
