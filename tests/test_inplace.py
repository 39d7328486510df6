"""In-place outputs (issue 17j, compiler/inplace.py): which operators may write over a dying input, what that
does to a plan's SRAM, and the sequence-length / batch invariants it restores."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import small_chip_dict
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_dse.compiler.inplace import dying_inputs, in_place_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.compiler.t10 import plan_table
from elk_dse.evaluate import DesignPoint, evaluate, evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import load_stack
from elk_dse.ir.graph import Operator, Role, Tensor
from elk_dse.models import ModelConfig, build_model, model_config_from_dict
from elk_dse.models.encoders import bert_graph
from elk_dse.models.transformer import TransformerSpec
from elk_dse.validation.suite import chip_data


def _ops(graph, layer: str) -> dict[str, Operator]:
    return {op.name: op for op in next(la for la in graph.layers if la.name == layer).ops}


def test_bert_marks_exactly_the_operators_whose_input_dies_with_them():
    chip = chip_from_dict(small_chip_dict())
    g = in_place_graph(build_model(ModelConfig("bert_base", phase="prefill", batch=2, seq_len=64, dtype="bf16")), chip)
    enc = _ops(g, "encoder")
    # The scores die in the softmax, h in its norm, the fc1 output in the GELU; the residual adds read x (the
    # layer input, last read there) and h_norm (last read there): both die, the first is taken.
    assert enc["attn_softmax"].in_place == "scores"
    assert enc["attn_norm"].in_place == "h" and enc["mlp_norm"].in_place == "h2"
    assert enc["gelu"].in_place == "fc1"  # fc1's output tensor
    assert enc["attn_residual"].in_place == "x" and enc["mlp_residual"].in_place == "h_norm"
    # Matmuls never (their output is not indexed as an input).
    assert all(not enc[n].in_place for n in ("q_proj", "attn_score", "attn_value", "o_proj", "fc1", "fc2"))


def test_pre_ln_norm_keeps_its_input_that_the_residual_reads_later():
    chip = chip_from_dict(small_chip_dict())
    g = in_place_graph(build_model(ModelConfig("llama3_2_1b", phase="prefill", batch=1, seq_len=32, dtype="bf16")),
                       chip)
    dec = next(la for la in g.layers if la.repeat > 1)
    ops = {op.name: op for op in dec.ops}
    assert ops["attn_norm"].in_place == ""  # x is read again by attn_residual
    assert ops["attn_residual"].in_place == "x"  # ... where it dies


def _ew(name: str, out: str, ins: tuple[str, ...]) -> Operator:
    return Operator(name, "elementwise", (("e", 64),), tuple(Tensor(i, ("e",), Role.ACTIVATION) for i in ins),
                    Tensor(out, ("e",), Role.ACTIVATION), 1.0)


def test_dying_inputs_by_hand():
    # a is read at 1 and 3; b at 2 and then re-produced at 3 (so its old value dies at 2); c dies at 3.
    ops = [_ew("p0", "a", ("in",)), _ew("p1", "b", ("a",)), _ew("p2", "c", ("b",)), _ew("p3", "b", ("c", "a"))]
    assert dying_inputs(ops) == [frozenset({"in"}), frozenset(), frozenset({"b"}), frozenset({"c", "a"})]


def test_in_place_must_name_an_input_the_output_can_overwrite():
    x, w = Tensor("x", ("t", "h"), Role.ACTIVATION), Tensor("w", ("h", "o"), Role.WEIGHT)
    with pytest.raises(ValueError, match="in_place"):  # a matmul's output is not indexed as its input
        Operator("mm", "matmul", (("t", 8), ("h", 8), ("o", 8)), (x, w), Tensor("y", ("t", "o"), Role.ACTIVATION),
                 in_place="x")
    with pytest.raises(ValueError, match="in_place"):  # a weight is never overwritten
        Operator("add", "elementwise", (("e", 8),), (Tensor("b", ("e",), Role.WEIGHT),),
                 Tensor("y", ("e",), Role.ACTIVATION), 1.0, in_place="b")


def test_in_place_plan_holds_the_output_in_the_input_block():
    chip = chip_from_dict(small_chip_dict())
    op = _ew("act", "y", ("x",))
    plain, shared = plan_table(op, chip), plan_table(replace(op, in_place="x"), chip)
    # 64 fp16 elements over the same spatial plans: input + output block before, the input block alone after.
    assert len(plain) == len(shared)
    assert (shared.mem_bytes * 2 == plain.mem_bytes).all()


def _bert_large_n150(seq_len: int):
    cfg = model_config_from_dict({"name": "bert_large", "phase": "prefill", "batch": 8, "seq_len": seq_len,
                                  "dtype": "bf16", "formats": {"weights": "bfp8", "activations": "bf16"}})
    point = DesignPoint(chip_from_dict(chip_data("wormhole_n150")), cfg, SchedulerConfig(name="sequential"),
                        stack=load_stack("tt_cnn"))
    return evaluate(point, include_ops=True)


def test_bert_large_softmax_stays_in_l1_past_sequence_448_on_n150():
    """The seen jump (docs/core_models.md, issue 17j): BERT-large b8 on an n150 under tt_cnn. The attention scores
    (8 x 16 x 448^2 bf16 = 51.4 MB, 803 KB per core of the 1,464 KiB L1) fit once, not twice; before the fix the
    softmax held input and output side by side, ran 8 passes through DRAM and the predicted time doubled from
    sequence 384 to 448 (x2.01 for x1.17 the tokens). The vendor keeps them in L1 to sequence 512
    (``attention_softmax_``, in place)."""
    r384, r448 = _bert_large_n150(384), _bert_large_n150(448)
    softmax = [op for op in r448["ops"] if op["name"] == "attn_softmax"]
    assert softmax and all(not op["plan"]["passes"] for op in softmax)
    assert all(op["plan"]["sram_bytes_per_core"] == 8 * 16 * 448 * 448 * 2 // 64 for op in softmax)
    assert r448["latency_s"] / r384["latency_s"] <= (448 / 384) ** 2


# A small encoder on a 16-core chip with room for every operator's activations in place (256 KiB per core):
# the regime where no capacity limit is crossed, so the time must follow the work.
TINY = TransformerSpec(2, 128, 4, 4, 32, 512, 1000, "gelu", "layer", bias=True, post_ln=True)
ROOMY = chip_from_dict(small_chip_dict(cores={"sram_kib": 256}))
PADDING = 1.1  # T10 keeps spatial plans padding up to 10% (compiler/t10.py PADDING_CEILING)


def _tiny_latency(batch: int, seq_len: int) -> float:
    g = bert_graph(ModelConfig("bert_tiny", phase="prefill", batch=batch, seq_len=seq_len, dtype="bf16"), TINY)
    return float(evaluate_graph(g, ROOMY, SchedulerConfig(name="sequential"), include_ops=False)["latency_s"])


@settings(max_examples=20, deadline=None)
@given(st.integers(16, 384), st.integers(1, 96), st.integers(1, 4))
def test_time_never_falls_and_grows_with_the_work_in_sequence_length(s1, extra, batch):
    """Longer sequences never run faster, and at most (s2/s1)^2 slower (attention is quadratic in s; the rest
    is linear), with T10's padding allowance."""
    s2 = min(s1 + extra, 512)
    t1, t2 = _tiny_latency(batch, s1), _tiny_latency(batch, s2)
    assert t2 >= t1 * (1 - 1e-9)
    assert t2 <= t1 * (s2 / s1) ** 2 * PADDING


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.sampled_from([64, 128, 192]))
def test_time_never_falls_and_grows_at_most_linearly_in_batch(b1, extra, seq_len):
    b2 = b1 + extra
    t1, t2 = _tiny_latency(b1, seq_len), _tiny_latency(b2, seq_len)
    assert t2 >= t1 * (1 - 1e-9)
    assert t2 <= t1 * (b2 / b1) * PADDING
