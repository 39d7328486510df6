"""Training steps (models/training.py) against hand counts: forward, loss, two gradient matmuls per forward
matmul, element-wise gradients, Adam's state traffic, and recomputation."""

from __future__ import annotations

import pytest
from conftest import small_chip_dict
from test_compiler import mlp_graph

from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.compiler.traffic import edges_of
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.ir.graph import Role
from elk_dse.models import ModelConfig, build_model
from elk_dse.models.training import training_graph
from elk_dse.program import Program

T, H, F = 64, 128, 256


def step(recompute=False):
    # Two identical layers (up: t x h -> f, act: 4 FLOPs per element, down: f -> h), fp16.
    return training_graph(mlp_graph(tokens=T, hidden=H, ffn=F, layers=2),
                          ModelConfig("mlp", phase="train", recompute=recompute))


def test_training_flops_by_hand():
    g = step()
    mm = 2 * T * H * F  # one matmul of the block
    forward = 2 * (2 * mm + 4 * T * F)
    loss = 6 * T * H  # softmax cross-entropy and its gradient on the t x h output
    # Layer 2 backward: down dX and dW, act's gradient, up dX and dW. Layer 1: the same, but no dX for up
    # (its input is the model input).
    backward = (4 * mm + 4 * T * F) + (3 * mm + 4 * T * F)
    params = 2 * 2 * H * F
    assert g.flops == forward + loss + backward + 12 * params
    by_layer = {layer.name: sum(op.flops for op in layer.ops) for layer in g.layers}
    assert by_layer == {"forward": forward, "loss": loss, "backward": backward, "optimizer": 12 * params}
    # Every forward matmul has a weight-gradient matmul of its own FLOPs.
    grads = [op for op in g.layers[2].ops if op.output.role == Role.GRADIENT]
    assert len(grads) == 4 and all(op.flops == mm for op in grads)


def test_training_bytes_by_hand():
    g = step()
    w = H * F * 2  # one weight matrix, fp16
    params = 2 * 2 * H * F
    # Forward reads the 4 matrices; the backward re-reads them for dX (3: not up of layer 1); Adam reads all.
    assert g.weight_bytes == 4 * w + 3 * w + params * 2
    assert g.gradient_bytes == 4 * w  # one weight gradient each, written to HBM
    assert g.optimizer_state_bytes == params * 8  # fp32 first and second moments, read
    # Adam per weight matrix: weights and moments written back.
    assert sum(op.output_bytes for op in g.layers[3].ops) == params * (2 + 8)
    assert len(g.layers[3].ops) == 4
    assert g.kv_cache_bytes == 0


def test_recompute_adds_one_forward_and_shortens_live_ranges():
    keep, again = step(), step(recompute=True)
    forward = sum(op.flops for op in keep.layers[0].ops)
    assert again.flops == keep.flops + forward
    assert dict(again.meta)["recomputed_ops"] == 6
    for g, reaches_backward in ((keep, True), (again, False)):
        ops = [op for layer in g.layers for op in layer.ops]
        n_fwd = len(g.layers[0].ops)
        edges = edges_of(ops)
        act = [i for i in range(n_fwd) if ops[i].name == "act"]  # the element-wise op's output per layer
        # Kept: the backward reads the forward's activation; recomputed: only the recomputed copy is read.
        assert all((edges[i].consumers[-1] >= n_fwd + 1) == reaches_backward for i in act)


def test_training_compiles_and_moves_state_traffic():
    chip = chip_from_dict(small_chip_dict(hbm={"capacity_gib": 64}))
    g = step()
    program = compile_graph(g, chip, SchedulerConfig())
    assert isinstance(program, Program)
    adam = [op for op in program.ops if op.name.startswith("adam.")]
    params = 2 * 2 * H * F
    # At least: read weights, gradients and moments; write weights and moments.
    assert sum(op.work.hbm_read_bytes for op in adam) >= params * (2 + 2 + 8)
    assert sum(op.work.hbm_write_bytes for op in adam) >= params * (2 + 8)
    assert program.flops == g.flops


@pytest.mark.parametrize("name", ["llama2_7b", "vit_large", "resnet50"])
def test_zoo_training_step_is_three_forwards(name):
    fwd_cfg = dict(batch=2, seq_len=32)
    g = build_model(ModelConfig(name, phase="train", **fwd_cfg))
    forward = sum(op.flops for op in g.layers[0].ops)
    matmul_fwd = sum(op.flops for op in g.layers[0].ops if op.kind in ("matmul", "conv"))
    matmul_bwd = sum(op.flops for op in g.layers[2].ops if op.kind in ("matmul", "conv"))
    first = g.layers[0].ops[0]  # the model-input op: no input gradient
    no_dx = first.flops if first.kind in ("matmul", "conv") else 0.0
    assert matmul_bwd == 2 * matmul_fwd - no_dx  # two gradient matmuls per forward matmul
    params = dict(g.meta)["params"]
    assert sum(op.flops for op in g.layers[3].ops) == 12 * params
    assert 2.9 * forward < g.flops - 12 * params < 3.1 * forward


def test_training_roofline_counts_each_parameter_once_and_is_not_beaten():
    g = step()
    params = 2 * 2 * H * F
    # Each parameter read once, the fp32 moments read, weights and moments written back.
    assert g.must_weight_bytes == params * 2 + params * 8 + params * (2 + 8)
    assert g.must_weight_bytes < g.weight_bytes + g.optimizer_state_bytes + params * (2 + 8)  # per-use count
    chip = chip_from_dict(small_chip_dict(hbm={"capacity_gib": 64}))
    for recompute in (False, True):
        result = evaluate_graph(step(recompute), chip, SchedulerConfig(), include_ops=False)
        assert result["feasible"] and result["latency_s"] >= result["roofline_latency_s"] > 0
