"""T10's global memory/time trade-off for workloads that live entirely on chip (no HBM).

Every operator's weights stay on chip between runs in an *idle* layout: either compact (spread over all cores,
no replicas: they must be moved into the active layout before the operator runs, the warm-up) or *hot* (kept in
the active layout: no warm-up, more bytes). While operator i runs, SRAM per core must hold every operator's
idle bytes plus operator i's extra active bytes and the live activations:

    sum_g m_g * idle_g + max_g (active_g - idle_g + live_g) <= SRAM

Greedy (T10): start every operator at its fastest option; while it does not fit, apply the option change that
costs the least time per byte of requirement freed (a change that saves time and frees bytes goes first);
stop at the first state that fits. Identical operator instances of a repeated layer form one group of
multiplicity m_g and move together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elk_dse.compiler.select import plan_options
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import HBM_ROLES, Operator


@dataclass(frozen=True)
class GroupOptions:
    """The options of one group of identical operator instances (arrays over options)."""

    op: Operator
    multiplicity: int
    live_bytes: float
    idle: np.ndarray
    active: np.ndarray
    seconds: np.ndarray
    hot: np.ndarray
    row: np.ndarray  # plan-table row of each option


@dataclass(frozen=True)
class TradeoffResult:
    """Chosen option per group, the resulting requirement and time, and how the greedy got there."""

    choice: np.ndarray
    requirement_bytes: float
    seconds: float
    fits: bool
    moves: int


def group_options(op: Operator, chip: Chip, multiplicity: int, live_bytes: float,
                  rotation: bool = True) -> GroupOptions:
    """Cold (compact idle + warm-up) and hot (idle = active weights) options on the op's frontiers,
    without options that another beats on idle, active and time at once."""
    compact = sum(op.bytes_by_role(r) for r in HBM_ROLES) / chip.num_cores
    cold = plan_options(op, chip, pinned=True, hot=False, rotation=rotation)
    hot = plan_options(op, chip, pinned=True, hot=True, rotation=rotation)
    idle = np.concatenate([np.full(len(cold.index), compact), np.maximum(hot.weight_active_bytes, compact)])
    active = np.concatenate([cold.mem_bytes, hot.mem_bytes])
    seconds = np.concatenate([cold.seconds, hot.seconds])
    is_hot = np.concatenate([np.zeros(len(cold.index), bool), np.ones(len(hot.index), bool)])
    row = np.concatenate([cold.index, hot.index])
    keep = _non_dominated(np.stack([idle, active, seconds], axis=1))
    return GroupOptions(op, multiplicity, live_bytes, idle[keep], active[keep], seconds[keep], is_hot[keep],
                        row[keep])


def _non_dominated(points: np.ndarray) -> np.ndarray:
    n = len(points)
    le = (points[:, None, :] <= points[None, :, :]).all(axis=2)
    lt = (points[:, None, :] < points[None, :, :]).any(axis=2)
    dominated = (le & lt).any(axis=0)
    # Exact duplicates: keep the first.
    same = (points[:, None, :] == points[None, :, :]).all(axis=2) & (np.arange(n)[:, None] < np.arange(n)[None, :])
    return np.flatnonzero(~dominated & ~same.any(axis=0))


def _pad(groups: list[GroupOptions], attr: str, fill: float) -> np.ndarray:
    width = max(len(g.seconds) for g in groups)
    out = np.full((len(groups), width), fill)
    for k, g in enumerate(groups):
        v = getattr(g, attr)
        out[k, : len(v)] = v
    return out


def requirement(groups: list[GroupOptions], choice: np.ndarray) -> float:
    """SRAM bytes per core the choice needs (the left side of the module docstring's inequality)."""
    k = np.arange(len(groups))
    idle, active = _pad(groups, "idle", np.inf)[k, choice], _pad(groups, "active", np.inf)[k, choice]
    live = np.array([g.live_bytes for g in groups])
    m = np.array([g.multiplicity for g in groups], dtype=np.float64)
    return float((m * idle).sum() + (active - idle + live).max())


def total_seconds(groups: list[GroupOptions], choice: np.ndarray) -> float:
    """Sum over all operator instances of the chosen options' seconds."""
    secs = _pad(groups, "seconds", np.inf)[np.arange(len(groups)), choice]
    return float((secs * np.array([g.multiplicity for g in groups])).sum())


def fastest(groups: list[GroupOptions]) -> np.ndarray:
    """Every group at its fastest option (ties: least idle, then least active)."""
    return np.array([int(np.lexsort((g.active, g.idle, g.seconds))[0]) for g in groups])


def smallest(groups: list[GroupOptions]) -> np.ndarray:
    """Every group at the option with the least idle + active footprint (ties: fastest)."""
    return np.array([int(np.lexsort((g.seconds, g.active, g.idle))[0]) for g in groups])


def trade_off(groups: list[GroupOptions], sram_bytes: float) -> TradeoffResult:
    """T10's greedy from the fastest state down to the first state that fits ``sram_bytes`` per core."""
    idle, active = _pad(groups, "idle", np.inf), _pad(groups, "active", np.inf)
    secs = _pad(groups, "seconds", np.inf)
    m = np.array([g.multiplicity for g in groups], dtype=np.float64)[:, None]
    live = np.array([g.live_bytes for g in groups])[:, None]
    k = np.arange(len(groups))
    choice = fastest(groups)
    moves = 0
    while True:
        cur_idle, cur_active, cur_secs = idle[k, choice], active[k, choice], secs[k, choice]
        excess = cur_active - cur_idle + live[:, 0]
        req = float((m[:, 0] * cur_idle).sum() + excess.max())
        if req <= sram_bytes:
            return TradeoffResult(choice, req, total_seconds(groups, choice), True, moves)
        # Requirement after moving group g to option o, for every (g, o) at once.
        top = np.sort(excess)[::-1]
        others_max = np.where(excess[:, None] == top[0], top[1] if len(top) > 1 else -np.inf, top[0])
        new_sum = (m[:, 0] * cur_idle).sum() - m[:, 0] * cur_idle
        with np.errstate(invalid="ignore"):  # padded (missing) options are inf - inf: invalid, masked below
            new_req = new_sum[:, None] + m * idle + np.maximum(others_max, active - idle + live)
        freed = req - new_req
        delta_t = m * (secs - cur_secs[:, None])
        valid = np.isfinite(new_req) & (freed > 1e-9)
        if not valid.any():
            return TradeoffResult(choice, req, total_seconds(groups, choice), False, moves)
        ratio = np.where(valid, delta_t / np.where(valid, freed, 1.0), np.inf)
        g, o = np.unravel_index(int(np.argmin(ratio)), ratio.shape)
        choice = choice.copy()
        choice[g] = o
        moves += 1
