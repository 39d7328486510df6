"""The first compiler: legal plans that fit SRAM, honest infeasibility, shape-keyed caching, spills counted."""

from __future__ import annotations

import math

import pytest
from conftest import small_chip_dict

from elk_dse.compiler.compile import clear_plan_cache, compile_graph, compile_with_stats
from elk_dse.compiler.partition import cost_plans, enumerate_spatial
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.hw.chip import chip_from_dict
from elk_dse.ir.graph import Graph, Layer, Operator, Role, Tensor
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Infeasible, Program


def mlp_graph(tokens=64, hidden=512, ffn=2048, layers=4) -> Graph:
    up = Operator("up", "matmul", (("t", tokens), ("h", hidden), ("f", ffn)),
                  (Tensor("x", ("t", "h"), Role.ACTIVATION), Tensor("w_up", ("h", "f"), Role.WEIGHT)),
                  Tensor("u", ("t", "f"), Role.ACTIVATION))
    act = Operator("act", "elementwise", (("t", tokens), ("f", ffn)), (Tensor("u", ("t", "f"), Role.ACTIVATION),),
                   Tensor("a", ("t", "f"), Role.ACTIVATION), flops_per_point=4.0)
    down = Operator("down", "matmul", (("t", tokens), ("f", ffn), ("h", hidden)),
                    (Tensor("a", ("t", "f"), Role.ACTIVATION), Tensor("w_down", ("f", "h"), Role.WEIGHT)),
                    Tensor("x", ("t", "h"), Role.ACTIVATION))
    params = 2 * hidden * ffn * 2 * layers
    return Graph("mlp", "prefill", (Layer("block", (up, act, down), repeat=layers),), parameter_bytes=params,
                 batch=1, seq_len=tokens)


def test_every_plan_fits_and_covers_the_iteration_space():
    chip = chip_from_dict(small_chip_dict())
    program = compile_graph(mlp_graph(), chip)
    assert isinstance(program, Program)
    for op in program.ops:
        assert op.plan.sram_bytes_per_core <= chip.sram_bytes_per_core
        factors = dict(op.plan.spatial)
        assert math.prod(factors.values()) == op.plan.cores_used <= chip.num_cores
        for d, n in op.dims:  # blocks of ceil(n / f) cover every point
            f = factors.get(d, 1)
            assert -(-n // f) * f >= n


def test_weights_and_flops_are_conserved_into_the_program():
    chip = chip_from_dict(small_chip_dict())
    g = mlp_graph()
    program = compile_graph(g, chip)
    assert program.flops == pytest.approx(g.flops)
    assert program.weight_bytes == pytest.approx(g.weight_bytes)
    # The sequential baseline reads every weight from HBM once per pass.
    assert program.hbm_bytes >= g.weight_bytes


def test_repeated_layers_are_planned_once():
    chip = chip_from_dict(small_chip_dict())
    clear_plan_cache()
    _, stats = compile_with_stats(mlp_graph(layers=40), chip, SchedulerConfig())
    assert stats.op_instances == 120
    assert stats.plans_computed <= 6  # 3 ops, at most two distinct SRAM budgets each
    _, again = compile_with_stats(mlp_graph(layers=40), chip, SchedulerConfig())
    assert again.plans_computed == 0 and again.plan_cache_hits == 120


def test_llama_layers_share_plans():
    chip = chip_from_dict(small_chip_dict(hbm={"capacity_gib": 64}))
    clear_plan_cache()
    g = build_model(ModelConfig("llama2_13b", batch=4, kv_len=512))
    program, stats = compile_with_stats(g, chip, SchedulerConfig())
    assert isinstance(program, Program)
    unique = len({op.signature for layer in g.layers for op in layer.ops})
    assert stats.op_instances == g.num_op_instances > 400
    assert stats.plans_computed <= 2 * unique


def test_model_too_big_for_hbm_is_infeasible_with_reason():
    chip = chip_from_dict(small_chip_dict(hbm={"capacity_gib": 8}))
    result = compile_graph(build_model(ModelConfig("llama2_7b")), chip)
    assert isinstance(result, Infeasible) and result.reason == "hbm_capacity"
    assert "GiB" in result.detail


def test_model_too_big_for_sram_without_hbm_is_infeasible():
    chip = chip_from_dict({**small_chip_dict(), "hbm": None})
    result = compile_graph(build_model(ModelConfig("llama2_7b")), chip)
    assert isinstance(result, Infeasible) and result.reason == "sram_capacity"


def test_small_model_runs_from_sram_without_hbm():
    chip = chip_from_dict({**small_chip_dict(), "hbm": None})
    program = compile_graph(mlp_graph(layers=2), chip)
    assert isinstance(program, Program)
    assert program.hbm_bytes == 0


def test_activations_that_do_not_fit_spill_to_hbm_both_ways():
    # 4 cores of 64 KiB: a 2048 x 2048 fp16 activation (8 MiB) cannot stay on chip.
    chip = chip_from_dict(small_chip_dict(cores={"count": 4, "grid": [2, 2], "sram_kib": 64}))
    g = mlp_graph(tokens=2048, hidden=256, ffn=2048, layers=1)
    program = compile_graph(g, chip)
    assert isinstance(program, Program)
    act = next(op for op in program.ops if op.name == "act")
    assert act.plan.num_passes > 1
    act_bytes = 2048 * 2048 * 2
    up = next(op for op in program.ops if op.name == "up")
    # up writes u to HBM, act reads u and writes a, down reads a back: every spilled byte both ways.
    assert up.work.hbm_write_bytes >= act_bytes
    assert act.work.hbm_read_bytes >= act_bytes and act.work.hbm_write_bytes >= act_bytes
    down = next(op for op in program.ops if op.name == "down")
    assert down.work.hbm_read_bytes >= act_bytes + g.layers[0].ops[2].bytes_by_role(Role.WEIGHT)


def test_operator_that_cannot_fit_even_streamed_is_infeasible():
    chip = chip_from_dict(small_chip_dict(cores={"count": 4, "grid": [2, 2], "sram_kib": 1}))
    result = compile_graph(mlp_graph(tokens=64, hidden=4096, ffn=4096, layers=1), chip)
    assert isinstance(result, Infeasible) and result.reason == "sram_capacity"
    assert "operator up needs at least" in result.detail and "per core" in result.detail


def test_enumeration_respects_core_count_and_is_vectorized_costed():
    chip = chip_from_dict(small_chip_dict())
    op = mlp_graph().layers[0].ops[0]
    factors = enumerate_spatial(op, chip.num_cores)
    assert (factors.prod(axis=1) <= 16).all() and len(factors) > 20
    c = cost_plans(op, chip, factors, pinned_weights=False)
    assert c["mem"].shape == (len(factors),)
    # Splitting the reduction dim h creates partial sums to reduce; not splitting it creates none.
    h = [d for d, _ in op.dims].index("h")
    assert (c["noc"][factors[:, h] > 1] > 0).all()
