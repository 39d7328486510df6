"""The logits a tt_transformers decode step reads back to sample on the host (issue 17t, seventh session; stack fields
``host_sampling_min_batch`` / ``host_read_gb_per_s``, cost/host_io.py, docs/parallelism.md "The logits at batch > 1").

tt-metal's simple_text_demo samples on the device only at batch 1; from batch 2 every step ends with the device's
logits read back to the host (one chip's copy after the on-device all_gather of the vocabulary shards, untilized to
bfloat16, the decode batch padded to 32 rows) while the device idles. Hand counts of the bytes, and the time both
simulators add for them at the stack's read rate."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from tests_paths import CONF

from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.collectives import collective_cost
from elk_dse.cost.host_io import host_logits_bytes, host_readback_s
from elk_dse.errors import ConfigError
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import OverheadSpec, chip_from_dict
from elk_dse.hw.stack import apply_stack, load_stack
from elk_dse.models import ModelConfig, build_model
from elk_dse.models.config import TensorFormats
from elk_dse.program import Program
from elk_dse.sim import simulate

SEQ = SchedulerConfig(name="sequential")
VOCAB = 128_256  # Llama-3.2-1B


def _system(name: str, host_sampling: bool = True, parallelism: str = "tp"):
    data = yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())
    if "chips" in data:
        data["chips"]["parallelism"] = parallelism
    stack = load_stack("tt_transformers")
    if not host_sampling:
        stack = dataclasses.replace(stack, host_sampling_min_batch=0)
    return apply_stack(chip_from_dict(data), stack)


def _program(system, batch: int, phase: str = "decode") -> Program:
    graph = build_model(ModelConfig("llama3_2_1b", batch=batch, kv_len=128, phase=phase))
    program = compile_graph(graph, system, SEQ)
    assert isinstance(program, Program)
    return program


def test_t3k_llama32_1b_b32_reads_back_the_hand_counted_logits():
    """T3K (TP=8), Llama-3.2-1B, batch 32 (the seen point t3k_llama3.2-1b_b32_tp8). The LM head leaves 128,256 / 8 =
    16,032 vocabulary columns per chip; at decode the code all_gathers them on the device (model.py
    ttnn_decode_forward: all_gather_async dim 3), so every chip ends with 32 x 128,256 x 2 B = 8,208,384 B; the host
    reads device 0's copy once per step (process_output_decode: ttnn.to_torch(get_device_tensors(tt_out)[0])):
    32 rows x 128,256 x 2 B (bfloat16 after ttnn.untilize) = 8,208,384 B, not 8 x that. At the stack's 2.58 GB/s
    that is 8,208,384 / 2.58e9 s = 3.1815 ms added to the step in both simulators, the device idle meanwhile."""
    t3k = _system("wormhole_t3k")
    assert (t3k.overheads.host_sampling_min_batch, t3k.overheads.host_read_gb_per_s) == (2, 2.58)
    program = _program(t3k, 32)
    assert program.meta["host_logits_bytes"] == 32 * VOCAB * 2 == 8_208_384
    read_s = 8_208_384 / 2.58e9
    assert host_readback_s(program) == pytest.approx(read_s, rel=1e-12)
    assert read_s == pytest.approx(3.1815e-3, rel=1e-4)
    # the logits' all_gather on the device: one collective after the LM head, 8,208,384 B per chip at the end
    gathers = [op for op in program.ops if op.kind == "collective" and op.work.collectives
               and op.work.collectives[0].bytes_per_chip == 8_208_384]
    assert len(gathers) == 1 and gathers[0].work.collectives[0].kind == "all_gather"
    assert program.ops[gathers[0].index - 1].name == "lm_head"
    device_sampled = _program(_system("wormhole_t3k", host_sampling=False), 32)
    assert "host_logits_bytes" not in device_sampled.meta
    for sim in ("analytic", "event"):
        added = simulate(program, sim).latency_s - simulate(device_sampled, sim).latency_s
        assert added == pytest.approx(read_s, rel=1e-9), sim
    graph = build_model(ModelConfig("llama3_2_1b", batch=32, kv_len=128))
    out = evaluate_graph(graph, t3k, SEQ, include_ops=False)
    assert out["latency_s"] >= out["roofline_latency_s"]
    # link bytes of the logits gather (a ring of 8: each chip receives the 7 other chips' 1,026,048 B)
    link = collective_cost(gathers[0].work.collectives[0], t3k).link_bytes
    assert link >= 7 * 8_208_384 / 8 * 8


def test_host_sampling_starts_at_batch_2_and_reads_whole_32_row_tiles():
    """Batch 1 samples on the device (argmax_on_device, the demo's batch-1 case): nothing read back. Batch 2 reads
    the same 32 padded rows as batch 32 (the decode input is padded to 32 users: prepare_decode_inputs_host); batch
    33 two tiles of rows. Prefill samples from the prompt's last token (not a decode step): no read-back here."""
    n150 = _system("wormhole_n150")
    assert "host_logits_bytes" not in _program(n150, 1).meta
    assert _program(n150, 2).meta["host_logits_bytes"] == 32 * VOCAB * 2
    assert _program(n150, 32).meta["host_logits_bytes"] == 32 * VOCAB * 2  # one chip reads it all
    assert "host_logits_bytes" not in _program(n150, 32, phase="prefill").meta
    graph = build_model(ModelConfig("llama3_2_1b", batch=33, kv_len=128))
    assert host_logits_bytes(graph, n150.overheads) == 64 * VOCAB * 2
    assert host_logits_bytes(graph, n150.overheads, copies=3) == 3 * 64 * VOCAB * 2  # three copies of 33 users
    assert host_logits_bytes(graph, OverheadSpec()) == 0.0  # a stack without host sampling


def test_n300_batch_32_reads_from_one_chip_and_gathers_on_the_device():
    """n300 (TP=2), batch 32: the host reads the same 8,208,384 B as on one chip (device 0's gathered copy), and the
    device all_gathers the two 64,128-column halves (each chip sends its 4,104,192 B to the other)."""
    n300 = _system("wormhole_n300")
    program = _program(n300, 32)
    assert program.meta["host_logits_bytes"] == 8_208_384
    gathers = [op.work.collectives[0] for op in program.ops if op.kind == "collective"
               and op.work.collectives[0].bytes_per_chip == 8_208_384]
    assert len(gathers) == 1 and collective_cost(gathers[0], n300).link_bytes == 8_208_384


def test_host_sampling_needs_a_read_rate():
    with pytest.raises(ConfigError, match="host_read_gb_per_s"):
        OverheadSpec(host_sampling_min_batch=2)
    with pytest.raises(ConfigError, match="host_sampling_min_batch"):
        OverheadSpec(host_sampling_min_batch=-1, host_read_gb_per_s=1.0)
    with pytest.raises(ConfigError, match="host_read_gb_per_s"):
        dataclasses.replace(load_stack("tt_transformers"), host_read_gb_per_s=0.0)


def test_data_parallel_copies_each_read_their_own_logits():
    """Falcon 7B (vocabulary 65,024) with 32 users per chip, DP=8 on a T3K (the seen point t3k_falcon7b_b256_dp8):
    the host reads every copy's logits (the Falcon demo's tt_tensors_to_torch_tensors, ConcatMeshToTensor over every
    device; simple_text_demo per submesh): 8 x 32 x 65,024 x 2 B = 33,292,288 B per step, 12.904 ms at 2.58 GB/s.
    Llama-3.1-8B batch 8 at DP=8 has one user per copy: argmax on the device, nothing read back."""
    t3k = _system("wormhole_t3k", parallelism="dp")

    def falcon(batch: int):  # the point's formats: matmul weights bfloat8_b (the demo's model_config.py)
        return build_model(ModelConfig("falcon_7b", batch=batch, kv_len=128, formats=TensorFormats(weights="bfp8")))

    graph = falcon(256)
    program = compile_graph(graph, t3k, SEQ, rebuild=falcon)
    assert isinstance(program, Program) and dict(program.meta["parallel_degrees"]) == {"dp": 8}
    assert program.meta["host_logits_bytes"] == 8 * 32 * 65_024 * 2 == 33_292_288
    assert host_readback_s(program) == pytest.approx(33_292_288 / 2.58e9, rel=1e-12)
    # host_logits_bytes takes what one copy runs: Llama-3.1-8B batch 8 at DP=8 is 8 copies of batch 1
    one_user = build_model(ModelConfig("llama3_1_8b", batch=1, kv_len=128))
    assert host_logits_bytes(one_user, t3k.overheads, copies=8) == 0.0
    eight = build_model(ModelConfig("llama3_1_8b", batch=8, kv_len=128))
    assert host_logits_bytes(eight, t3k.overheads, copies=1) == 32 * 128_256 * 2
    def llama(batch: int):  # bfloat8_b weights: one copy fits a Wormhole's 12 GiB
        return build_model(ModelConfig("llama3_1_8b", batch=batch, kv_len=128, formats=TensorFormats(weights="bfp8")))

    dp8 = compile_graph(llama(8), t3k, SEQ, rebuild=llama)
    assert isinstance(dp8, Program) and "host_logits_bytes" not in dp8.meta


def test_blackhole_dp2_reads_each_cards_logits_one_after_another():
    """Two p150 cards (blackhole_quietbox with 2 chips), DP=2, Llama-3.2-1B, 32 users per card (the shape of the seen
    point bh2_llama3.1-8b_b64_dp2, issue 17t2). tt-metal's Generator (models/tt_transformers/tt/generator.py,
    stored version 000ec121) launches every submesh's decode trace with ``execute_trace(..., blocking=False)`` (the
    cards compute at the same time), then ``read_decode_output`` loops over the submeshes, each
    ``process_output_decode`` a blocking ``ttnn.to_torch``: the host reads 2 x 32 x 128,256 x 2 B = 16,416,768 B per
    step one card after the other, although each card has a PCIe link of its own (chips.host_links 0), 6.3631 ms at
    2.58 GB/s. So the DP=2 step is exactly one card's batch-32 step plus one more 8,208,384 B read (3.1815 ms), in
    both simulators."""
    data = yaml.safe_load((CONF / "chip" / "blackhole_quietbox.yaml").read_text())
    data["chips"].update(count=2, grid=[1, 2], parallelism="dp", dp=2)
    stack = load_stack("tt_transformers")
    bh2 = apply_stack(chip_from_dict(data), stack)
    assert bh2.chips.host_links == 0  # one PCIe link per card

    def llama(batch: int):
        return build_model(ModelConfig("llama3_2_1b", batch=batch, kv_len=128))

    dp2 = compile_graph(llama(64), bh2, SEQ, rebuild=llama)
    assert isinstance(dp2, Program) and dict(dp2.meta["parallel_degrees"]) == {"dp": 2}
    assert dp2.meta["host_logits_bytes"] == 2 * 32 * 128_256 * 2 == 16_416_768
    assert host_readback_s(dp2) == pytest.approx(16_416_768 / 2.58e9, rel=1e-12)
    one = apply_stack(chip_from_dict(yaml.safe_load((CONF / "chip" / "blackhole_p150.yaml").read_text())), stack)
    single = compile_graph(llama(32), one, SEQ)
    assert isinstance(single, Program) and single.meta["host_logits_bytes"] == 8_208_384
    for sim in ("analytic", "event"):
        extra = simulate(dp2, sim).latency_s - simulate(single, sim).latency_s
        assert extra == pytest.approx(8_208_384 / 2.58e9, rel=1e-9)
