"""Process-node coefficients for area, energy and power, each with where it comes from.

These are first, public-source-based estimates, not foundry data. They are calibrated on two published dies
only (tests/test_area_energy.py): Graphcore GC200 (TSMC N7, 823 mm^2) and Cerebras WSE-2 (TSMC N7, 46,225 mm^2).
A chip selects its node with ``process: n7`` (default) or ``n5``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TechNode:
    """Area (mm^2), energy (pJ) and static power (W) coefficients of a process node."""

    name: str
    # SRAM: TSMC N7 high-density bit cell 0.027 um^2 (TSMC, IEDM 2016); macros reach ~50-55% array efficiency
    # with periphery and redundancy -> 8 Mi bits x 0.027 um^2 / 0.52 = 0.435 mm^2 per MiB.
    sram_mm2_per_mib: float
    # SRAM access ~0.1 pJ/bit at 7 nm for small banks (ISSCC 2019 7 nm SRAM papers report 0.05-0.15 pJ/bit).
    sram_pj_per_byte: float
    # An fp16 multiply-accumulate with its pipeline registers: ~0.0025 mm^2 at 7 nm (a 128x128 systolic array
    # of ~33 mm^2 including buffers in TPU-class designs scaled to 7 nm); energy ~0.5 pJ per FLOP
    # (Horowitz, ISSCC 2014: fp16 FMA ~1.5 pJ at 45 nm, scaled ~3x to 7 nm).
    mac_mm2: float
    mac_pj_per_flop: float
    # A vector lane (fp16 ALU + register file slice).
    vector_lane_mm2: float
    # Per core: control, instruction memory, load/store and DMA, plus its router or exchange port. MAC area,
    # core base and router were set (within the ranges above) so that the two calibration dies land within
    # 15%: a fit to 2 points, not an independent validation (docs/area_energy.md).
    core_base_mm2: float
    router_mm2: float
    # On-chip wires and routers: ~0.1 pJ/bit/mm, ~1 mm per hop between cores -> ~0.8 pJ/byte/hop with router.
    noc_pj_per_byte_hop: float
    # HBM2e PHY ~10-15 mm^2 per stack (published HBM2e PHY macros); HBM access ~3.9 pJ/bit (JEDEC/vendor
    # figures for HBM2e, DRAM core + interface).
    hbm_phy_mm2_per_stack: float
    hbm_pj_per_bit: float
    # SerDes chip-to-chip link PHY ~2 mm^2 per link, ~5 pJ/bit (112G-class SerDes publications).
    chip_link_phy_mm2: float
    chip_link_pj_per_bit: float
    # Pads, PLLs, PCIe, misc per die.
    die_misc_mm2: float
    # Leakage and always-on power per mm^2 of logic+SRAM (7 nm: ~0.05 W/mm^2 at nominal voltage).
    static_w_per_mm2: float


TECH_NODES: dict[str, TechNode] = {
    "n7": TechNode(
        name="n7", sram_mm2_per_mib=0.435, sram_pj_per_byte=0.8, mac_mm2=0.0025, mac_pj_per_flop=0.5,
        vector_lane_mm2=0.0008, core_base_mm2=0.015, router_mm2=0.008, noc_pj_per_byte_hop=0.8,
        hbm_phy_mm2_per_stack=12.0, hbm_pj_per_bit=3.9, chip_link_phy_mm2=2.0, chip_link_pj_per_bit=5.0,
        die_misc_mm2=40.0, static_w_per_mm2=0.05),
    # N5: TSMC reports ~1.35x SRAM density (bit cell 0.021 um^2) and ~1.8x logic density over N7, ~20-30% less
    # energy at iso-speed.
    "n5": TechNode(
        name="n5", sram_mm2_per_mib=0.34, sram_pj_per_byte=0.65, mac_mm2=0.0011, mac_pj_per_flop=0.38,
        vector_lane_mm2=0.00045, core_base_mm2=0.011, router_mm2=0.0055, noc_pj_per_byte_hop=0.65,
        hbm_phy_mm2_per_stack=10.0, hbm_pj_per_bit=3.5, chip_link_phy_mm2=1.6, chip_link_pj_per_bit=4.0,
        die_misc_mm2=35.0, static_w_per_mm2=0.06),
}
