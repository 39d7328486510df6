"""The physical lower bound on latency: no schedule on the chip can beat it.

``roofline_latency_s = max(FLOPs / peak FLOP/s, must-cross HBM bytes / HBM bandwidth)``.

"Must cross" HBM bytes: the weight and KV-cache bytes one pass reads, plus the KV rows it appends, all live in
HBM between passes — except what a schedule could keep pinned in on-chip SRAM across passes, which is at most
the total SRAM of the system. So ``must = max(0, weights_read + kv_read + kv_written - total_sram)``.
Activations never have to cross (they could stay on chip, given infinite cleverness), so they are not counted.
A chip without HBM has must = 0 (the model must fit on chip, or the design point is infeasible).
"""

from __future__ import annotations

from dataclasses import dataclass

from elk_dse.hw.chip import Chip


@dataclass(frozen=True)
class RooflineBound:
    """The bound and its two terms (seconds), and the bytes that must cross HBM."""

    compute_s: float
    hbm_s: float
    must_hbm_bytes: float

    @property
    def latency_s(self) -> float:
        return max(self.compute_s, self.hbm_s)


def roofline_bound(chip: Chip, flops: float, weight_read_bytes: float, kv_read_bytes: float,
                   kv_write_bytes: float) -> RooflineBound:
    """Lower bound for one pass of a workload with the given totals (FLOPs and bytes) on ``chip``."""
    compute_s = flops / chip.peak_flops_per_s
    if chip.hbm is None:
        return RooflineBound(compute_s, 0.0, 0.0)
    must = max(0.0, weight_read_bytes + kv_read_bytes + kv_write_bytes - chip.total_sram_bytes)
    return RooflineBound(compute_s, must / chip.hbm_bytes_per_s, must)
