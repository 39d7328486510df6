"""Issue 17d: the neuron stack's ``kv_head_sharding: replicate_to_ranks`` (compiler/parallel/tp.py rank_heads):
transformers-neuronx's heads per TP rank (one rank per NeuronCore), by hand, in the per-chip graph's KV cache
and K/V weights, never below the roofline, the same in both simulators, and the default unchanged."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from tests_paths import CONF

from elk_dse.compiler.parallel import PARALLELISMS, Workload
from elk_dse.compiler.parallel.tp import rank_heads
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import apply_stack, load_stack, stack_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.sim.base import SimConfig
from elk_dse.testing.parallelism import check_parallelism, conformance_cases

LAYERS, BATCH, KV, D, HIDDEN, BF16 = 2, 8, 4096, 128, 4096, 2


def _inf2_48(stack_on: bool = True):
    data = yaml.safe_load((CONF / "chip" / "inf2_48xlarge.yaml").read_text())
    data["chips"].update(parallelism="tp", tp=12)
    stack = load_stack("neuron")
    if not stack_on:
        stack = dataclasses.replace(stack, kv_head_sharding="")
    return apply_stack(chip_from_dict(data), stack)


def _chip_graph(name: str, stack_on: bool = True):
    model = ModelConfig(name, batch=BATCH, kv_len=KV, arch={"num_hidden_layers": LAYERS})
    plan = PARALLELISMS["tp"]().plan(Workload(build_model(model)), _inf2_48(stack_on), 12)
    graph = plan.stages[0].graph
    return graph, {op.name: op for layer in graph.layers for op in layer.ops}


def test_rank_heads_by_hand():
    # (query heads, KV heads, ranks, ranks per chip) -> per chip (query heads, KV heads)
    assert rank_heads(32, 8, 24, 2) == (4, 4)   # Mistral-7B / Llama-3-8B, TP 24: 8 KV heads copied to 32, padded to 48
    assert rank_heads(32, 32, 24, 2) == (4, 4)  # Llama-2-7B (MHA), TP 24: 32 heads padded to 48, 2 per core
    assert rank_heads(32, 8, 32, 2) == (2, 2)   # TP 32 (trn1.32xlarge): one head and one KV copy per core
    assert rank_heads(64, 8, 24, 2) == (6, 6)   # Llama-2/3-70B, TP 24: 64 copies padded to 72, 3 per core
    assert rank_heads(40, 40, 24, 2) == (4, 4)  # Llama-2-13B, TP 24: 40 padded to 48
    assert rank_heads(32, 8, 8, 2) == (8, 2)    # ranks divide the KV heads: SHARD_OVER_HEADS, no copies


def test_mistral_7b_tp24_kv_bytes_per_core_by_hand():
    graph, ops = _chip_graph("mistral_7b_v0_2")
    # Each NeuronCore (2 per chip) holds 2 KV heads: per core per step the cache read is
    # layers x batch x 2 heads x head_dim x kv_len x (K and V) x 2 bytes = 2 x 8 x 2 x 128 x 4096 x 2 x 2.
    per_core = LAYERS * BATCH * 2 * D * KV * 2 * BF16
    assert per_core == 67_108_864
    assert graph.kv_cache_read_bytes / 2 == per_core
    assert ops["k_proj"].sizes["o"] == ops["v_proj"].sizes["o"] == 4 * D  # K/V weights of 4 heads per chip
    assert ops["attn_score"].sizes["g"] == 4 and ops["attn_score"].sizes["r"] == 1
    off, ops_off = _chip_graph("mistral_7b_v0_2", stack_on=False)
    assert off.kv_cache_read_bytes == per_core // 2  # the per-chip split: one KV head per chip
    assert ops_off["k_proj"].sizes["o"] == D
    # Stored weights grow by the copies: per layer 3 more K and V heads and 1 more (padded) q and o head.
    extra = LAYERS * (2 * 3 + 2 * 1) * D * HIDDEN * BF16
    assert graph.parameter_bytes - off.parameter_bytes == pytest.approx(extra, rel=1e-12)


def test_llama2_7b_tp24_kv_bytes_per_core_by_hand():
    # MHA: no KV copies, but the heads are padded per core (32 -> 48 over 24 ranks): 2 heads per core, where
    # the per-chip split gives ceil(32 / 12) = 3 heads per chip.
    graph, ops = _chip_graph("llama2_7b")
    per_core = LAYERS * BATCH * 2 * D * KV * 2 * BF16
    assert graph.kv_cache_read_bytes / 2 == per_core
    assert ops["q_proj"].sizes["o"] == ops["k_proj"].sizes["o"] == 4 * D
    off, _ = _chip_graph("llama2_7b", stack_on=False)
    assert off.kv_cache_read_bytes == LAYERS * BATCH * 3 * D * KV * 2 * BF16


def test_other_stacks_and_the_default_keep_the_per_chip_split():
    data = yaml.safe_load((CONF / "chip" / "inf2_48xlarge.yaml").read_text())
    data["chips"].update(parallelism="tp", tp=12)
    bare = chip_from_dict(data)
    assert bare.overheads.kv_head_sharding == ""
    assert apply_stack(bare, load_stack("tt_transformers")).overheads.kv_head_sharding == ""
    model = ModelConfig("mistral_7b_v0_2", batch=BATCH, kv_len=KV, arch={"num_hidden_layers": LAYERS})
    plan = PARALLELISMS["tp"]().plan(Workload(build_model(model)), bare, 12)
    off, _ = _chip_graph("mistral_7b_v0_2", stack_on=False)
    assert plan.stages[0].graph == off


@pytest.mark.parametrize("name", ["mistral_7b_v0_2", "llama2_7b"])
def test_never_below_the_roofline_and_both_simulators_agree(name):
    chip = chip_from_dict({**yaml.safe_load((CONF / "chip" / "inf2_48xlarge.yaml").read_text()),
                           "chips": {**yaml.safe_load((CONF / "chip" / "inf2_48xlarge.yaml").read_text())["chips"],
                                     "parallelism": "tp", "tp": 12}})
    model = ModelConfig(name, batch=BATCH, kv_len=2112, arch={"num_hidden_layers": LAYERS})
    on = load_stack("neuron")
    off = dataclasses.replace(on, kv_head_sharding="")
    lat = {}
    for sim in ("analytic", "event"):
        for label, stack in (("on", on), ("off", off)):
            res = evaluate(DesignPoint(chip, model, SchedulerConfig(), SimConfig(name=sim), stack=stack),
                           include_ops=False)
            assert res["feasible"], res.get("reason")
            assert res["latency_s"] >= res["roofline_latency_s"] * (1 - 1e-12)
            lat[sim, label] = res["latency_s"]
    assert lat["event", "on"] == pytest.approx(lat["analytic", "on"], rel=0.05)
    assert lat["analytic", "on"] > lat["analytic", "off"]  # more KV bytes per chip, never fewer


def test_field_is_validated_with_its_source():
    base = load_stack("neuron").to_dict()
    assert base["kv_head_sharding"] == "replicate_to_ranks"
    assert "transformers-neuronx @0623de20" in base["sources"]["kv_head_sharding"]
    with pytest.raises(ConfigError, match="sources.kv_head_sharding"):
        stack_from_dict({**base, "sources": {**base["sources"], "kv_head_sharding": ""}})
    with pytest.raises(ConfigError, match="kv_head_sharding"):
        stack_from_dict({**base, "kv_head_sharding": "replicate"})


@pytest.mark.parametrize("case", conformance_cases(), ids=lambda c: c.name)
def test_tp_conformance_with_the_layout_on_two_core_chips(case):
    # The parallelism conformance suite (elk_dse/testing/parallelism.py) with the layout on, on chips of two cores
    # (Inferentia2's / Trainium's). On chips of many cores the vendor's padding would give a chip more heads than
    # the model has, which the suite's "at most the origin's FLOPs" rule rejects (docs/stacks.md).
    chip = {**case.chip, "cores": {**case.chip["cores"], "count": 2, "grid": [2]},
            "overheads": {**case.chip["overheads"], "kv_head_sharding": "replicate_to_ranks"}}
    check_parallelism("tp", dataclasses.replace(case, chip=chip))
