"""Time of one operator's execution and load phases from its resource demands (vectorizable).

``work`` arguments are anything with the attributes of ``program.OpWork`` (an OpWork, or a namespace of numpy
arrays with one entry per candidate plan or per operator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elk_dse.cost.network import hbm_time_s, noc_time_s, op_sync_time_s, shift_time_s
from elk_dse.hw.chip import Chip


@dataclass(frozen=True)
class ExecTime:
    """Execution-phase seconds by part.

    ``warm_s`` (replica copies from an aligned idle layout) and ``noc_s`` (redistribution, warm-up from a
    compact layout, partial-sum reduction) run before/after the compute-shift body;
    in the body, compute and shifts overlap when the core can (then the first step's transfer is exposed).
    """

    compute_s: np.ndarray | float
    shift_s: np.ndarray | float
    noc_s: np.ndarray | float
    warm_s: np.ndarray | float
    sync_s: np.ndarray | float
    overlap: np.ndarray | bool
    steps: np.ndarray | float
    stream_s: np.ndarray | float = 0.0  # HBM time of the passes streamed during execution (after the first)
    stream_passes: np.ndarray | float = 1.0

    @property
    def body_s(self):
        """The compute-shift body; with ``stream_passes`` P > 1 the HBM streaming of passes 2..P runs beside
        the body of passes 1..P-1 (double buffering), and the last pass's body follows its data:
        max(body x (P-1)/P, stream) + body / P. Never below the body, nor below the streamed bytes' time."""
        c, s = np.asarray(self.compute_s), np.asarray(self.shift_s)
        overlapped = np.maximum(c, s) + np.minimum(c, s) / np.maximum(np.asarray(self.steps), 1)
        body = np.where(self.overlap, overlapped, c + s)
        p = np.maximum(np.asarray(self.stream_passes, dtype=np.float64), 1.0)
        streamed = np.maximum(body * (p - 1) / p, np.asarray(self.stream_s)) + body / p
        return np.where(p > 1, streamed, body)

    @property
    def total_s(self):
        return self.warm_s + self.noc_s + self.body_s + self.sync_s


def exec_time(chip: Chip, work) -> ExecTime:
    """Execution time of an operator (or of many candidate plans) from its resource demands."""
    compute_s = np.asarray(work.compute_cycles, dtype=np.float64) / chip.clock_hz
    shift_s = shift_time_s(chip, work.shift_bytes, work.shift_core_bytes, work.shift_link_bytes,
                           work.shift_cross_bytes, work.steps, work.shift_maxlink_bytes)
    noc_s = noc_time_s(chip, work.noc_bytes, work.noc_max_core_bytes, work.chip_link_bytes)
    sync_s = op_sync_time_s(chip, work.barriers, getattr(work, "collective_op", False))  # barriers + dispatch
    warm_s = shift_time_s(chip, work.warm_bytes, work.warm_core_bytes, work.warm_link_bytes, work.warm_cross_bytes,
                          np.ones_like(np.asarray(work.steps)), work.warm_maxlink_bytes)
    passes = stream_passes(work)
    stream_s = _hbm_all_s(chip, work) * (passes - 1) / passes
    return ExecTime(compute_s, shift_s, noc_s, warm_s, sync_s, np.asarray(work.overlap), np.asarray(work.steps),
                    stream_s, passes)


def stream_passes(work) -> np.ndarray:
    """``work.stream_passes`` as floats >= 1 (1 where absent: candidate tables that never stream)."""
    return np.maximum(np.asarray(getattr(work, "stream_passes", 1), dtype=np.float64), 1.0)


def _hbm_all_s(chip: Chip, work):
    return hbm_time_s(chip, np.asarray(work.hbm_read_bytes) + np.asarray(work.hbm_write_bytes),
                      work.hbm_delivered_bytes)


def load_time_s(chip: Chip, work):
    """Seconds of an operator's HBM phase (reads and writes share the interface): all of its HBM traffic, or
    the first pass's share of a plan streamed in ``stream_passes`` double-buffered passes (the transfer time
    is linear in the bytes, so the share of the time is the share of the bytes)."""
    return _hbm_all_s(chip, work) / stream_passes(work)
