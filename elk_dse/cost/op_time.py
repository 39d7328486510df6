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

    @property
    def body_s(self):
        c, s = np.asarray(self.compute_s), np.asarray(self.shift_s)
        overlapped = np.maximum(c, s) + np.minimum(c, s) / np.maximum(np.asarray(self.steps), 1)
        return np.where(self.overlap, overlapped, c + s)

    @property
    def total_s(self):
        return self.warm_s + self.noc_s + self.body_s + self.sync_s


def exec_time(chip: Chip, work) -> ExecTime:
    """Execution time of an operator (or of many candidate plans) from its resource demands."""
    compute_s = np.asarray(work.compute_cycles, dtype=np.float64) / chip.clock_hz
    shift_s = shift_time_s(chip, work.shift_bytes, work.shift_core_bytes, work.shift_link_bytes,
                           work.shift_cross_bytes, work.steps, work.shift_maxlink_bytes)
    noc_s = noc_time_s(chip, work.noc_bytes, work.noc_max_core_bytes, work.chip_link_bytes)
    sync_s = op_sync_time_s(chip, work.barriers)  # barriers + dispatch
    warm_s = shift_time_s(chip, work.warm_bytes, work.warm_core_bytes, work.warm_link_bytes, work.warm_cross_bytes,
                          np.ones_like(np.asarray(work.steps)), work.warm_maxlink_bytes)
    return ExecTime(compute_s, shift_s, noc_s, warm_s, sync_s, np.asarray(work.overlap), np.asarray(work.steps))


def load_time_s(chip: Chip, work):
    """Seconds of an operator's HBM phase (reads and writes share the interface)."""
    return hbm_time_s(chip, np.asarray(work.hbm_read_bytes) + np.asarray(work.hbm_write_bytes),
                      work.hbm_delivered_bytes)
