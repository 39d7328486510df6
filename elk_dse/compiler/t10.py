"""T10 compute-shift plans: distributed tensors that rotate instead of being replicated.

A plan has a spatial factor per dim (the operator is cut into one sub-operator per core) and, per input
tensor, a temporal (rotation) factor along one of its dims: the cores of a replica group (cores whose blocks
need the same sub-tensor) each hold 1/f of it and pass the pieces around a ring of f cores, one shift per
change of piece, while the sub-operator runs in steps. Along one dim the factors of the tensors rotating on it
divide each other (the divisibility chain), the dim runs in max(f) steps, and the steps form a loop nest whose
order decides how often a tensor's piece changes.

Tables are costed in hardware-independent units (cycles, bytes, bytes x hops) and cached by the operator's
shape and the core arrangement, so design points that change only link or HBM figures reuse them; turning
them into seconds (cost/op_time.py) is cheap and vectorized.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from elk_dse.compiler.partition import _window_kernel_dims, enumerate_spatial
from elk_dse.cost.core_models import core_model
from elk_dse.cost.decode_attention import decode_attention_shape
from elk_dse.cost.network import ring_hops, ring_link_share
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import HBM_ROLES, Operator, Window

MAX_SPATIAL = 96  # spatial plans kept per operator after pruning (best utilization, then least padding)
UTILIZATION_FLOOR = 0.9  # T10: keep plans using >= 90% of the cores an operator can use
PADDING_CEILING = 1.10  # T10: drop plans that pad away more than 10% (unless nothing else is left)


@dataclass(frozen=True)
class PlanTable:
    """Every candidate plan of one operator on one core arrangement (arrays: one entry per plan).

    Per core unless noted: ``mem_bytes`` held during execution (pieces, x2 for rotating ones as double
    buffers, plus the output block); ``weight_active_bytes`` weight/KV pieces of the active layout;
    ``compute_cycles`` all steps of the busiest core. Totals over cores: ``shift_bytes`` rotated,
    ``shift_link_bytes`` rotated x hops, ``shift_cross_bytes`` rotated across chips, ``act_in_bytes`` /
    ``weight_in_bytes`` initial pieces delivered to cores, ``reduce_bytes`` partial sums reduce-scattered,
    ``warm_*`` the replica copies that turn an aligned idle layout of the weights (each unique piece once, on a
    core that uses it) into the active layout, sent around the replica rings (per core, total, x hops, across
    chips).
    ``padding`` is executed points / true points (>= 1).
    """

    dims: tuple[str, ...]
    tensors: tuple[str, ...]
    factors: np.ndarray
    rot_factor: np.ndarray
    rot_dim: np.ndarray
    order_inner: np.ndarray
    steps: np.ndarray
    cores_used: np.ndarray
    mem_bytes: np.ndarray
    weight_active_bytes: np.ndarray
    compute_cycles: np.ndarray
    shift_bytes: np.ndarray
    shift_core_bytes: np.ndarray
    shift_link_bytes: np.ndarray
    shift_cross_bytes: np.ndarray
    act_in_bytes: np.ndarray
    act_in_core_bytes: np.ndarray
    weight_in_bytes: np.ndarray
    weight_in_core_bytes: np.ndarray
    reduce_bytes: np.ndarray
    reduce_core_bytes: np.ndarray
    warm_bytes: np.ndarray
    warm_core_bytes: np.ndarray
    warm_link_bytes: np.ndarray
    warm_cross_bytes: np.ndarray
    shift_maxlink_bytes: np.ndarray
    warm_maxlink_bytes: np.ndarray
    reduction_factor: np.ndarray
    padding: np.ndarray
    hbm_weight_bytes: float
    kv_write_bytes: float
    act_unique_bytes: float = 0.0
    out_bytes: float = 0.0
    ring_stride: np.ndarray | None = None  # (P, T) core-id distance between ring neighbours of each input
    ring_shift_bytes: np.ndarray | None = None  # (P, T) bytes each core shifts per input, whole operator
    ring_warm_bytes: np.ndarray | None = None  # (P, T) bytes each core receives as warm-up copies
    ring_copies: np.ndarray | None = None  # (P, T) replicas of each piece (the warm-up ring's length)
    shift_events: np.ndarray | None = None  # (P,) piece changes summed over the rotating tensors (shifts x tensors)
    decode_attention: tuple[int, int, int, int] | None = None  # cost/decode_attention.py shape (issue 17s)

    def rings(self, i: int, warm: bool) -> tuple[tuple[str, int, int, float], ...]:
        """The rotation (and, if ``warm``, warm-up) rings of plan i: (kind, stride, length, bytes per core).
        Simulators route these transfers core by core."""
        if not self.tensors:
            return ()
        ring_stride, shift_bytes = self.ring_stride, self.ring_shift_bytes
        warm_bytes, copies = self.ring_warm_bytes, self.ring_copies
        if ring_stride is None or shift_bytes is None or warm_bytes is None or copies is None:
            raise ValueError("this PlanTable has no ring arrays (build it with build_table)")
        out = []
        for j in range(len(self.tensors)):
            stride = int(ring_stride[i, j])
            if self.rot_factor[i, j] > 1 and shift_bytes[i, j] > 0:
                out.append(("shift", stride, int(self.rot_factor[i, j]), float(shift_bytes[i, j])))
            if warm and warm_bytes[i, j] > 0:
                out.append(("warm", stride * int(self.rot_factor[i, j]), int(copies[i, j]),
                            float(warm_bytes[i, j])))
        return tuple(out)

    def __len__(self) -> int:
        return len(self.steps)

    def describe(self, i: int) -> dict:
        """Plan i as plain data: spatial split, rotations, steps, loop order."""
        rot = {}
        for j, name in enumerate(self.tensors):
            if self.rot_factor[i, j] > 1:
                rot[name] = {"dim": self.dims[self.rot_dim[i, j]], "factor": int(self.rot_factor[i, j])}
        return {
            "spatial": {d: int(f) for d, f in zip(self.dims, self.factors[i], strict=True) if f > 1},
            "rotation": rot,
            "steps": int(self.steps[i]),
            "inner_dim": self.dims[self.order_inner[i]] if self.order_inner[i] >= 0 else "",
            "padding": float(self.padding[i]),
        }


@lru_cache(maxsize=4096)
def _temporal_candidates(num_cores: int) -> tuple[int, ...]:
    cands = {1 << i for i in range(1, int(math.log2(max(num_cores, 1))) + 1)}
    cands.update(d for d in range(2, num_cores + 1) if num_cores % d == 0)
    return tuple(sorted(cands))


# The Elk artifact's plan-space rules (Chip.plan_rules == "artifact", set by conventions=paper only), from
# platformxlab/elk@8c6e814 TensorExpression.py: CORE_UTIL_THRESHOLD = 0.9 and DATA_PAD_THRESHOLD = 0.9 (:15-16),
# scaled by a size ratio of the operator (get_util_threshold :294-301, get_pad_threshold :303-313).
ARTIFACT_CORE_UTIL_THRESHOLD = 0.9  # TensorExpression.py:15
ARTIFACT_DATA_PAD_THRESHOLD = 0.9  # TensorExpression.py:16
ARTIFACT_SIZE_RATIO_DIVISOR = 220.0  # TensorExpression.py:297, 308: min(ratio, max(dims) x len(dims) / 220)


def artifact_thresholds(op: Operator, num_cores: int) -> tuple[float, float]:
    """(core-utilization floor, padding floor) of the artifact's planner for ``op`` on ``num_cores`` cores.

    A spatial plan is valid only if cores used / cores >= the first (TensorExpression.py:221-223) and true
    points / padded points >= the second (:228-234). The ratios (:294-313): util = min(prod / (prod + 2 x
    cores), max(dims) x len(dims) / 220) x 0.9; pad = min(prod / (prod + cores), the same bound) x 0.9, where
    prod is the product of the operator's dim lengths."""
    sizes = [n for _, n in op.dims]
    prod = float(np.prod(sizes, dtype=np.float64))
    bound = max(sizes) * len(sizes) / ARTIFACT_SIZE_RATIO_DIVISOR
    util = min(prod / (prod + 2.0 * num_cores), bound) * ARTIFACT_CORE_UTIL_THRESHOLD
    pad = min(prod / (prod + float(num_cores)), bound) * ARTIFACT_DATA_PAD_THRESHOLD
    return util, pad


def _prune_spatial(op: Operator, factors: np.ndarray, num_cores: int, rules: str = "t10") -> np.ndarray:
    used = factors.prod(axis=1)
    sizes = np.array([n for _, n in op.dims])
    padded = (-(-sizes // factors) * factors).prod(axis=1) / float(np.prod(sizes, dtype=np.float64))
    best_used = used.max()
    keep = (used >= UTILIZATION_FLOOR * best_used) & (padded <= PADDING_CEILING)
    if rules == "artifact":  # the artifact's floors replace ours, relative to all cores (not to the best plan)
        util_floor, pad_floor = artifact_thresholds(op, num_cores)
        artifact = (used >= util_floor * num_cores) & (1.0 / padded >= pad_floor)
        keep = artifact if artifact.any() else keep  # nothing passes (a shape its planner refuses): ours
    if not keep.any():
        keep = used >= UTILIZATION_FLOOR * best_used
    idx = np.flatnonzero(keep)
    order = np.lexsort((idx, padded[idx], -used[idx]))
    return factors[idx[order[:MAX_SPATIAL]]]


# --- issue 18e: the artifact's spatial factors (Chip.plan_rules == "artifact", conventions=paper only) ---
ARTIFACT_MAX_SPATIAL = 4 * MAX_SPATIAL  # spatial plans kept per operator, by least per-core compute (see below)


def artifact_factors(op: Operator, num_cores: int, min_used: float) -> np.ndarray:
    """Every spatial plan (plans x dims) of the artifact's planner: a factor per dim of any integer from 1 to the
    dim's length, the product at most ``num_cores`` and at least ``min_used`` (platformxlab/elk@8c6e814
    OpPartitionSearch.py:73-90, ``generateSpatialSearchTreeIterative``: at each dim the factors run from
    floor(cores x threshold / product so far / product of the remaining dims' lengths) up to the dim's length,
    while the product stays within the cores). Kernel-window dims stay whole, as in ours. Enumerated by
    ranges per partial product (vectorized), never as a full grid."""
    fixed = _window_kernel_dims(op)
    lengths = [1 if d in fixed else min(n, num_cores) for d, n in op.dims]
    rest = [float(np.prod(lengths[i + 1:], dtype=np.float64)) for i in range(len(lengths))]
    plans = np.ones((1, 0), dtype=np.int64)
    prod = np.ones(1, dtype=np.int64)
    for i, length in enumerate(lengths):
        lo = np.maximum(1, np.ceil(min_used / (prod * rest[i]) - 1e-9)).astype(np.int64)
        hi = np.minimum(length, num_cores // prod)
        count = np.maximum(hi - lo + 1, 0)
        row = np.repeat(np.arange(len(plans)), count)
        start = np.repeat(lo, count)
        offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        f = start + offset
        plans = np.concatenate([plans[row], f[:, None]], axis=1)
        prod = prod[row] * f
    return plans


def _artifact_spatial(op: Operator, chip: Chip) -> np.ndarray:
    """The artifact's valid spatial plans of ``op`` (any integer factors, its utilization and padding floors,
    TensorExpression.py:216-234). Its planner keeps all of them; ours costs rotation options per spatial plan,
    so it keeps a bounded set: the plans our factors give under the same floors (``_prune_spatial``), plus the
    ARTIFACT_MAX_SPATIAL of least per-core compute among the rest (the core model's cycles of one core's
    block, then padding, then most cores). When no plan passes its floors: ours."""
    num_cores = chip.num_cores
    util_floor, pad_floor = artifact_thresholds(op, num_cores)
    factors = artifact_factors(op, num_cores, util_floor * num_cores)
    sizes = np.array([n for _, n in op.dims])
    if len(factors):
        padded = (-(-sizes // factors) * factors).prod(axis=1) / float(np.prod(sizes, dtype=np.float64))
        factors = factors[1.0 / padded >= pad_floor]
    ours = _prune_spatial(op, enumerate_spatial(op, num_cores), num_cores, "artifact")
    if not len(factors):
        return ours
    used = factors.prod(axis=1)
    padded = (-(-sizes // factors) * factors).prod(axis=1) / float(np.prod(sizes, dtype=np.float64))
    sub = {d: -(-n // factors[:, k]) for k, (d, n) in enumerate(op.dims)}
    cycles = np.asarray(core_model(chip.cores, chip.clock_hz).cycles(op, sub), dtype=np.float64)
    order = np.lexsort((np.arange(len(factors)), -used, padded, cycles))
    extra = factors[order[:ARTIFACT_MAX_SPATIAL]]
    # ours (powers of two, divisors of the cores, under the same floors) first, then the least-compute ones
    both = np.concatenate([ours, extra])
    _, first = np.unique(both, axis=0, return_index=True)
    return both[np.sort(first)]


# --- issue 18h: the artifact's cold layouts (Chip.plan_rules == "artifact", conventions=paper only) ---
@lru_cache(maxsize=65536)
def _divisors(n: int) -> tuple[int, ...]:
    return tuple(d for d in range(1, n + 1) if n % d == 0)


@lru_cache(maxsize=65536)
def min_cold_elems(sub: tuple[int, ...], replicas: int) -> int:
    """Fewest elements per core of a tensor whose per-core block spans ``sub`` (one length per dim) when its
    ``replicas`` copies are split temporally: a part count t_d per dim, t_d <= sub_d, the product dividing
    ``replicas`` (the artifact's temporal factors, TensorExpression.py:736-745, 271), each dim rounded up
    (``get_sub_op_var_sizes``, :323-334)."""
    if not sub:
        return 1
    return min(-(-sub[0] // t) * min_cold_elems(sub[1:], replicas // t)
               for t in _divisors(replicas) if t <= sub[0])


@lru_cache(maxsize=65536)
def min_cold_elems_with(sub: tuple[int, ...], replicas: int, pos: int, factor: int) -> int:
    """``_min_cold_elems`` with the part count on dim ``pos`` a multiple of ``factor`` (a hot plan rotating
    that dim ``factor`` ways must divide its cold layout's split there, TensorExpression.py:85-100); -1 when no
    such split exists; ``pos`` -1: no constraint."""
    if pos < 0:
        return min_cold_elems(sub, replicas)
    rest = sub[:pos] + sub[pos + 1:]
    vals = [-(-sub[pos] // t) * min_cold_elems(rest, replicas // t)
            for t in _divisors(replicas) if t % factor == 0 and t <= sub[pos]]
    return min(vals) if vals else -1


def _plain_dims(tensor) -> list[str]:
    return [a for a in tensor.axes if not isinstance(a, Window)]


_KEY_BITS = 21  # each of stride, length, cores < 2**21 (2,097,152 cores) packs into one int64 key


def _unique_triples(stride: np.ndarray, length: np.ndarray, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(np.stack([stride, length, cores], axis=1), axis=0, return_inverse=True)``, the same rows in
    the same (lexicographic) order, via one packed int64 key per row: np.unique over rows sorts a structured
    view and was ~30% of build_table (issue 17a's profile)."""
    cols = np.stack([np.asarray(stride, dtype=np.int64), np.asarray(length, dtype=np.int64), cores], axis=1)
    if cols.size == 0 or cols.min() < 0 or cols.max() >= (1 << _KEY_BITS):
        return np.unique(cols, axis=0, return_inverse=True)
    key = (cols[:, 0] << (2 * _KEY_BITS)) | (cols[:, 1] << _KEY_BITS) | cols[:, 2]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return cols[first], inverse


def _ring_traffic(chip: Chip, per_core: np.ndarray, cores_used: np.ndarray, stride: np.ndarray,
                  length: np.ndarray, routed: bool = True) -> np.ndarray:
    """(per core, total, total x hops, total across chips, on the busiest link) bytes of ``per_core`` bytes
    sent by every core around rings of ``length`` cores ``stride`` apart, routed on the chip graph.
    ``routed=False``: the busiest link's bytes are 0 (no routes read; see build_table)."""
    triples, inverse = _unique_triples(stride, length, cores_used.astype(np.int64))
    geo = np.array([(*ring_hops(chip, int(s), int(n)),
                     ring_link_share(chip, int(s), int(n), int(c)) if routed else 0.0)
                    for s, n, c in triples]).reshape(-1, 3)
    inverse = inverse.ravel()
    hops, cross, share = geo[inverse, 0], geo[inverse, 1], geo[inverse, 2]
    total = per_core * cores_used
    return np.stack([per_core, total, total * hops, total * cross, per_core * share])


def build_table(op: Operator, chip: Chip, rotation: bool = True, routed: bool = True) -> PlanTable:
    """Enumerate and cost every T10 plan of ``op`` on ``chip``'s cores (vectorized).

    ``rotation=False`` gives the replicate-everything baseline (spatial plans only). ``routed=False`` (issue
    17a, for parallelism=auto's floors only): the same plans with the routed busiest-link bytes
    (``shift_maxlink_bytes``, ``warm_maxlink_bytes``) 0, so that no route of the system is read; those
    columns only enter a max in cost/network.shift_time_s, so every plan's time is at most its routed time.
    """
    names = [d for d, _ in op.dims]
    sizes = dict(op.dims)
    num_cores = chip.num_cores
    if chip.plan_rules == "artifact":
        spatial = _artifact_spatial(op, chip)
    else:
        spatial = _prune_spatial(op, enumerate_spatial(op, num_cores), num_cores, chip.plan_rules)
    S = len(spatial)
    inputs = list(op.inputs)
    T = len(inputs)
    sub_all = -(-np.array([sizes[d] for d in names])[None, :] // spatial)  # (S, D)

    # Expand spatial rows by each input tensor's rotation options, filtering as we go.
    row_s = np.arange(S)
    rot_f = np.ones((S, T), dtype=np.int64)
    rot_d = np.full((S, T), -1, dtype=np.int64)
    temporal = np.array(_temporal_candidates(num_cores), dtype=np.int64) if rotation else np.zeros(0, np.int64)
    for j, t in enumerate(inputs):
        tdims = [names.index(d) for d in t.dim_names]
        replicas = np.ones(S, dtype=np.int64)
        for k, _ in enumerate(names):
            if k not in tdims:
                replicas = replicas * spatial[:, k]
        opts_d = np.array([-1] + [names.index(d) for d in _plain_dims(t) for _ in temporal])
        opts_f = np.array([1] + [int(f) for _ in _plain_dims(t) for f in temporal])
        n = len(opts_d)
        rs = np.repeat(row_s, n)
        od, of = np.tile(opts_d, len(row_s)), np.tile(opts_f, len(row_s))
        rep = replicas[rs]
        sub_on_dim = np.where(od >= 0, sub_all[rs, np.maximum(od, 0)], 1)
        ok = (of == 1) | ((rep % of == 0) & (of <= sub_on_dim))
        # Divisibility chain with tensors already rotating on the same dim.
        for jj in range(j):
            same = (rot_d[np.repeat(np.arange(len(row_s)), n), jj] == od) & (od >= 0)
            other = rot_f[np.repeat(np.arange(len(row_s)), n), jj]
            lo, hi = np.minimum(other, of), np.maximum(other, of)
            ok &= ~same | (hi % lo == 0)
        base = np.repeat(np.arange(len(row_s)), n)[ok]
        row_s = rs[ok]
        rot_f = rot_f[base].copy()
        rot_d = rot_d[base].copy()
        rot_f[:, j] = of[ok]
        rot_d[:, j] = od[ok]

    P = len(row_s)
    f_sp = spatial[row_s]  # (P, D)
    sub = {d: sub_all[row_s, k] for k, d in enumerate(names)}
    cores_used = f_sp.prod(axis=1).astype(np.float64)

    # Steps per dim: the largest factor of the tensors rotating on it.
    steps_d = np.ones((P, len(names)), dtype=np.int64)
    for j in range(T):
        has = rot_d[:, j] >= 0
        dim = np.maximum(rot_d[:, j], 0)
        cur = steps_d[np.arange(P), dim]
        steps_d[np.arange(P), dim] = np.where(has, np.maximum(cur, rot_f[:, j]), cur)
    steps = steps_d.prod(axis=1)
    step_sub = {d: -(-sub[d] // steps_d[:, k]) for k, d in enumerate(names)}
    cm = core_model(chip.cores, chip.clock_hz)
    compute_cycles = cm.cycles(op, step_sub) * steps

    # Loop order: at most two dims carry steps when two inputs rotate on different dims. Try both nestings.
    rot_dims_sorted = np.sort(np.where(rot_d >= 0, rot_d, len(names)), axis=1)
    dim_a = rot_dims_sorted[:, 0]
    dim_b = np.where(T > 1, rot_dims_sorted[:, min(1, T - 1)], len(names))
    two = (dim_b < len(names)) & (dim_a != dim_b)

    piece_bytes = np.zeros((P, T))
    for j, t in enumerate(inputs):
        piece_sizes = dict(sub)
        for k, d in enumerate(names):
            on = rot_d[:, j] == k
            if on.any():
                piece_sizes[d] = np.where(on, -(-sub[d] // np.maximum(rot_f[:, j], 1)), piece_sizes[d])
        piece_bytes[:, j] = t.nbytes(piece_sizes) * np.ones(P)

    def changes(inner: np.ndarray) -> np.ndarray:
        """Piece changes per tensor for a loop nest with ``inner`` the innermost stepped dim."""
        out = np.zeros((P, T))
        for j in range(T):
            f = rot_f[:, j].astype(np.float64)
            d = rot_d[:, j]
            outer_steps = np.ones(P)
            for k in range(len(names)):
                # Dims outside the tensor's rotation dim re-run its full rotation once per iteration.
                is_outer = two & (d >= 0) & (d == inner) & (k != d) & (steps_d[:, k] > 1)
                outer_steps = np.where(is_outer, outer_steps * steps_d[:, k], outer_steps)
            out[:, j] = np.where(f > 1, f * outer_steps - 1, 0.0)
        return out

    ch_b = changes(dim_b)  # dim_b innermost
    ch_a = changes(dim_a)  # dim_a innermost
    vol_b, vol_a = (ch_b * piece_bytes).sum(axis=1), (ch_a * piece_bytes).sum(axis=1)
    use_a = two & (vol_a < vol_b)
    ch = np.where(use_a[:, None], ch_a, ch_b)
    order_inner = np.where(two, np.where(use_a, dim_a, dim_b), np.where(dim_a < len(names), dim_a, -1))

    # Ring geometry: members of a tensor's ring differ along its group's innermost free dim.
    strides = np.ones((P, len(names)), dtype=np.int64)
    for k in range(len(names) - 2, -1, -1):
        strides[:, k] = strides[:, k + 1] * f_sp[:, k + 1]
    shift = np.zeros((5, P))  # per core, total, x hops, across chips, busiest link
    warm = np.zeros((5, P))
    ring_stride = np.ones((P, T), dtype=np.int64)
    ring_shift_bytes = np.zeros((P, T))
    ring_warm_bytes = np.zeros((P, T))
    ring_copies = np.ones((P, T), dtype=np.int64)
    for j, t in enumerate(inputs):
        free = [k for k, d in enumerate(names) if d not in t.dim_names]
        if not free:
            continue
        replicas = np.ones(P, dtype=np.int64)
        stride = np.full(P, np.iinfo(np.int64).max)
        for k in free:
            replicas = replicas * f_sp[:, k]
            stride = np.where(f_sp[:, k] > 1, np.minimum(stride, strides[:, k]), stride)
        stride = np.where(stride == np.iinfo(np.int64).max, 1, stride)
        ring_stride[:, j] = stride
        ring_shift_bytes[:, j] = ch[:, j] * piece_bytes[:, j]
        shift += _ring_traffic(chip, ch[:, j] * piece_bytes[:, j], cores_used, stride, rot_f[:, j], routed)
        if t.role in HBM_ROLES:
            # Warm-up from an aligned idle layout: every weight piece exists once; the other replicas are
            # copied around the ring of cores holding the same piece (stride * f apart, replicas / f of them).
            copies = np.maximum(replicas // np.maximum(rot_f[:, j], 1), 1)
            ring_copies[:, j] = copies
            ring_warm_bytes[:, j] = piece_bytes[:, j] * (1.0 - 1.0 / copies)
            warm += _ring_traffic(chip, piece_bytes[:, j] * (1.0 - 1.0 / copies), cores_used,
                                  stride * rot_f[:, j], copies, routed)
    shift_core, shift_bytes, shift_link, shift_cross, shift_maxlink = shift
    warm_core, warm_total, warm_link, warm_cross, warm_maxlink = warm

    # Memory, initial delivery, reductions.
    mem = np.zeros(P)
    weight_active = np.zeros(P)
    act_in = np.zeros(P)
    act_core = np.zeros(P)
    w_in = np.zeros(P)
    w_core = np.zeros(P)
    for j, t in enumerate(inputs):
        rotating = rot_f[:, j] > 1
        mem += piece_bytes[:, j] * np.where(rotating, 2.0, 1.0)
        if t.role in HBM_ROLES:
            weight_active += piece_bytes[:, j]
            w_in += piece_bytes[:, j] * cores_used
            w_core += piece_bytes[:, j]
        else:
            act_in += piece_bytes[:, j] * cores_used
            act_core += piece_bytes[:, j]
    out_block = op.output.nbytes(sub) * np.ones(P)
    mem += out_block
    shared = op.in_place_input
    if shared >= 0:  # issue 17j: the output overwrites that input's block (held whole: it cannot rotate)
        mem -= np.where(rot_f[:, shared] > 1, 0.0, np.minimum(out_block, piece_bytes[:, shared]))
    reduction = np.ones(P)
    for k, d in enumerate(names):
        if d in op.reduction_dims:
            reduction = reduction * f_sp[:, k]
    partial = out_block * (reduction - 1) / reduction
    true_points = float(np.prod([sizes[d] for d in names], dtype=np.float64))
    padded_points = np.ones(P)
    for k, d in enumerate(names):
        padded_points = padded_points * step_sub[d] * steps_d[:, k]
    padding = padded_points * cores_used / true_points

    weights = [t for t in inputs if t.role in HBM_ROLES]
    return PlanTable(
        dims=tuple(names), tensors=tuple(t.name for t in inputs), factors=f_sp, rot_factor=rot_f, rot_dim=rot_d,
        order_inner=order_inner, steps=steps, cores_used=cores_used, mem_bytes=mem,
        weight_active_bytes=weight_active, compute_cycles=compute_cycles.astype(np.float64),
        shift_bytes=shift_bytes, shift_core_bytes=shift_core, shift_link_bytes=shift_link,
        shift_cross_bytes=shift_cross, act_in_bytes=act_in, act_in_core_bytes=act_core, weight_in_bytes=w_in,
        weight_in_core_bytes=w_core, reduce_bytes=partial * cores_used, reduce_core_bytes=partial,
        reduction_factor=reduction, padding=padding, warm_bytes=warm_total, warm_core_bytes=warm_core,
        warm_link_bytes=warm_link, warm_cross_bytes=warm_cross, shift_maxlink_bytes=shift_maxlink,
        warm_maxlink_bytes=warm_maxlink,
        hbm_weight_bytes=float(sum(op.tensor_bytes(t) for t in weights)),
        kv_write_bytes=float(op.tensor_bytes(op.output)) if op.output.role in HBM_ROLES else 0.0,
        act_unique_bytes=float(sum(op.tensor_bytes(t) for t in inputs if t.role not in HBM_ROLES)),
        out_bytes=float(op.tensor_bytes(op.output)),
        ring_stride=ring_stride, ring_shift_bytes=ring_shift_bytes, ring_warm_bytes=ring_warm_bytes,
        ring_copies=ring_copies, shift_events=ch.sum(axis=1), decode_attention=decode_attention_shape(op),
    )


_TABLES: OrderedDict[tuple, PlanTable] = OrderedDict()
_TABLES_MAX = 4096


def table_key(op: Operator, chip: Chip, rotation: bool) -> tuple:
    """What a plan table depends on: the operator's shape and the core arrangement, not link/HBM figures."""
    return (op.signature, chip.cores, chip.grid, chip.topology.key, chip.num_chips, rotation, chip.plan_rules)


def plan_table(op: Operator, chip: Chip, rotation: bool = True, routed: bool = True) -> PlanTable:
    """The cached plan table of ``op`` for ``chip``'s cores (built on first use); ``routed``: build_table."""
    key = table_key(op, chip, rotation) if routed else (*table_key(op, chip, rotation), "unrouted")
    table = _TABLES.get(key)
    if table is None:
        table = build_table(op, chip, rotation, routed)
        _TABLES[key] = table
        if len(_TABLES) > _TABLES_MAX:
            _TABLES.popitem(last=False)
    else:
        _TABLES.move_to_end(key)
    return table


def clear_tables() -> None:
    """Forget all cached plan tables."""
    _TABLES.clear()
