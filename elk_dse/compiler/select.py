"""Choosing plans: plan tables -> seconds on a chip -> the fastest plan that fits, and frontiers.

``hot`` means the operator's weights already sit in their active layout (T10's hot idle layout), so no
warm-up moves them; otherwise, on a chip without HBM, they are moved from the compact idle layout over the
network first (the warm-up cost), and on a chip with HBM they stream from HBM into the active layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from elk_dse.compiler.partition import NoFit, PlanChoice, stream_plan
from elk_dse.compiler.t10 import PlanTable, plan_table
from elk_dse.cost.decode_attention import kernel_cycles
from elk_dse.cost.network import remote_fraction
from elk_dse.cost.op_time import exec_time, load_time_s
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import Operator
from elk_dse.program import OpWork, Plan


def table_work(table: PlanTable, chip: Chip, pinned: bool, hot: bool = False,
               preloaded: bool = False) -> SimpleNamespace:
    """Resource demands of every plan of ``table`` on ``chip`` (attribute form of program.OpWork).

    ``preloaded`` (chips with HBM): the weights/KV arrive from HBM in the compact idle layout (each byte
    delivered to one core) and are warmed up into the active layout over the network before execution;
    otherwise they stream from HBM straight into the active layout (replicas delivered as copies).
    """
    remote = remote_fraction(chip)
    n = len(table)
    noc = table.act_in_bytes * remote + table.reduce_bytes
    core = table.act_in_core_bytes * remote + table.reduce_core_bytes
    zeros = np.zeros(n)
    warm = (zeros, zeros, zeros, zeros, zeros)
    if pinned and not hot:  # T10's compact idle layout: spread over all cores, moved over the network
        noc = noc + table.weight_in_bytes * remote
        core = core + table.weight_in_core_bytes * remote
    elif preloaded:  # Elk: loaded aligned (each piece once, where it is used), then replicated in place
        warm = (table.warm_bytes, table.warm_core_bytes, table.warm_link_bytes, table.warm_cross_bytes,
                table.warm_maxlink_bytes)
    bsp = not chip.cores.overlap_compute_comm
    barriers = 1 + (table.reduction_factor > 1) + (table.steps if bsp else 0)
    if chip.plan_rules == "artifact":
        barriers = artifact_barriers(table)
    # Across chips, each chip needs at most one copy of the activations (replicated on chip afterwards) and
    # exchanges at most one copy of the partial sums: cap the evenly-spread estimate by that.
    per_chip_copy = table.act_unique_bytes + np.where(table.reduction_factor > 1, table.out_bytes, 0.0)
    if pinned and not hot:
        per_chip_copy = per_chip_copy + table.hbm_weight_bytes
    cross = np.minimum(noc * (chip.num_chips - 1) / chip.num_chips, per_chip_copy * (chip.num_chips - 1))
    hbm_read = np.full(n, 0.0 if pinned else table.hbm_weight_bytes)
    # The stack's decode-attention kernel (cost/decode_attention.py): its busiest core's cycles are a floor.
    cycles = np.maximum(table.compute_cycles, kernel_cycles(chip, table.decode_attention))
    return SimpleNamespace(
        compute_cycles=cycles, steps=table.steps, shift_bytes=table.shift_bytes,
        shift_core_bytes=table.shift_core_bytes, shift_link_bytes=table.shift_link_bytes,
        shift_cross_bytes=table.shift_cross_bytes, overlap=np.full(n, chip.cores.overlap_compute_comm),
        warm_bytes=warm[0], warm_core_bytes=warm[1], warm_link_bytes=warm[2], warm_cross_bytes=warm[3],
        warm_maxlink_bytes=warm[4], shift_maxlink_bytes=table.shift_maxlink_bytes,
        noc_bytes=noc, noc_max_core_bytes=core, chip_link_bytes=cross, hbm_read_bytes=hbm_read,
        hbm_write_bytes=np.full(n, 0.0 if pinned else table.kv_write_bytes),
        hbm_delivered_bytes=(np.zeros(n) if pinned else np.full(n, table.hbm_weight_bytes) if preloaded
                             else table.weight_in_bytes), barriers=barriers)


# The Elk artifact's sync counts (Chip.plan_rules == "artifact", conventions=paper only), platformxlab/elk@8c6e814
# TensorExpression.py: SYNC_CYCLES x BUFFER_ITERS per shift of each rotating variable (get_sync_shift_time
# :399-407, BUFFER_ITERS = 2 at :22), and partial sums of a reduction split over r cores gathered with one sync
# per replica (get_shuffle_time :409-457: ``gather_time = num_output_replica * SYNC_CYCLES``, 2 syncs at r = 2).
# Each sync is priced as one of our barriers (cost/network.barrier_time_s); the bytes keep our network's price.
ARTIFACT_BUFFER_ITERS = 2  # TensorExpression.py:22


def artifact_barriers(table: PlanTable) -> np.ndarray:
    """Barriers per plan under the artifact's sync counts: one for the operator, one per partial-sum replica
    when the reduction is split (r > 1), and BUFFER_ITERS per shift of each rotating tensor (replacing our one
    barrier per step on a bulk-synchronous core)."""
    if table.shift_events is None:
        raise ValueError("this PlanTable has no shift_events (build it with t10.build_table)")
    r = table.reduction_factor
    return 1 + np.where(r > 1, r, 0) + ARTIFACT_BUFFER_ITERS * table.shift_events


def table_seconds(table: PlanTable, chip: Chip, pinned: bool, hot: bool = False):
    """(seconds per plan including its HBM load, the work namespace)."""
    w = table_work(table, chip, pinned, hot)
    return exec_time(chip, w).total_s + load_time_s(chip, w), w


def frontier(mem_bytes: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Indices of the (memory, time) Pareto frontier, by increasing memory and strictly decreasing time."""
    order = np.lexsort((seconds, mem_bytes))
    best = np.minimum.accumulate(seconds[order])
    prev = np.concatenate([[np.inf], best[:-1]])
    keep = seconds[order] < prev
    return order[keep]


def plan_of(table: PlanTable, i: int) -> Plan:
    """The Plan record of row i."""
    rot = tuple((table.tensors[j], table.dims[table.rot_dim[i, j]], int(table.rot_factor[i, j]))
                for j in range(len(table.tensors)) if table.rot_factor[i, j] > 1)
    return Plan(
        spatial=tuple((d, int(f)) for d, f in zip(table.dims, table.factors[i], strict=True) if f > 1),
        cores_used=int(table.cores_used[i]), sram_bytes_per_core=int(np.ceil(table.mem_bytes[i])),
        rotation=rot, steps=int(table.steps[i]),
        inner_dim=table.dims[table.order_inner[i]] if table.order_inner[i] >= 0 else "",
        padding=float(table.padding[i]))


def work_of(w: SimpleNamespace, i: int, table: PlanTable | None = None) -> OpWork:
    """The OpWork of row i of a work namespace (with the plan's rings when ``table`` is given)."""
    rings = table.rings(i, warm=float(w.warm_bytes[i]) > 0) if table is not None else ()
    return OpWork(
        rings=rings,
        compute_cycles=float(w.compute_cycles[i]), steps=int(w.steps[i]), shift_bytes=float(w.shift_bytes[i]),
        shift_core_bytes=float(w.shift_core_bytes[i]), shift_link_bytes=float(w.shift_link_bytes[i]),
        shift_cross_bytes=float(w.shift_cross_bytes[i]), overlap=bool(w.overlap[i]),
        warm_bytes=float(w.warm_bytes[i]), warm_core_bytes=float(w.warm_core_bytes[i]),
        warm_link_bytes=float(w.warm_link_bytes[i]), warm_cross_bytes=float(w.warm_cross_bytes[i]),
        warm_maxlink_bytes=float(w.warm_maxlink_bytes[i]), shift_maxlink_bytes=float(w.shift_maxlink_bytes[i]),
        noc_bytes=float(w.noc_bytes[i]), noc_max_core_bytes=float(w.noc_max_core_bytes[i]),
        chip_link_bytes=float(w.chip_link_bytes[i]), hbm_read_bytes=float(w.hbm_read_bytes[i]),
        hbm_write_bytes=float(w.hbm_write_bytes[i]), hbm_delivered_bytes=float(w.hbm_delivered_bytes[i]),
        barriers=int(w.barriers[i]))


@dataclass(frozen=True)
class PlanOptions:
    """An operator's frontier on a chip: plans by increasing memory and decreasing time."""

    table: PlanTable
    index: np.ndarray
    mem_bytes: np.ndarray
    weight_active_bytes: np.ndarray
    seconds: np.ndarray
    work: SimpleNamespace


def plan_options(op: Operator, chip: Chip, pinned: bool, hot: bool = False, rotation: bool = True) -> PlanOptions:
    """The (memory per core, seconds) frontier of ``op`` on ``chip``."""
    table = plan_table(op, chip, rotation)
    seconds, w = table_seconds(table, chip, pinned, hot)
    idx = frontier(table.mem_bytes, seconds)
    return PlanOptions(table, idx, table.mem_bytes[idx], table.weight_active_bytes[idx], seconds[idx], w)


def choose_plan(op: Operator, chip: Chip, budget_bytes_per_core: float, pinned: bool, rotation: bool = True,
                hot: bool = False) -> PlanChoice | NoFit:
    """The fastest plan of ``op`` fitting ``budget_bytes_per_core``; the streaming fallback when none does.

    Ties go to fewer cores, then less memory, then the first enumerated (deterministic).
    """
    table = plan_table(op, chip, rotation)
    seconds, w = table_seconds(table, chip, pinned, hot)
    fits = table.mem_bytes <= budget_bytes_per_core
    if fits.any():
        i = int(np.lexsort((np.arange(len(table)), table.mem_bytes, table.cores_used,
                            np.where(fits, seconds, np.inf)))[0])
        return PlanChoice(plan_of(table, i), work_of(w, i, table), float(seconds[i]))
    fallback = stream_plan(op, chip, budget_bytes_per_core, pinned)
    if isinstance(fallback, NoFit):
        return NoFit(min(fallback.min_bytes_per_core, float(table.mem_bytes.min())), budget_bytes_per_core)
    return fallback
