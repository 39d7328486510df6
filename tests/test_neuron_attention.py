"""The Neuron stack's decode attention (issue 17d, cost/neuron_attention.py): transformers-neuronx's KV bucket and
the VectorE/ScalarE floor on the decode softmax, by hand; monotone in keys and batch; never below the roofline
nor faster than without the rule; the same in both simulators; the stack's fields validated at load."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import small_chip_dict
from hypothesis import example, given, settings
from hypothesis import strategies as st

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.decode_attention import kernel_cycles
from elk_dse.cost.neuron_attention import kv_bucket, softmax_cycles, softmax_engine_seconds
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate, stack_model
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import apply_stack, load_stack, stack_from_dict
from elk_dse.models import ModelConfig
from elk_dse.sim.base import SimConfig


def test_bucket_by_hand():
    # transformers-neuronx's token buckets from 128, doubling (bucket.py find: the smallest that holds the cache)
    assert kv_bucket(2112, 128) == 4096  # the inf2 rows' median KV at sequence 4096
    assert kv_bucket(12288, 128) == 16384  # input 8192 + output 8192
    assert kv_bucket(6144, 128) == 8192
    assert kv_bucket(2048, 128) == 2048  # exactly a bucket
    assert kv_bucket(640, 128) == 1024
    assert kv_bucket(129, 128) == 256
    assert kv_bucket(5, 128) == 128  # the smallest bucket
    assert kv_bucket(5000, 0) == 5000  # no buckets
    assert kv_bucket(0, 128) == 0
    with pytest.raises(ValueError):
        kv_bucket(-1, 128)


def test_engine_floor_by_hand():
    # 16 score rows (8 users x 2 heads) fit one group of 128 lanes: a reduce-max pass on VectorE (1.12 GHz) and an
    # exp-with-accumulate pass on ScalarE (1.4 GHz) over 16384 keys, each + 100 cycles of instruction overhead.
    one = (16384 + 100) / 1.12e9 + (16384 + 100) / 1.4e9
    assert softmax_engine_seconds(16, 16384) == pytest.approx(one)
    assert softmax_engine_seconds(1, 16384) == pytest.approx(one)  # fewer lanes cost the same
    assert softmax_engine_seconds(128, 16384) == pytest.approx(one)
    assert softmax_engine_seconds(129, 16384) == pytest.approx(2 * one)  # a second lane group
    assert softmax_engine_seconds(0, 16384) == 0.0 and softmax_engine_seconds(4, 0) == 0.0


def test_softmax_cycles_on_a_chip_by_hand():
    chip = chip_from_dict(small_chip_dict())
    on = apply_stack(chip, load_stack("neuron"))
    assert on.overheads.decode_softmax == "neuron_v2"
    # 8 users x 1 KV head x 3 queries = 24 rows over the chip's cores
    rows = -(-24 // on.cores_per_chip)
    expect = softmax_engine_seconds(rows, 4096) * on.clock_hz
    assert softmax_cycles(on, (8, 1, 3, 4096)) == pytest.approx(expect)
    assert kernel_cycles(on, (8, 1, 3, 4096)) == pytest.approx(expect)  # what both simulators read
    assert softmax_cycles(chip, (8, 1, 3, 4096)) == 0.0  # no rule without the stack
    assert softmax_cycles(on, None) == 0.0


@settings(max_examples=80, deadline=None)
@given(b=st.integers(1, 300), g=st.integers(1, 16), r=st.integers(1, 16), keys=st.integers(1, 200_000),
       more_keys=st.integers(0, 50_000), more_users=st.integers(0, 64), lo=st.sampled_from([0, 64, 128, 256]))
def test_monotone_in_keys_and_batch(b, g, r, keys, more_keys, more_users, lo):
    on = apply_stack(chip_from_dict(small_chip_dict()), load_stack("neuron"))
    c = softmax_cycles(on, (b, g, r, keys))
    assert softmax_cycles(on, (b, g, r, keys + more_keys)) >= c
    assert softmax_cycles(on, (b + more_users, g, r, keys)) >= c
    bucket = kv_bucket(keys, lo)
    assert bucket >= keys and kv_bucket(keys + more_keys, lo) >= bucket
    if lo:
        assert bucket < max(2 * keys, lo + 1)  # never more than the next power-of-two step
    # Never below one engine pass per key of the busiest core's rows at the faster engine's clock.
    rows = -(-(b * g * r) // on.cores_per_chip)
    assert c / on.clock_hz >= -(-rows // 128) * keys / 1.4e9


def _neuron_without_rules():
    # The decode-attention rules alone: the KV-head layout per TP rank (issue 17d, kv_head_sharding) is off in
    # both, so a TP case measures the bucket and the softmax floor only (tests/test_neuron_kv_heads.py has it).
    s = dataclasses.replace(load_stack("neuron"), kv_head_sharding="")
    return s, dataclasses.replace(s, kv_bucket_min_tokens=0, decode_softmax="")


def test_evaluate_runs_the_decode_graph_at_the_bucket_only_under_the_stack():
    on, off = _neuron_without_rules()
    model = ModelConfig("llama3_2_1b", batch=2, kv_len=2112, arch={"num_hidden_layers": 1})
    assert stack_model(model, on).kv_len == 4096
    assert stack_model(model, off) is model
    # issue 17d (eighth session): tt_transformers splits fused projections at load (split_projections), nothing else
    # issue 17q (ninth session): and adds q/k/v biases separately (qkv_bias_add; a Llama graph has none to add)
    assert dataclasses.replace(stack_model(model, load_stack("tt_transformers")), split_projections=False,
                               qkv_bias_add=False) == model
    prefill = ModelConfig("llama3_2_1b", phase="prefill", batch=1, seq_len=100, arch={"num_hidden_layers": 1})
    assert stack_model(prefill, on) is prefill
    chip = chip_from_dict(small_chip_dict())
    res = evaluate(DesignPoint(chip, model, SchedulerConfig(), SimConfig(), stack=on), include_ops=False)
    assert res["model"]["kv_len"] == 4096


# Issue 17n (sixth session): hypothesis found two cases where the rules make the step slightly faster, both the
# same on main at 31265ac (before 17n's engine floor, which this generic chip does not use): batch 2 at 5,867 keys
# by 12.8 ns (4e-6 of 3.48 ms) and batch 8 at 1,426 keys by 84 ns (2.1e-5 of 3.98 ms). The bucket's larger but
# power-of-two key count leads the compiler to another plan (plan quantization over 16 cores), which a larger
# shape may not make slower. The comparison allows 1e-4 of the step and pins both examples.
@settings(max_examples=6, deadline=None)
@example(batch=2, kv=5867)
@example(batch=8, kv=1426)
@given(batch=st.integers(1, 8), kv=st.integers(1, 6000))
def test_never_below_the_roofline_nor_faster_than_without_the_rules(batch, kv):
    chip = chip_from_dict(small_chip_dict())
    model = ModelConfig("llama3_2_1b", batch=batch, kv_len=kv, arch={"num_hidden_layers": 1})
    on, off = _neuron_without_rules()
    r_on, r_off = (evaluate(DesignPoint(chip, model, SchedulerConfig(), SimConfig(), stack=s), include_ops=False)
                   for s in (on, off))
    assert r_on["latency_s"] >= r_on["roofline_latency_s"] * (1 - 1e-12)
    assert r_on["latency_s"] >= r_off["latency_s"] * (1 - 1e-4)


def test_the_rule_grows_the_step_with_keys_in_both_simulators_alike():
    data = small_chip_dict()
    data["chips"] = {"count": 2, "topology": "ring", "link_gb_s": 25.0, "parallelism": "tp", "tp": 2}
    chip = chip_from_dict(data)
    on, off = _neuron_without_rules()
    lat = {}
    for kv in (1000, 16000):
        model = ModelConfig("llama3_2_1b", batch=4, kv_len=kv, arch={"num_hidden_layers": 2})
        for sim in ("analytic", "event"):
            for name, s in (("on", on), ("off", off)):
                res = evaluate(DesignPoint(chip, model, SchedulerConfig(), SimConfig(name=sim), stack=s),
                               include_ops=False)
                lat[kv, sim, name] = res["latency_s"]
    for kv in (1000, 16000):
        assert lat[kv, "event", "on"] == pytest.approx(lat[kv, "analytic", "on"], rel=0.05)
        assert lat[kv, "analytic", "on"] > lat[kv, "analytic", "off"]
    assert (lat[16000, "analytic", "on"] - lat[1000, "analytic", "on"]
            > lat[16000, "analytic", "off"] - lat[1000, "analytic", "off"] > 0)


def test_fields_are_validated_with_their_source():
    base = load_stack("neuron").to_dict()
    assert base["kv_bucket_min_tokens"] == 128 and base["decode_softmax"] == "neuron_v2"
    assert "transformers-neuronx @0623de20" in base["sources"]["decode_attention"]
    with pytest.raises(ConfigError, match="sources.decode_attention"):
        stack_from_dict({**base, "sources": {**base["sources"], "decode_attention": ""}})
    with pytest.raises(ConfigError, match="decode_softmax"):
        stack_from_dict({**base, "decode_softmax": "tensor_e"})
    with pytest.raises(ConfigError, match="kv_bucket_min_tokens"):
        stack_from_dict({**base, "kv_bucket_min_tokens": 100})
    with pytest.raises(ConfigError, match="kv_bucket_min_tokens"):
        stack_from_dict({**base, "kv_bucket_min_tokens": -128})
