"""Silicon area (mm^2) and static power (W) of a chip, from hw/tech.py (area) and hw/energy.py (leakage).

Area per die: cores x (SRAM + matrix MACs + vector lanes + core base + router) + HBM PHYs (one stack per 8
channels) + chip-to-chip PHYs + pads and misc. The energy of a run is costed per access in cost/energy.py.
"""

from __future__ import annotations

from elk_dse.hw.chip import MIB, Chip
from elk_dse.hw.tech import TECH_NODES

CHANNELS_PER_STACK = 8


def die_area_mm2(chip: Chip) -> float:
    """Area of one die (chip), mm^2."""
    t = TECH_NODES[chip.process]
    core = (chip.cores.sram_bytes / MIB * t.sram_mm2_per_mib + chip.cores.macs_per_cycle * t.mac_mm2
            + chip.cores.vector_lanes * t.vector_lane_mm2 + t.core_base_mm2 + t.router_mm2)
    area = core * chip.cores_per_chip + t.die_misc_mm2
    if chip.hbm is not None:
        area += -(-chip.hbm.channels // CHANNELS_PER_STACK) * t.hbm_phy_mm2_per_stack
    if chip.num_chips > 1:
        area += t.chip_link_phy_mm2 * chip_link_phys_per_die(chip)
    return area


def chip_link_phys_per_die(chip: Chip) -> float:
    """Chip-to-chip link PHYs on one die, from the chips' topology (``Topology.phys_per_node``): 2 on a ring,
    one per other chip all_to_all, and the mean number of neighbours on a mesh or torus of chips (corner
    chips of a 2x4 mesh have 2, inner ones 3)."""
    return chip.chip_topology.phys_per_node()


def area_mm2(chip: Chip) -> float:
    """Silicon area of the whole system (all dies), mm^2."""
    return die_area_mm2(chip) * chip.num_chips


def area_proxy_mm2(chip: Chip) -> float:
    """Kept for sweep folders written before the area model: now the same as :func:`area_mm2`."""
    return area_mm2(chip)


def sram_area_mm2(chip: Chip) -> float:
    """Silicon of the cores' SRAM macros, whole system, mm^2 (part of :func:`area_mm2`)."""
    return chip.total_sram_bytes / MIB * TECH_NODES[chip.process].sram_mm2_per_mib


def static_power_w(chip: Chip) -> float:
    """Leakage and always-on power of the whole system, W: non-SRAM silicon x ``leakage_w_per_mm2`` + SRAM MiB x
    ``sram_leakage_w_per_mib`` (chip.energy_table; hw/energy.py)."""
    t = chip.energy_table
    return ((area_mm2(chip) - sram_area_mm2(chip)) * t.leakage_w_per_mm2
            + chip.total_sram_bytes / MIB * t.sram_leakage_w_per_mib)
