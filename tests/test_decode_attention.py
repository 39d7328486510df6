"""tt-metal's decode-attention kernel as a cost rule (issue 17s, cost/decode_attention.py): the vendor's core split
by hand, monotone in context, never faster than without the rule (so never below the roofline), the same in
both simulators, and a stack's kernel values validated at load."""

from __future__ import annotations

import pytest
from conftest import small_chip_dict
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.decode_attention import decode_attention_shape, kernel_cycles, score_tiles_per_core
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import apply_stack, load_stack, stack_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.sim.base import SimConfig


def test_galaxy_case_by_hand():
    # Llama-70B on one Galaxy chip at batch 1: 1 KV head, 8 query heads, 16,448 keys; the demo's grid of 32
    # cores, at most 16 per (user, head), chunks of 256 keys. 16 cores share ceil(16448 / 256) = 65 chunks:
    # the busiest takes 5 chunks = 40 key tiles, each against the 8 query rows padded to one 32-row tile.
    assert score_tiles_per_core(1, 1, 8, 16448, 32, 16, 256) == 40
    # 32 users on a 64-core grid with 1 KV head: min(64, 16 * 32) // 32 = 2 cores per user; 128 keys of 32
    # are 4 chunks, 2 per core.
    assert score_tiles_per_core(32, 1, 4, 128, 64, 16, 32) == 2
    # 8 KV heads of one user on 64 cores: 8 cores per head; 40 query heads per KV head are 2 row tiles.
    assert score_tiles_per_core(1, 8, 40, 1024, 64, 16, 32) == 4 * 2
    # More heads than cores: 4 KV heads per core (32 users x 8 heads on 64 cores: 2 cores per user).
    assert score_tiles_per_core(32, 8, 1, 64, 64, 16, 32) == 4 * 2
    # More users than the grid's cores: successive waves.
    assert score_tiles_per_core(100, 1, 1, 32, 64, 16, 32) == 2


def test_kernel_cycles_by_hand_on_a_chip():
    chip = chip_from_dict(small_chip_dict())
    stack = load_stack("none").with_values()
    profile = stack_from_dict({**stack.to_dict(), "name": "k", "sdpa_grid_cores": 8, "sdpa_max_cores_per_head": 4,
                               "sdpa_k_chunk_tokens": 64, "sdpa_ns_per_score_tile": 1000.0,
                               "sources": {**stack.to_dict()["sources"], "sdpa": "assumption: test"}})
    on = apply_stack(chip, profile)
    grid = min(8, on.cores_per_chip)
    # 1 user, 2 KV heads, 4 queries each, 1000 keys: grid cores, at most 4 per head.
    tiles = score_tiles_per_core(1, 2, 4, 1000, grid, 4, 64)
    assert kernel_cycles(on, (1, 2, 4, 1000)) == pytest.approx(tiles * 1000e-9 * on.clock_hz)
    assert kernel_cycles(chip, (1, 2, 4, 1000)) == 0.0  # no kernel without the stack
    assert kernel_cycles(on, None) == 0.0


def test_only_decode_softmax_and_fused_attention_carry_the_rule():
    graph = build_model(ModelConfig("llama3_2_1b", batch=2, kv_len=256, arch={"num_hidden_layers": 1}))
    shapes = {op.name: decode_attention_shape(op) for layer in graph.layers for op in layer.ops}
    assert shapes["attn_softmax"] == (2, 8, 4, 256)
    assert shapes["attn_score"] is None and shapes["attn_value"] is None and shapes["q_proj"] is None
    fused = build_model(ModelConfig("llama3_2_1b", batch=2, kv_len=256, fused_attention=True,
                                    arch={"num_hidden_layers": 1}))
    assert {op.name: decode_attention_shape(op) for layer in fused.layers for op in layer.ops}["attention"] \
        == (2, 8, 4, 256)
    prefill = build_model(ModelConfig("llama3_2_1b", phase="prefill", batch=1, seq_len=64,
                                      arch={"num_hidden_layers": 1}))
    assert all(decode_attention_shape(op) is None for layer in prefill.layers for op in layer.ops)


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 80), g=st.integers(1, 16), r=st.integers(1, 64), l1=st.integers(1, 200_000),
       extra=st.integers(0, 50_000), grid=st.integers(1, 130), cap=st.integers(1, 32),
       chunk=st.sampled_from([32, 64, 128, 256, 512]))
def test_monotone_in_context_and_at_least_the_tile_work_over_the_grid(b, g, r, l1, extra, grid, cap, chunk):
    a = score_tiles_per_core(b, g, r, l1, grid, cap, chunk)
    assert score_tiles_per_core(b, g, r, l1 + extra, grid, cap, chunk) >= a
    # No core split can beat the total score tiles spread over every core of the grid.
    total_tiles = b * g * -(-l1 // 32) * -(-r // 32)
    assert a * grid >= total_tiles


def _tt_like(chip):
    base = load_stack("tt_transformers")
    return base, base.with_values(sdpa_ns_per_score_tile=0.0)


@pytest.mark.parametrize("kv", [256, 4096])
def test_never_faster_than_without_the_rule_nor_the_roofline(kv):
    chip = chip_from_dict(small_chip_dict())
    model = ModelConfig("llama3_2_1b", batch=1, kv_len=kv, arch={"num_hidden_layers": 2})
    on, off = _tt_like(chip)
    r_on, r_off = (evaluate(DesignPoint(chip, model, SchedulerConfig(), SimConfig(), stack=s), include_ops=False)
                   for s in (on, off))
    assert r_on["latency_s"] >= r_off["latency_s"] * (1 - 1e-12)
    assert r_on["latency_s"] >= r_on["roofline_latency_s"]


def test_the_rule_grows_the_step_with_context_in_both_simulators_alike():
    # A 2-chip TP system at long context (the T3K 64K case, small): the kernel's cores bound the attention.
    data = small_chip_dict()
    data["chips"] = {"count": 2, "topology": "ring", "link_gb_s": 25.0, "parallelism": "tp", "tp": 2}
    chip = chip_from_dict(data)
    on, off = _tt_like(chip)
    lat = {}
    for kv in (1024, 32768):
        model = ModelConfig("llama3_2_1b", batch=1, kv_len=kv, arch={"num_hidden_layers": 2})
        for sim in ("analytic", "event"):
            for name, s in (("on", on), ("off", off)):
                res = evaluate(DesignPoint(chip, model, SchedulerConfig(), SimConfig(name=sim), stack=s),
                               include_ops=False)
                lat[kv, sim, name] = res["latency_s"]
    for kv in (1024, 32768):
        assert lat[kv, "event", "on"] == pytest.approx(lat[kv, "analytic", "on"], rel=0.05)
    grow_on = lat[32768, "analytic", "on"] - lat[1024, "analytic", "on"]
    grow_off = lat[32768, "analytic", "off"] - lat[1024, "analytic", "off"]
    assert grow_on > grow_off > 0


def test_kernel_values_are_validated_with_their_source():
    base = load_stack("tt_galaxy").to_dict()
    assert base["sdpa_grid_cores"] == 32 and base["sdpa_k_chunk_tokens"] == 256
    assert "sdpa_decode_program_factory.cpp" in base["sources"]["sdpa"]
    no_source = {**base, "sources": {**base["sources"], "sdpa": ""}}
    with pytest.raises(ConfigError, match="sources.sdpa"):
        stack_from_dict(no_source)
    with pytest.raises(ConfigError, match="sdpa_k_chunk_tokens"):
        stack_from_dict({**base, "sdpa_k_chunk_tokens": 48})
    with pytest.raises(ConfigError, match="sdpa_grid_cores"):
        stack_from_dict({**base, "sdpa_grid_cores": -1})


def test_a_system_compiled_as_one_spreads_the_kernel_over_every_chip_grid():
    data = small_chip_dict()
    data["chips"] = {"count": 2, "topology": "ring", "link_gb_s": 25.0, "parallelism": "all_core"}
    system = apply_stack(chip_from_dict(data), load_stack("tt_transformers"))
    grid = min(64, system.cores_per_chip) * 2
    tiles = score_tiles_per_core(1, 8, 4, 8192, grid, 16, 32)
    assert kernel_cycles(system, (1, 8, 4, 8192)) == pytest.approx(
        tiles * load_stack("tt_transformers").sdpa_ns_per_score_tile * 1e-9 * system.clock_hz)


# --- issue 17k: the batch the kernel is launched for, and each stack's kernel values -----------------------------

def test_padded_users_take_cores_but_no_tiles_by_hand():
    # The Galaxy demo at batch 1: its model is built for 32 users, 8 per chip, the 7 idle ones skipped (cur_pos -1)
    # but given their cores: min(32, 16 * 8) // 8 = 4 cores for the real user's 65 chunks of 256 keys at 16,448
    # keys -> the busiest core takes ceil(65 / 4) = 17 chunks = 136 key tiles (40 with 16 cores, no padding).
    assert score_tiles_per_core(1, 1, 8, 16448, 32, 16, 256, padded_users=8) == 17 * 8
    assert score_tiles_per_core(1, 1, 8, 16448, 32, 16, 256) == 5 * 8
    # 8 real users are what the padding launches anyway: nothing changes.
    assert score_tiles_per_core(8, 1, 8, 16448, 32, 16, 256, padded_users=8) == \
        score_tiles_per_core(8, 1, 8, 16448, 32, 16, 256) == 17 * 8
    # tt_transformers on an n150 at 64K (Llama-3.2-1B: 8 KV heads of 4 queries, 64 cores, 256-key chunks, no
    # padding): 8 cores per head share 256 chunks -> 32 chunks of 8 tiles.
    assert score_tiles_per_core(1, 8, 4, 65536, 64, 16, 256) == 32 * 8
    with pytest.raises(ValueError):
        score_tiles_per_core(1, 1, 8, 1024, 32, 16, 256, padded_users=-1)


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 80), g=st.integers(1, 16), r=st.integers(1, 64), keys=st.integers(1, 200_000),
       extra=st.integers(0, 50_000), grid=st.integers(1, 130), cap=st.integers(1, 32),
       chunk=st.sampled_from([32, 64, 128, 256, 512]), pad=st.integers(0, 64))
def test_padding_only_takes_cores_away_and_stays_monotone_in_context(b, g, r, keys, extra, grid, cap, chunk, pad):
    padded = score_tiles_per_core(b, g, r, keys, grid, cap, chunk, padded_users=pad)
    assert padded >= score_tiles_per_core(b, g, r, keys, grid, cap, chunk)
    assert score_tiles_per_core(b, g, r, keys + extra, grid, cap, chunk, padded_users=pad) >= padded
    if pad <= b:
        assert padded == score_tiles_per_core(b, g, r, keys, grid, cap, chunk)


def test_each_stack_kernel_by_hand_on_its_chip():
    # The shipped stacks on their shipped chips: tt_galaxy's chip (one of the Galaxy's 32, as tp2d compiles it)
    # launches 8 users on 32 cores; tt_transformers' n150 launches the real users on 64.
    from elk_dse.validation.suite import chip_data

    gal = load_stack("tt_galaxy")
    ttt = load_stack("tt_transformers")
    assert (gal.sdpa_padded_users, gal.sdpa_grid_cores, gal.sdpa_k_chunk_tokens) == (8, 32, 256)
    assert (ttt.sdpa_padded_users, ttt.sdpa_grid_cores, ttt.sdpa_k_chunk_tokens) == (0, 64, 256)
    # Same kernel, same compute configuration, same core: one tile time (docs/stacks.md, issue 17k).
    assert ttt.sdpa_ns_per_score_tile == gal.sdpa_ns_per_score_tile > 0
    n150 = apply_stack(chip_from_dict(chip_data("wormhole_n150")), ttt)
    tiles = 32 * 8  # the hand case above: Llama-3.2-1B at 64K
    assert kernel_cycles(n150, (1, 8, 4, 65536)) == pytest.approx(tiles * ttt.sdpa_ns_per_score_tile * 1e-9
                                                                  * n150.clock_hz)
    one_galaxy_chip = chip_from_dict({k: v for k, v in chip_data("wormhole_galaxy").items() if k != "chips"})
    on = apply_stack(one_galaxy_chip, gal)
    assert kernel_cycles(on, (1, 1, 8, 16448)) == pytest.approx(17 * 8 * gal.sdpa_ns_per_score_tile * 1e-9
                                                                * on.clock_hz)


def test_padded_users_are_validated_with_their_source():
    base = load_stack("tt_galaxy").to_dict()
    assert "max_batch_size=32" in base["sources"]["sdpa_padded_users"]
    with pytest.raises(ConfigError, match="sources.sdpa_padded_users"):
        stack_from_dict({**base, "sources": {**base["sources"], "sdpa_padded_users": ""}})
    with pytest.raises(ConfigError, match="sdpa_padded_users"):
        stack_from_dict({**base, "sdpa_padded_users": -1})
