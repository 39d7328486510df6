"""T10 compute-shift plans: coverage, memory, shift volume against a brute-force rotation, frontiers, trade-off."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import yaml
from conftest import small_chip_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elk_dse.compiler.compile import compile_graph, tradeoff_groups
from elk_dse.compiler.partition import NoFit
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.compiler.select import choose_plan, frontier, table_seconds
from elk_dse.compiler.t10 import build_table
from elk_dse.compiler.tradeoff import fastest, requirement, smallest, total_seconds, trade_off
from elk_dse.hw.chip import chip_from_dict
from elk_dse.ir.graph import Operator, Role, Tensor
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Infeasible, Program

ROOT_CONF = __import__("pathlib").Path(__file__).resolve().parents[1] / "conf" / "chip"


def shipped(name):
    return chip_from_dict(yaml.safe_load((ROOT_CONF / f"{name}.yaml").read_text()))


def matmul(m, n, k, a_role=Role.ACTIVATION, b_role=Role.WEIGHT):
    return Operator("mm", "matmul", (("m", m), ("n", n), ("k", k)),
                    (Tensor("a", ("m", "k"), a_role), Tensor("b", ("k", "n"), b_role)),
                    Tensor("c", ("m", "n"), Role.ACTIVATION))


def chip_of(cores, grid, topology="mesh", sram_kib=256):
    return chip_from_dict(small_chip_dict(cores={"count": cores, "grid": grid, "sram_kib": sram_kib},
                                          interconnect={"topology": topology}))


def _steps_by_dim(table, i):
    steps = np.ones(len(table.dims), dtype=int)
    for j in range(len(table.tensors)):
        if table.rot_dim[i, j] >= 0:
            k = table.rot_dim[i, j]
            steps[k] = max(steps[k], table.rot_factor[i, j])
    return steps


def brute_force_shift_bytes(op, table, i) -> float:
    """Walk the plan's loop nest step by step; every change of a core's piece is one shift of that piece."""
    sizes = dict(op.dims)
    sub = {d: -(-sizes[d] // int(f)) for d, f in zip(table.dims, table.factors[i], strict=True)}
    steps = _steps_by_dim(table, i)
    stepped = [k for k in range(len(table.dims)) if steps[k] > 1]
    inner = table.order_inner[i]
    order = [k for k in stepped if k != inner] + ([inner] if inner in stepped else [])
    total = 0.0
    for j, t in enumerate(op.inputs):
        f, k = int(table.rot_factor[i, j]), int(table.rot_dim[i, j])
        if f == 1:
            continue
        piece = dict(sub)
        piece[table.dims[k]] = -(-sub[table.dims[k]] // f)
        changes, last = 0, None
        for idx in itertools.product(*(range(steps[q]) for q in order)):
            pos = dict(zip(order, idx, strict=True))
            p = pos[k] * f // steps[k]
            if last is not None and p != last:
                changes += 1
            last = p
        total += changes * float(t.nbytes(piece)) * float(table.cores_used[i])
    return total


@pytest.mark.parametrize("cores, grid", [(4, [2, 2]), (8, [2, 4]), (6, [2, 3])])
def test_shift_volume_matches_brute_force_rotation(cores, grid):
    chip = chip_of(cores, grid)
    two_dims = 0
    for op in (matmul(8, 12, 16), matmul(5, 7, 9), matmul(16, 4, 32, Role.ACTIVATION, Role.ACTIVATION)):
        table = build_table(op, chip)
        rotating = np.flatnonzero((table.rot_factor > 1).any(axis=1))
        assert len(rotating) > 0
        two_dims += sum(len({int(d) for d in table.rot_dim[i] if d >= 0}) == 2 for i in rotating)
        for i in rotating:
            assert table.shift_bytes[i] == pytest.approx(brute_force_shift_bytes(op, table, i)), table.describe(i)
    assert two_dims > 0, "plans with two rotating dims exercise the loop order"


def test_sub_operators_cover_the_iteration_space_exactly_once():
    chip = chip_of(6, [2, 3])
    op = matmul(5, 7, 9)
    table = build_table(op, chip)
    sizes = dict(op.dims)
    for i in range(0, len(table), max(1, len(table) // 40)):
        f = dict(zip(table.dims, (int(x) for x in table.factors[i]), strict=True))
        sub = {d: -(-sizes[d] // f[d]) for d in table.dims}
        steps = dict(zip(table.dims, _steps_by_dim(table, i), strict=True))
        step_sub = {d: -(-sub[d] // steps[d]) for d in table.dims}
        count = np.zeros([sizes[d] for d in table.dims], dtype=int)
        for core in itertools.product(*(range(f[d]) for d in table.dims)):
            for step in itertools.product(*(range(steps[d]) for d in table.dims)):
                sl = []
                for d, c, s in zip(table.dims, core, step, strict=True):
                    lo = c * sub[d] + s * step_sub[d]
                    hi = min(lo + step_sub[d], (c + 1) * sub[d], sizes[d])
                    sl.append(slice(lo, max(lo, hi)))
                count[tuple(sl)] += 1
        assert (count == 1).all(), table.describe(i)
        executed = math.prod(step_sub[d] * steps[d] * f[d] for d in table.dims)
        assert table.padding[i] == pytest.approx(executed / math.prod(sizes.values()))
        assert table.padding[i] >= 1.0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 2048), n=st.integers(1, 2048), k=st.integers(1, 2048),
       side=st.sampled_from([(4, [2, 2]), (16, [4, 4]), (12, [3, 4]), (64, [8, 8])]),
       topology=st.sampled_from(["mesh", "torus", "ring", "all_to_all"]), budget_kib=st.integers(1, 2048))
def test_returned_plans_fit_and_frontier_is_monotone(m, n, k, side, topology, budget_kib):
    chip = chip_of(side[0], side[1], topology, sram_kib=2048)
    op = matmul(m, n, k)
    choice = choose_plan(op, chip, budget_kib * 1024, pinned=False)
    if not isinstance(choice, NoFit):
        assert choice.plan.sram_bytes_per_core <= budget_kib * 1024
    table = build_table(op, chip)
    seconds, _ = table_seconds(table, chip, pinned=False)
    idx = frontier(table.mem_bytes, seconds)
    assert (np.diff(table.mem_bytes[idx]) > 0).all()
    assert (np.diff(seconds[idx]) < 0).all()
    # Nothing off the frontier is both smaller-or-equal and faster than a frontier plan.
    for i in idx:
        assert not ((table.mem_bytes <= table.mem_bytes[i]) & (seconds < seconds[i])).any()


def test_rotation_saves_memory_over_replication():
    chip = chip_of(16, [4, 4])
    op = matmul(256, 1024, 1024)
    t10, rep = build_table(op, chip), build_table(op, chip, rotation=False)
    ideal = sum(op.tensor_bytes(t) for t in (*op.inputs, op.output)) / 16  # every byte stored exactly once
    assert rep.mem_bytes.min() >= 1.9 * ideal  # replication holds copies
    assert t10.mem_bytes.min() <= 1.2 * ideal  # rotation: one copy plus the pieces' double buffers
    assert (rep.rot_factor == 1).all() and (rep.shift_bytes == 0).all()


def test_on_chip_tradeoff_beats_fastest_and_smallest():
    chip = shipped("ipu_mk2")
    graph = build_model(ModelConfig("bert_large", phase="prefill", batch=8, seq_len=384))
    groups = tradeoff_groups(graph, chip)
    sram = chip.sram_bytes_per_core
    fast, small = fastest(groups), smallest(groups)
    result = trade_off(groups, sram)
    assert result.fits and result.requirement_bytes <= sram
    assert requirement(groups, fast) > sram  # the fastest plans do not fit
    assert requirement(groups, small) <= sram
    assert result.seconds < total_seconds(groups, small)
    assert result.seconds >= total_seconds(groups, fast)


@pytest.mark.parametrize("model, cfg", [("bert_large", {"batch": 8, "seq_len": 384}), ("vit_large", {"batch": 8})])
def test_models_compile_entirely_on_ipu(model, cfg):
    chip = shipped("ipu_mk2")
    program = compile_graph(build_model(ModelConfig(model, phase="prefill", **cfg)), chip)
    assert isinstance(program, Program) and program.hbm_bytes == 0
    assert program.meta["sram_used_bytes_per_core"] <= chip.sram_bytes_per_core
    assert any(op.plan.rotation for op in program.ops)


def test_t10_fits_where_replication_does_not():
    chip = shipped("ipu_mk2")
    graph = build_model(ModelConfig("bert_large", phase="prefill", batch=8, seq_len=384))
    assert isinstance(compile_graph(graph, chip, SchedulerConfig(plans="t10")), Program)
    rep = compile_graph(graph, chip, SchedulerConfig(plans="replicate"))
    assert isinstance(rep, Infeasible) and rep.reason == "sram_capacity"


def test_no_plan_fits_names_operator_and_footprint():
    chip = chip_from_dict({**small_chip_dict(cores={"count": 4, "grid": [2, 2], "sram_kib": 16}), "hbm": None})
    op = Operator("scores", "matmul", (("m", 2048), ("n", 2048), ("k", 64)),
                  (Tensor("q", ("m", "k"), Role.ACTIVATION), Tensor("kt", ("k", "n"), Role.ACTIVATION)),
                  Tensor("s", ("m", "n"), Role.ACTIVATION))
    from elk_dse.ir.graph import Graph, Layer
    graph = Graph("big", "prefill", (Layer("l", (op,)),), parameter_bytes=0)
    result = compile_graph(graph, chip)
    assert isinstance(result, Infeasible) and result.reason == "sram_capacity"
    assert "operator scores needs at least" in result.detail and "SRAM has 16 KiB" in result.detail


def test_tables_are_reused_across_link_and_hbm_changes():
    from elk_dse.compiler.t10 import clear_tables, plan_table

    clear_tables()
    op = matmul(64, 256, 256)
    a = chip_of(16, [4, 4])
    b = chip_from_dict(small_chip_dict(cores={"count": 16, "grid": [4, 4], "sram_kib": 256},
                                       interconnect={"link_bytes_per_cycle": 4, "hop_latency_cycles": 9},
                                       hbm={"bandwidth_gb_s": 3000}))
    c = chip_from_dict(small_chip_dict(cores={"count": 16, "grid": [4, 4], "sram_kib": 256, "matrix_rows": 8}))
    assert plan_table(op, a) is plan_table(op, b)
    assert plan_table(op, a) is not plan_table(op, c)  # a different core changes the compute cycles


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 70), st.integers(0, 70), st.integers(0, 3_000_000)), max_size=40))
def test_packed_unique_triples_equal_numpy_unique_over_rows(rows):
    """build_table's ring geometry dedup (one packed int64 key per row) gives np.unique(axis=0)'s rows, order and
    inverse, also past the packing range (cores >= 2**21 falls back to np.unique over rows)."""
    from elk_dse.compiler.t10 import _unique_triples

    arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
    want, want_inv = np.unique(arr, axis=0, return_inverse=True)
    got, got_inv = _unique_triples(arr[:, 0], arr[:, 1], arr[:, 2])
    assert np.array_equal(got, want)
    assert np.array_equal(np.ravel(got_inv), np.ravel(want_inv))
