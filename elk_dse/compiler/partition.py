"""Spatial partitions and the streaming fallback.

``enumerate_spatial`` lists every combination of per-dim core factors (powers of two and divisors of the core
count) whose product fits the cores; T10 plans (t10.py) build on it. ``stream_plan`` is the fallback when no
compute-shift plan fits SRAM: the operator is tiled into sequential passes over its output dims, each core
holding every sub-tensor its tile touches (replicated), and its tensors stream through HBM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from elk_dse.cost.core_models import core_model
from elk_dse.cost.decode_attention import decode_attention_shape, kernel_cycles
from elk_dse.cost.network import cross_chip_fraction, remote_fraction
from elk_dse.cost.op_time import exec_time, load_time_s
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import HBM_ROLES, Operator, Window
from elk_dse.program import OpWork, Plan

MAX_CANDIDATES = 400_000


@dataclass(frozen=True)
class PlanChoice:
    """The chosen plan of an operator and its resource demands (before cross-operator spill fix-ups)."""

    plan: Plan
    work: OpWork
    seconds: float


@dataclass(frozen=True)
class NoFit:
    """No plan fits the budget; ``min_bytes_per_core`` is the smallest footprint any candidate needs."""

    min_bytes_per_core: float
    budget_bytes_per_core: float


def _window_kernel_dims(op: Operator) -> set[str]:
    dims: set[str] = set()
    for t in (*op.inputs, op.output):
        dims.update(a.kernel for a in t.axes if isinstance(a, Window))
    return dims


@lru_cache(maxsize=4096)
def _factor_tuple(length: int, num_cores: int) -> tuple[int, ...]:
    limit = min(length, num_cores)
    cands = {1 << i for i in range(int(math.log2(limit)) + 1)}
    cands.update(d for d in range(1, limit + 1) if num_cores % d == 0)
    if length <= num_cores:
        cands.add(length)
    return tuple(sorted(cands))


def candidate_factors(length: int, num_cores: int) -> np.ndarray:
    """Split factors for a dim of ``length``: powers of two and divisors of the core count, <= both."""
    return np.array(_factor_tuple(length, num_cores), dtype=np.int64)


def enumerate_spatial(op: Operator, num_cores: int) -> np.ndarray:
    """All factor combinations (plans x dims) with product <= num_cores; kernel-window dims stay whole."""
    fixed = _window_kernel_dims(op)
    plans = np.ones((1, 0), dtype=np.int64)
    for d, length in op.dims:
        f = np.array([1]) if d in fixed else candidate_factors(length, num_cores)
        prod = plans.prod(axis=1)
        grid = np.repeat(plans, len(f), axis=0)
        col = np.tile(f, len(plans))
        keep = np.repeat(prod, len(f)) * col <= num_cores
        plans = np.concatenate([grid[keep], col[keep, None]], axis=1)
        if len(plans) > MAX_CANDIDATES:
            # Keep the plans using the most cores: under-used chips are never the fastest here.
            order = np.argsort(-plans.prod(axis=1), kind="stable")[:MAX_CANDIDATES]
            plans = plans[np.sort(order)]
    return plans


def _tiles(t, factors: dict[str, np.ndarray]) -> np.ndarray:
    """Distinct blocks of tensor t under the split: product of the factors of the dims indexing it."""
    n = np.ones_like(next(iter(factors.values())))
    for d in t.dim_names:
        n = n * factors[d]
    return n


def cost_plans(op: Operator, chip: Chip, factors: np.ndarray, pinned_weights: bool,
               passes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Memory per core and resource demands of every plan (rows of ``factors``), vectorized.

    ``pinned_weights``: weights and KV cache sit on chip (no HBM) and are copied over the network to the
    cores that need them; otherwise they are read from HBM. ``passes`` (rows x dims, 1 = whole dim) cuts each
    core's block into sequential sub-blocks, like a tiled loop: everything then streams through HBM, and a
    tensor is re-read once for every pass over a dim that does not index it.
    """
    names = [d for d, _ in op.dims]
    rows = len(factors)
    f = {d: factors[:, i] for i, d in enumerate(names)}
    sub = {d: -(-n // f[d]) for d, n in op.dims}
    streamed = passes is not None
    if passes is not None:
        pf = {d: passes[:, i] for i, d in enumerate(names)}
        per_pass = {d: -(-sub[d] // pf[d]) for d in names}
        num_passes = passes.prod(axis=1).astype(np.float64)
    else:
        per_pass, num_passes = sub, np.ones(rows)
    cores_used = factors.prod(axis=1).astype(np.float64)
    remote = remote_fraction(chip)

    mem = np.zeros(rows)
    noc = np.zeros(rows)
    max_core = np.zeros(rows)
    hbm_read = np.zeros(rows)
    hbm_write = np.zeros(rows)
    delivered = np.zeros(rows)
    for t in (*op.inputs, op.output):
        mem += t.nbytes(per_pass) * np.ones(rows)
        if t is op.output:
            if op.in_place_input >= 0:  # issue 17j: each pass's output overwrites that input's pass block
                mem -= np.minimum(t.nbytes(per_pass), op.inputs[op.in_place_input].nbytes(per_pass)) * np.ones(rows)
            continue
        rereads = np.ones(rows)
        if streamed:
            for d in names:
                if d not in t.dim_names:
                    rereads = rereads * pf[d]
        moved = t.nbytes(sub) * cores_used * rereads  # every core receives its block, once per re-read
        if t.role in HBM_ROLES and pinned_weights:
            noc += moved * remote
            max_core += t.nbytes(sub) * rereads * remote
        elif t.role in HBM_ROLES or streamed:
            hbm_read += op.tensor_bytes(t) * rereads
            delivered += moved
        else:
            noc += moved * remote
            max_core += t.nbytes(sub) * remote
    out = op.output
    if (out.role in HBM_ROLES and not pinned_weights) or (streamed and out.role not in HBM_ROLES):
        hbm_write += op.tensor_bytes(out)
    reduction = np.ones(rows)
    for d in op.reduction_dims:
        reduction = reduction * f[d]
    partial = out.nbytes(sub) * (reduction - 1) / reduction
    noc += partial * cores_used
    max_core += partial
    barriers = (1 + (reduction > 1)) * num_passes

    cm = core_model(chip.cores, chip.clock_hz)
    cycles = np.maximum(cm.cycles(op, per_pass) * num_passes,  # the stack's decode-attention kernel: a floor
                        kernel_cycles(chip, decode_attention_shape(op)))
    return {
        "mem": mem, "noc": noc, "max_core": max_core, "hbm_read": hbm_read, "hbm_write": hbm_write,
        "delivered": delivered, "cycles": cycles, "barriers": barriers, "cores_used": cores_used,
    }


def work_arrays(chip: Chip, c: dict[str, np.ndarray]) -> SimpleNamespace:
    """Resource demands of costed streaming plans in the attribute form of ``program.OpWork``."""
    n = len(c["mem"])
    zeros = np.zeros(n)
    return SimpleNamespace(
        compute_cycles=c["cycles"], steps=np.ones(n), shift_bytes=zeros, shift_core_bytes=zeros,
        shift_link_bytes=zeros, shift_cross_bytes=zeros, overlap=np.zeros(n, dtype=bool), warm_bytes=zeros,
        warm_core_bytes=zeros, warm_link_bytes=zeros, warm_cross_bytes=zeros, warm_maxlink_bytes=zeros,
        shift_maxlink_bytes=zeros, noc_bytes=c["noc"],
        noc_max_core_bytes=c["max_core"], chip_link_bytes=c["noc"] * cross_chip_fraction(chip),
        hbm_read_bytes=c["hbm_read"], hbm_write_bytes=c["hbm_write"], hbm_delivered_bytes=c["delivered"],
        barriers=c["barriers"], stream_passes=c.get("stream_passes", np.ones(n)))


def _seconds(chip: Chip, c: dict[str, np.ndarray]) -> np.ndarray:
    w = work_arrays(chip, c)
    return exec_time(chip, w).total_s + load_time_s(chip, w)


STREAM_PLANS = 64  # spatial plans (the fastest unconstrained ones) tried with passes
MAX_PASSES_PER_DIM = 1 << 12


def _pass_grid(op: Operator, sub_max: dict[str, int]) -> np.ndarray:
    """Pass-factor combinations (combos x dims): powers of two over output dims, 1 elsewhere."""
    grid = np.ones((1, 0), dtype=np.int64)
    for d, _ in op.dims:
        if d in op.output.dim_names and sub_max[d] > 1:
            top = min(sub_max[d], MAX_PASSES_PER_DIM)
            p = np.array([1 << i for i in range(int(math.log2(top)) + 2) if (1 << i) < 2 * top])
        else:
            p = np.array([1])
        grid = np.concatenate([np.repeat(grid, len(p), axis=0), np.tile(p, len(grid))[:, None]], axis=1)
    return grid[grid.prod(axis=1) > 1]


def stream_plan(op: Operator, chip: Chip, budget_bytes_per_core: float, pinned_weights: bool) -> PlanChoice | NoFit:
    """The fastest tiled (multi-pass) plan of ``op`` that fits ``budget_bytes_per_core``, its tensors
    streaming through HBM; NoFit without HBM or when even the smallest tile does not fit.

    Used when no compute-shift plan fits. Ties go to less memory, then the first enumerated.
    """
    factors = enumerate_spatial(op, chip.num_cores)
    c = cost_plans(op, chip, factors, pinned_weights)
    if chip.hbm is None:
        return NoFit(float(c["mem"].min()), budget_bytes_per_core)  # nowhere to stream to
    seconds = _seconds(chip, c)
    best = np.argsort(seconds, kind="stable")[:STREAM_PLANS]
    spatial = factors[best]
    sub_max = {d: int(-(-n // spatial[:, k].min())) for k, (d, n) in enumerate(op.dims)}
    grid = _pass_grid(op, sub_max)
    if len(grid) == 0:
        return NoFit(float(c["mem"].min()), budget_bytes_per_core)
    rep_f = np.repeat(spatial, len(grid), axis=0)
    rep_p = np.tile(grid, (len(spatial), 1))
    cp = double_buffered(cost_plans(op, chip, rep_f, pinned_weights, rep_p), rep_p)
    rep_f, rep_p = np.concatenate([rep_f, rep_f]), np.concatenate([rep_p, rep_p])
    ok = cp["mem"] <= budget_bytes_per_core
    if not ok.any():
        return NoFit(float(min(cp["mem"].min(), c["mem"].min())), budget_bytes_per_core)
    s = np.where(ok, _seconds(chip, cp), np.inf)
    i = int(np.lexsort((np.arange(len(s)), cp["mem"], s))[0])
    names = [d for d, _ in op.dims]
    plan = Plan(spatial=tuple((d, int(rep_f[i, k])) for k, d in enumerate(names) if rep_f[i, k] > 1),
                cores_used=int(cp["cores_used"][i]), sram_bytes_per_core=int(cp["mem"][i]),
                passes=tuple((d, int(rep_p[i, k])) for k, d in enumerate(names) if rep_p[i, k] > 1))
    noc = float(cp["noc"][i])
    work = OpWork(
        compute_cycles=float(cp["cycles"][i]), noc_bytes=noc, noc_max_core_bytes=float(cp["max_core"][i]),
        chip_link_bytes=noc * cross_chip_fraction(chip), hbm_read_bytes=float(cp["hbm_read"][i]),
        hbm_write_bytes=float(cp["hbm_write"][i]), hbm_delivered_bytes=float(cp["delivered"][i]),
        barriers=int(cp["barriers"][i]), stream_passes=int(cp["stream_passes"][i]),
    )
    return PlanChoice(plan, work, float(s[i]))


def double_buffered(c: dict[str, np.ndarray], passes: np.ndarray) -> dict[str, np.ndarray]:
    """The costed multi-pass plans ``c`` (rows of ``passes``) followed by the same plans double-buffered: a
    second buffer for every tensor of a pass (twice the SRAM), so that pass i+1's data streams from HBM and
    pass i-1's output drains while pass i computes (``OpWork.stream_passes``; the time rule is
    cost/op_time.ExecTime.body_s). The compiler keeps whichever is fastest in the budget; at equal time the
    single buffer wins on memory."""
    single = {**c, "stream_passes": np.ones(len(passes))}
    double = {**c, "mem": 2.0 * c["mem"], "stream_passes": passes.prod(axis=1).astype(np.float64)}
    return {k: np.concatenate([single[k], double[k]]) for k in single}
