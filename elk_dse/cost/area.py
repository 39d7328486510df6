"""Silicon area (mm^2), energy (J) and power (W) of a chip and a workload run, from hw/tech.py coefficients.

Area per die: cores x (SRAM + matrix MACs + vector lanes + core base + router) + HBM PHYs (one stack per 8
channels) + chip-to-chip PHYs + pads and misc. Energy of one pass: FLOPs x pJ/FLOP + SRAM traffic x pJ/byte +
on-chip bytes x mean hops x pJ/byte/hop + HBM bytes x pJ/bit + chip-link bytes x pJ/bit + static power x time.
SRAM traffic is estimated as every byte that arrives from HBM or the network being written and read once, plus
``SRAM_BYTES_PER_FLOP`` of operand traffic per FLOP (register reuse inside the matrix unit).
"""

from __future__ import annotations

from dataclasses import dataclass

from elk_dse.hw.chip import MIB, Chip
from elk_dse.hw.tech import TECH_NODES

CHANNELS_PER_STACK = 8
SRAM_BYTES_PER_FLOP = 0.25


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


def static_power_w(chip: Chip) -> float:
    """Leakage and always-on power of the whole system, W."""
    return area_mm2(chip) * TECH_NODES[chip.process].static_w_per_mm2


@dataclass(frozen=True)
class Energy:
    """Energy of one pass by part, joules; ``total_j`` sums them."""

    compute_j: float
    sram_j: float
    noc_j: float
    hbm_j: float
    chip_link_j: float
    static_j: float

    @property
    def total_j(self) -> float:
        return self.compute_j + self.sram_j + self.noc_j + self.hbm_j + self.chip_link_j + self.static_j


def run_energy(chip: Chip, flops: float, hbm_bytes: float, noc_bytes: float, chip_link_bytes: float,
               latency_s: float) -> Energy:
    """Energy of one pass of a workload that moved the given bytes and ran ``latency_s`` seconds."""
    t = TECH_NODES[chip.process]
    pj = 1e-12
    sram_bytes = 2 * (hbm_bytes + noc_bytes) + SRAM_BYTES_PER_FLOP * flops
    return Energy(
        compute_j=flops * t.mac_pj_per_flop * pj,
        sram_j=sram_bytes * t.sram_pj_per_byte * pj,
        noc_j=noc_bytes * max(chip.mean_hops, 1.0) * t.noc_pj_per_byte_hop * pj,
        hbm_j=hbm_bytes * 8 * t.hbm_pj_per_bit * pj,
        chip_link_j=chip_link_bytes * 8 * t.chip_link_pj_per_bit * pj,
        static_j=static_power_w(chip) * latency_s,
    )
