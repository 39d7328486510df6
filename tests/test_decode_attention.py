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
