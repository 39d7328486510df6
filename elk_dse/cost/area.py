"""A first silicon-area proxy (mm^2), the cost objective until the area/energy model of issue 6 lands.

Coefficients are round figures for a 7 nm-class process, not calibrated: SRAM ~0.45 mm^2/MiB with periphery
(TSMC N7 high-density bit cell 0.027 um^2, about half the macro is bit cells), ~0.0015 mm^2 per fp16 MAC,
~0.0005 mm^2 per vector lane, ~0.05 mm^2 per core for router and control, ~15 mm^2 of PHY per HBM stack
(counted as one stack per 8 channels), ~2 mm^2 per chip-to-chip link PHY. Measured: the IPU MK2 description
gives ~630 mm^2 against the published 823 mm^2 (the proxy leaves out exchange wiring, IO and pads).
"""

from __future__ import annotations

from elk_dse.hw.chip import MIB, Chip

SRAM_MM2_PER_MIB = 0.45
MAC_MM2 = 0.0015
VECTOR_LANE_MM2 = 0.0005
ROUTER_MM2_PER_CORE = 0.05
HBM_PHY_MM2_PER_STACK = 15.0
CHANNELS_PER_STACK = 8
CHIP_LINK_PHY_MM2 = 2.0


def area_proxy_mm2(chip: Chip) -> float:
    """Silicon area proxy of the whole system (all chips), mm^2."""
    core = (chip.cores.sram_bytes / MIB * SRAM_MM2_PER_MIB + chip.cores.macs_per_cycle * MAC_MM2
            + chip.cores.vector_lanes * VECTOR_LANE_MM2 + ROUTER_MM2_PER_CORE)
    per_chip = core * chip.cores_per_chip
    if chip.hbm is not None:
        stacks = -(-chip.hbm.channels // CHANNELS_PER_STACK)
        per_chip += stacks * HBM_PHY_MM2_PER_STACK
    if chip.num_chips > 1:
        per_chip += CHIP_LINK_PHY_MM2 * (2 if chip.chips.topology == "ring" else chip.num_chips - 1)
    return per_chip * chip.num_chips
