"""Time of one operator's execution and load phases from its resource demands (vectorizable)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elk_dse.cost.network import barrier_time_s, hbm_time_s, noc_time_s
from elk_dse.hw.chip import Chip


@dataclass(frozen=True)
class ExecTime:
    """Execution-phase seconds by part; ``total_s`` is their sum (simple plans do not overlap them)."""

    compute_s: np.ndarray | float
    noc_s: np.ndarray | float
    sync_s: np.ndarray | float

    @property
    def total_s(self):
        return self.compute_s + self.noc_s + self.sync_s


def exec_time(chip: Chip, compute_cycles, noc_bytes, noc_max_core_bytes, chip_link_bytes, barriers) -> ExecTime:
    """Execution time of an operator whose busiest core runs ``compute_cycles`` and whose data movement
    between cores is described by the byte counts (see ``cost.network.noc_time_s``)."""
    compute_s = np.asarray(compute_cycles, dtype=np.float64) / chip.clock_hz
    noc_s = noc_time_s(chip, noc_bytes, noc_max_core_bytes, chip_link_bytes)
    sync_s = barrier_time_s(chip, barriers)
    return ExecTime(compute_s, noc_s, sync_s)


def load_time_s(chip: Chip, hbm_bytes, hbm_delivered_bytes):
    """Seconds of an operator's HBM phase (reads and writes share the interface)."""
    return hbm_time_s(chip, hbm_bytes, hbm_delivered_bytes)
