"""Each batch's host input writes and output reads on data-parallel systems (issue 17g, eighth session; chip fields
``chips.host_links`` / ``chips.host_link_gb_s``, stack fields ``host_batch_io`` / ``host_write_gb_per_s`` /
``host_read_gb_per_s``; cost/host_io.py, docs/parallelism.md "Host I/O per batch").

tt-metal's tt_cnn executor writes the next batch's inputs on a second command queue while the device computes and
reads each output on the compute queue after it; chips without a PCIe link of their own share a PCIe chip's link.
Hand counts of the bytes through the busiest host link, the time both simulators add, and its growth with chips."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_paths import CONF

from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.host_io import host_batch_bytes, host_batch_io, host_link_share
from elk_dse.errors import ConfigError
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import ChipLinkSpec, OverheadSpec, chip_from_dict
from elk_dse.hw.stack import apply_stack, load_stack
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Program
from elk_dse.sim import simulate

SEQ = SchedulerConfig(name="sequential")


def _system(name: str, stack: str = "tt_cnn", **chips):
    data = yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())
    if "chips" in data:
        data["chips"].update({"parallelism": "dp", **chips})
    return apply_stack(chip_from_dict(data), load_stack(stack))


def _resnet(batch: int):
    return build_model(ModelConfig("resnet50", batch=batch, phase="prefill", dtype="bfp8"))


def test_bytes_per_copy_by_hand():
    """What the demos' host tensors hold per chip. ResNet-50, 16 images per chip (resnet50_test_infra:
    (16, 3, 224, 224) bfloat16 row-major, ShardTensorToMesh dim 0): 16 x 3 x 224 x 224 x 2 = 4,816,896 B written;
    the 16 x 1,000 logits read in bfloat16: 32,000 B. Sentence-BERT, 8 sentences of 384 tokens (the performant
    runner: input_ids and token_type_ids uint32, attention and extended masks bfloat16, position ids uint32 per
    position): 8 x 384 x (4 + 4 + 2 + 2) + 384 x 4 = 38,400 B written; the pooled 8 x 768 output: 12,288 B read.
    A decoder's decode step has no such input (0)."""
    resnet = build_model(ModelConfig("resnet50", batch=16, phase="prefill", dtype="bfp8"))
    assert host_batch_bytes(resnet) == (4_816_896.0, 32_000.0)
    bert = build_model(ModelConfig("bert_base", batch=8, seq_len=384, phase="prefill"))
    assert host_batch_bytes(bert) == (38_400.0, 12_288.0)
    decode = build_model(ModelConfig("llama3_2_1b", batch=4, kv_len=128))
    assert host_batch_bytes(decode)[0] == 0.0


def test_links_each_chip_shares():
    """ceil(copies / PCIe links): n300 2 chips on 1 link, T3K 8 on 4 (2 each), the TG Galaxy 32 behind 4 gateway
    cards (8 each); unset links = one per chip; fewer copies than links = 1."""
    assert [host_link_share(_system(n), c) for n, c in
            (("wormhole_n300", 2), ("wormhole_t3k", 8), ("wormhole_galaxy", 32))] == [2, 2, 8]
    assert host_link_share(SimpleNamespace(chips=ChipLinkSpec(count=8)), 8) == 1
    assert host_link_share(SimpleNamespace(chips=ChipLinkSpec(count=8, host_links=3)), 8) == 3
    assert host_link_share(SimpleNamespace(chips=ChipLinkSpec(count=8, host_links=4)), 2) == 1


def test_galaxy_resnet50_dp32_hand_count_both_simulators():
    """The TG Galaxy, ResNet-50, 16 images per chip (the seen point galaxy_resnet50_b512_dp32): each of the 4 gateway
    links carries 8 chips' inputs, 8 x 4,816,896 = 38,535,168 B, at min(6.93 GB/s measured ttnn write, 31.5 GB/s
    PCIe 4.0 x16) = 5.5606 ms, and 8 x 32,000 = 256,000 B of outputs at 2.58 GB/s = 0.0992 ms. The write runs beside
    the previous batch's compute (second command queue), so a batch takes max(device + read, write) = the write:
    the device time is about 2.5 ms. Both simulators add the same rule to their own device time."""
    galaxy = _system("wormhole_galaxy")
    assert (galaxy.chips.host_links, galaxy.chips.host_link_gb_s) == (4, 31.5)
    assert (galaxy.overheads.host_batch_io, galaxy.overheads.host_write_gb_per_s,
            galaxy.overheads.host_read_gb_per_s) == ("trace_2cq", 6.93, 2.58)
    graph = build_model(ModelConfig("resnet50", batch=512, phase="prefill", dtype="bfp8"))
    program = compile_graph(graph, galaxy, SEQ, rebuild=_resnet)
    assert isinstance(program, Program)
    assert program.meta["host_batch_io"] == (4_816_896.0, 32_000.0, 32)
    write_s, read_s = 8 * 4_816_896 / 6.93e9, 8 * 32_000 / 2.58e9
    assert write_s == pytest.approx(5.5606e-3, rel=1e-4) and read_s == pytest.approx(9.922e-5, rel=1e-3)
    for sim in ("analytic", "event"):
        device_s = simulate(dataclasses.replace(program, meta={k: v for k, v in program.meta.items()
                                                               if k != "host_batch_io"}), sim).latency_s
        io = host_batch_io(program, device_s)
        assert (io.write_s, io.read_s) == (pytest.approx(write_s, rel=1e-12), pytest.approx(read_s, rel=1e-12))
        assert device_s + read_s < write_s  # write-bound on this system
        assert simulate(program, sim).latency_s == pytest.approx(write_s, rel=1e-9), sim
    out = evaluate_graph(graph, galaxy, SEQ, include_ops=False, rebuild=_resnet)
    assert out["latency_s"] == pytest.approx(write_s, rel=1e-9) and out["latency_s"] >= out["roofline_latency_s"]


def test_n300_and_t3k_inputs_hide_under_compute():
    """n300 (2 chips, 1 link) and T3K (8 chips, 4 links): 2 copies per link, 2 x 4,816,896 B in 1.39 ms, under the
    ~2.5 ms compute: only the read, 2 x 32,000 B at 2.58 GB/s = 24.8 us, is added to the device time."""
    graph = build_model(ModelConfig("resnet50", batch=32, phase="prefill", dtype="bfp8"))
    program = compile_graph(graph, _system("wormhole_n300"), SEQ, rebuild=_resnet)
    assert isinstance(program, Program)
    bare = dataclasses.replace(program, meta={k: v for k, v in program.meta.items() if k != "host_batch_io"})
    device_s = simulate(bare, "analytic").latency_s
    io = host_batch_io(program, device_s)
    assert io.write_s == pytest.approx(2 * 4_816_896 / 6.93e9) and io.write_s < device_s
    assert io.added_s == pytest.approx(2 * 32_000 / 2.58e9, rel=1e-12)
    assert simulate(program, "analytic").latency_s == pytest.approx(device_s + 2 * 32_000 / 2.58e9, rel=1e-12)


def test_stacks_without_host_io_are_unchanged():
    """tt_transformers charges no per-batch host I/O (its decode loop's host reads are the logits, 17t): Falcon 7B
    DP on a T3K records nothing, and a stack switched off records nothing either."""
    t3k = _system("wormhole_t3k", stack="tt_transformers")
    assert t3k.overheads.host_batch_io == ""
    graph = build_model(ModelConfig("resnet50", batch=16, phase="prefill", dtype="bfp8"))
    off = apply_stack(chip_from_dict(yaml.safe_load((CONF / "chip" / "wormhole_n150.yaml").read_text())),
                      dataclasses.replace(load_stack("tt_cnn"), host_batch_io=""))
    for chip in (off,):
        program = compile_graph(graph, chip, SEQ)
        assert isinstance(program, Program) and "host_batch_io" not in program.meta


def test_two_galaxies_one_queue_hand_count_both_simulators():
    """Issue 17g2: two TG Galaxies ("TGG", 64 compute chips) behind one host with 8 gateway PCIe chips (tt-metal
    tests/tt_metal/tt_metal/device/galaxy_fixture.hpp: TGGFixture needs 64 devices and 8 PCIe devices, TGFixture
    32 and 4), so 8 chips per link as on one TG. ResNet-50's ``test_perf_trace`` (models/demos/tgg/resnet50/tests)
    runs one command queue: write, trace and read in order (``trace_1cq``), so the batch takes device + write +
    read: 8 x 4,816,896 B at 6.93 GB/s = 5.5606 ms and 8 x 32,000 B at 2.58 GB/s = 0.0992 ms, 5.6598 ms added in
    both simulators. With the 4 links of one TG (the point as declared) 16 chips share a link: twice the bytes."""
    stack = dataclasses.replace(load_stack("tt_cnn"), host_batch_io="trace_1cq")
    data = yaml.safe_load((CONF / "chip" / "wormhole_galaxy.yaml").read_text())
    data["chips"].update(count=64, grid=[8, 8], parallelism="dp", dp=64, host_links=8)
    tgg = apply_stack(chip_from_dict(data), stack)
    assert (tgg.chips.host_links, tgg.overheads.host_batch_io) == (8, "trace_1cq")
    graph = build_model(ModelConfig("resnet50", batch=1024, phase="prefill", dtype="bfp8"))
    program = compile_graph(graph, tgg, SEQ, rebuild=_resnet)
    assert isinstance(program, Program) and program.meta["host_batch_io"] == (4_816_896.0, 32_000.0, 64)
    write_s, read_s = 8 * 4_816_896 / 6.93e9, 8 * 32_000 / 2.58e9
    assert write_s + read_s == pytest.approx(5.6598e-3, rel=1e-4)
    bare = dataclasses.replace(program, meta={k: v for k, v in program.meta.items() if k != "host_batch_io"})
    for sim in ("analytic", "event"):
        device_s = simulate(bare, sim).latency_s
        io = host_batch_io(program, device_s)
        assert (io.write_s, io.read_s) == (pytest.approx(write_s, rel=1e-12), pytest.approx(read_s, rel=1e-12))
        assert io.added_s == pytest.approx(write_s + read_s, rel=1e-12)
        assert simulate(program, sim).latency_s == pytest.approx(device_s + write_s + read_s, rel=1e-9), sim
    data["chips"]["host_links"] = 4
    one_tg_links = apply_stack(chip_from_dict(data), stack)
    program4 = compile_graph(graph, one_tg_links, SEQ, rebuild=_resnet)
    assert isinstance(program4, Program)
    assert host_batch_io(program4, 0.0).write_s == pytest.approx(2 * write_s, rel=1e-12)


def test_one_queue_adds_what_two_queues_hide():
    """Same bytes and links: one command queue adds write + read; two queues add max(read, write - device). A write
    of 2 ms beside a 3 ms compute: 2cq adds only the 0.2 ms read, 1cq adds 2.2 ms."""
    two = host_batch_io(_fake(2, 1, 2, 1e6, 1e5, link_gb_s=1.0), 3e-3)
    one = host_batch_io(_fake(2, 1, 2, 1e6, 1e5, link_gb_s=1.0, rule="trace_1cq"), 3e-3)
    assert two.added_s == pytest.approx(2e-4) and one.added_s == pytest.approx(2.2e-3)


def _fake(copies: int, links: int, count: int, written: float, read: float, link_gb_s: float = 0.0,
          rule: str = "trace_2cq"):
    overheads = OverheadSpec(host_batch_io=rule, host_write_gb_per_s=6.93, host_read_gb_per_s=2.58)
    system = SimpleNamespace(chips=ChipLinkSpec(count=count, host_links=links, host_link_gb_s=link_gb_s))
    return SimpleNamespace(meta={"host_batch_io": (written, read, copies)}, system=system,
                           chip=SimpleNamespace(overheads=overheads))


@settings(max_examples=60, deadline=None)
@given(links=st.integers(1, 8), extra=st.integers(0, 24), written=st.floats(0, 5e7), read=st.floats(0, 5e6),
       device_s=st.floats(0, 0.02), link_gb_s=st.sampled_from([0.0, 1.0, 31.5]),
       rule=st.sampled_from(["trace_2cq", "trace_1cq"]))
def test_more_chips_on_the_same_links_never_make_a_batch_faster(links, extra, written, read, device_s, link_gb_s,
                                                                rule):
    """Monotone: on the same host links, more data-parallel copies (chips) never make a batch faster per chip; a
    batch never takes less than the device time, nor less than its write or device + read (either rule)."""
    times = []
    for copies in range(links, links + extra + 1):
        io = host_batch_io(_fake(copies, links, copies, written, read, link_gb_s, rule), device_s)
        assert io.added_s >= 0.0
        batch = device_s + io.added_s
        assert batch >= max(device_s + io.read_s, io.write_s) - 1e-15
        times.append(batch)
    assert all(b >= a - 1e-15 for a, b in zip(times, times[1:], strict=False))


def test_link_rate_caps_the_stack_rates():
    """A host link slower than the stack's measured rates bounds the transfer: 1 GB/s PCIe, 2 copies of 1e6 B on
    one link: 2 ms to write (not 2e6 / 6.93e9), 2e5 B read at 1 GB/s = 0.2 ms."""
    io = host_batch_io(_fake(2, 1, 2, 1e6, 1e5, link_gb_s=1.0), 0.0)
    assert io.write_s == pytest.approx(2e-3) and io.read_s == pytest.approx(2e-4)
    assert io.added_s == pytest.approx(max(2e-4, 2e-3))
    assert math.isclose(host_batch_io(_fake(2, 1, 2, 1e6, 1e5), 0.0).write_s, 2e6 / 6.93e9)


def test_bad_fields_fail_in_one_line():
    with pytest.raises(ConfigError, match="host_links"):
        ChipLinkSpec(count=2, host_links=3)
    with pytest.raises(ConfigError, match="host_batch_io"):
        OverheadSpec(host_batch_io="trace_3cq", host_write_gb_per_s=1.0, host_read_gb_per_s=1.0)
    with pytest.raises(ConfigError, match="host_read_gb_per_s"):
        OverheadSpec(host_batch_io="trace_2cq", host_write_gb_per_s=1.0)
