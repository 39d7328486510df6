"""Per-action energies of a chip (Accelergy / ZigZag style): what one MAC, one byte read from a register file
or SRAM bank, one byte moved one on-chip hop, across a chip-to-chip link or to and from HBM costs, and what
leaks per mm^2 of logic and per MiB of SRAM.

Defaults come per process node (:data:`NODE_ENERGY`, each number with its source); every entry can be set in
the chip config under ``energy:`` (e.g. ``chip.energy.hbm_read_pj_per_byte=88``), which replaces the node
default for that action only. :func:`energy_table` resolves a chip's :class:`EnergySpec` into the
:class:`EnergyTable` that ``cost/energy.py`` charges accesses with.

SRAM energy is a function of the bank the core reads and of its port width (CACTI-like scaling, with the
published points it is fitted to in :func:`sram_pj_per_byte`); an explicit ``sram_read_pj_per_byte`` /
``sram_write_pj_per_byte`` overrides it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import cached_property

from elk_dse.errors import ConfigError
from elk_dse.hw.tech import TECH_NODES, TechNode
from elk_dse.ir.formats import FORMAT_BITS
from elk_dse.schema import at_most, in_range

# MAC energy of each numeric format relative to an fp16 MAC (multiply + add), from Horowitz, "Computing's
# energy problem", ISSCC 2014, 45 nm: 8-bit int multiply 0.2 pJ + 8-bit add 0.03 pJ -> int8 MAC 0.23 pJ;
# fp16 multiply 1.1 + add 0.4 = 1.5 pJ; fp32 multiply 3.7 + add 0.9 = 4.6 pJ.
# Ratios carry across nodes better than absolute values. bf16 is taken equal to fp16 (its 8-bit mantissa
# multiplier is smaller, its adder the same width). fp8 (no Horowitz figure: small mantissa multiplier plus
# exponent alignment and normalisation) is taken 1.5x int8 -- an assumption. Block floating point multiplies
# integer mantissas under a shared exponent: bfp8 = int8, bfp4 = 0.4 x int8 (a 4x4 multiplier is ~1/4 the
# 8x8 one; the adder does not shrink) -- assumptions.
MAC_RATIO_TO_FP16: dict[str, float] = {
    "fp32": 4.6 / 1.5, "fp16": 1.0, "bf16": 1.0, "fp8": 1.5 * 0.23 / 1.5, "int8": 0.23 / 1.5,
    "bfp8": 0.23 / 1.5, "bfp4": 0.4 * 0.23 / 1.5,
}
if set(MAC_RATIO_TO_FP16) != set(FORMAT_BITS):  # a new format needs its MAC energy here
    raise RuntimeError("hw/energy.py: MAC_RATIO_TO_FP16 must name every format of ir/formats.py")

# SRAM reference macro the node's per-byte figure is quoted for, and how energy scales away from it.
SRAM_REF_BANK_BYTES = 64 * 1024
SRAM_REF_WIDTH_BYTES = 8
# Share of an access's energy spent per access (row decoder, wordline, sense-amp enable, control) rather than
# per bit (bitlines, sense amps, data path): a wider port spreads it over more bytes. 25% is an assumption in
# the range CACTI reports for 64-bit-wide 32-128 KiB banks.
SRAM_PER_ACCESS_SHARE = 0.25


@dataclass(frozen=True)
class NodeEnergy:
    """Default per-action energies of a process node, pJ (and leakage, W)."""

    mac_fp16_pj: float  # one fp16 multiply-accumulate with its pipeline registers
    rf_pj_per_byte: float  # a PE's operand register file, read or write, per byte
    acc_pj_per_byte: float  # a PE's accumulator (partial sum) register, read or write, per byte
    sram_pj_per_byte: float  # one byte of a 64 KiB, 8-byte-wide SRAM bank (SRAM_REF_*), read or write
    noc_pj_per_byte_hop: float  # one byte over one on-chip link + router
    chip_link_pj_per_byte: float  # one byte over a chip-to-chip SerDes link
    hbm_read_pj_per_byte: float  # DRAM core + interface, per byte read
    hbm_write_pj_per_byte: float
    leakage_w_per_mm2: float  # leakage and always-on power of logic, per mm^2 of non-SRAM silicon
    sram_leakage_w_per_mib: float  # SRAM leakage (bit cells + periphery), per MiB


# Register files per node: Eyeriss (Chen et al., ISCA 2016, Table IV) measures an RF access at ~1x the energy of
# a 16-bit MAC, i.e. ~the energy of a MAC of the access's width: 0.15 pJ/byte at N7 (int8 MAC class); N5 ~20%
# less (TSMC: 20-30% less energy at iso-speed). The operand and accumulator registers are taken alike.
RF_PJ_PER_BYTE: dict[str, float] = {"n7": 0.15, "n5": 0.12}


def _node_energy(t: TechNode) -> NodeEnergy:
    """A node's per-action defaults. All but the register files come from hw/tech.py's coefficients (one place,
    each with its source there): MAC = 2 FLOP x ``mac_pj_per_flop`` (fp16: 1.0 pJ at N7), SRAM
    ``sram_pj_per_byte`` (quoted for a 64 KiB, 8-byte-wide bank), NoC ``noc_pj_per_byte_hop``, chip link and HBM
    8 x their pJ/bit (HBM reads and writes alike), leakage ``static_w_per_mm2`` on logic and the same per mm^2
    on SRAM (x ``sram_mm2_per_mib``), so a die's static power is still its area x ``static_w_per_mm2``."""
    return NodeEnergy(
        mac_fp16_pj=2.0 * t.mac_pj_per_flop, rf_pj_per_byte=RF_PJ_PER_BYTE[t.name],
        acc_pj_per_byte=RF_PJ_PER_BYTE[t.name], sram_pj_per_byte=t.sram_pj_per_byte,
        noc_pj_per_byte_hop=t.noc_pj_per_byte_hop, chip_link_pj_per_byte=8.0 * t.chip_link_pj_per_bit,
        hbm_read_pj_per_byte=8.0 * t.hbm_pj_per_bit, hbm_write_pj_per_byte=8.0 * t.hbm_pj_per_bit,
        leakage_w_per_mm2=t.static_w_per_mm2, sram_leakage_w_per_mib=t.static_w_per_mm2 * t.sram_mm2_per_mib)


NODE_ENERGY: dict[str, NodeEnergy] = {name: _node_energy(t) for name, t in TECH_NODES.items()}


def sram_pj_per_byte(ref_pj_per_byte: float, bank_bytes: float, width_bytes: float) -> float:
    """Energy per byte read or written in an SRAM bank of ``bank_bytes`` with a ``width_bytes``-wide port, pJ.

    Bitline and wordline lengths grow with the side of the array, so energy per bit grows ~sqrt(capacity):
    Horowitz (ISSCC 2014, 45 nm) gives a 64-bit read at 10 pJ from 8 KB, 20 pJ from 32 KB and 100 pJ from 1 MB,
    i.e. x2 for x4 and x10 for x128 (sqrt: x2 and x11.3). ``SRAM_PER_ACCESS_SHARE`` of the reference access
    is paid per access and so per byte falls with width. ``ref_pj_per_byte`` is the figure at
    ``SRAM_REF_BANK_BYTES`` and ``SRAM_REF_WIDTH_BYTES``."""
    size = math.sqrt(bank_bytes / SRAM_REF_BANK_BYTES)
    width = (1.0 - SRAM_PER_ACCESS_SHARE) + SRAM_PER_ACCESS_SHARE * SRAM_REF_WIDTH_BYTES / width_bytes
    return ref_pj_per_byte * size * width


@dataclass(frozen=True)
class EnergySpec:
    """Per-action energy overrides of a chip (``chip.energy.*``); None takes the process node's default.

    MACs, pJ per multiply-accumulate by numeric format (``mac_<format>_pj``); register file operand reads and
    accumulator reads/writes, SRAM reads and writes, on-chip network (per byte per hop), chip-to-chip links,
    HBM reads and writes: pJ per byte. ``sram_bank_kib`` / ``sram_width_bytes``: the SRAM bank a core reads
    (default: its whole scratchpad, at most 256 KiB) and its port width, which set the default SRAM energy.
    Leakage: W per mm^2 of non-SRAM silicon and W per MiB of SRAM. Structure of the matrix unit that sets
    its access counts (cost/energy.py): ``acc_bytes``, the partial-sum width (default twice the widest
    input: 16-bit for int8, 32-bit for fp16), and ``pe_weight_rf_bytes``, the weight register of one PE: the
    k-tiles whose weights it holds at once accumulate without spilling partial sums to SRAM (128 B default,
    within published PE register files: Eyeriss's filter scratchpad is 224 x 16 bit = 448 B, Chen et al.
    ISSCC 2016; a TPU v1 PE holds 2 weights -- set 2 for such an array).
    """

    mac_fp32_pj: float | None = None
    mac_fp16_pj: float | None = None
    mac_bf16_pj: float | None = None
    mac_fp8_pj: float | None = None
    mac_int8_pj: float | None = None
    mac_bfp8_pj: float | None = None
    mac_bfp4_pj: float | None = None
    rf_pj_per_byte: float | None = None
    acc_pj_per_byte: float | None = None
    sram_read_pj_per_byte: float | None = None
    sram_write_pj_per_byte: float | None = None
    sram_bank_kib: float | None = None
    sram_width_bytes: float = 8.0
    acc_bytes: float | None = None
    pe_weight_rf_bytes: float = 128.0
    noc_pj_per_byte_hop: float | None = None
    chip_link_pj_per_byte: float | None = None
    hbm_read_pj_per_byte: float | None = None
    hbm_write_pj_per_byte: float | None = None
    leakage_w_per_mm2: float | None = None
    sram_leakage_w_per_mib: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "sram_bank_kib":
                in_range(f.name, value, 1 / 8, 1_048_576)
            elif f.name == "sram_width_bytes":
                in_range(f.name, value, 1, 4096)
            elif f.name == "acc_bytes":
                in_range(f.name, value, 0.5, 16)
            elif f.name == "pe_weight_rf_bytes":
                in_range(f.name, value, 0.5, 1_048_576)
            elif f.name.endswith("_w_per_mm2") or f.name.endswith("_w_per_mib"):
                if not value >= 0:
                    raise ConfigError(f.name, value, "leakage must be >= 0 W")
                at_most(f.name, value, 100.0, "W")
            else:  # an energy per action, pJ
                if not value >= 0:
                    raise ConfigError(f.name, value, "an energy per action must be >= 0 pJ")
                at_most(f.name, value, 1e6, "pJ")


@dataclass(frozen=True)
class EnergyTable:
    """Resolved per-action energies of one chip: pJ per MAC by format, pJ per byte (per hop for the NoC) and
    leakage in W; what ``cost/energy.py`` charges."""

    mac_pj: tuple[tuple[str, float], ...]
    rf_pj_per_byte: float
    acc_pj_per_byte: float
    sram_read_pj_per_byte: float
    sram_write_pj_per_byte: float
    noc_pj_per_byte_hop: float
    chip_link_pj_per_byte: float
    hbm_read_pj_per_byte: float
    hbm_write_pj_per_byte: float
    leakage_w_per_mm2: float
    sram_leakage_w_per_mib: float

    @cached_property
    def _mac_by_format(self) -> dict[str, float]:
        return dict(self.mac_pj)

    def mac(self, fmt: str) -> float:
        """pJ of one MAC in format ``fmt`` (KeyError for an unknown format: callers pass ir/formats names)."""
        return self._mac_by_format[fmt]

    def to_dict(self) -> dict[str, float]:
        out = {k: v for k, v in asdict(self).items() if k != "mac_pj"}
        out.update({f"mac_{fmt}_pj": v for fmt, v in self.mac_pj})
        return out


def energy_table(spec: EnergySpec, process: str, sram_bytes_per_core: float) -> EnergyTable:
    """Resolve ``spec`` over the node defaults of ``process`` for a core with ``sram_bytes_per_core``."""
    node = NODE_ENERGY[process]
    macs = tuple((fmt, _pick(getattr(spec, f"mac_{fmt}_pj"), node.mac_fp16_pj * ratio))
                 for fmt, ratio in MAC_RATIO_TO_FP16.items())
    bank = spec.sram_bank_kib * 1024 if spec.sram_bank_kib is not None else min(sram_bytes_per_core, 256 * 1024)
    sram = sram_pj_per_byte(node.sram_pj_per_byte, bank, spec.sram_width_bytes)
    return EnergyTable(
        mac_pj=macs,
        rf_pj_per_byte=_pick(spec.rf_pj_per_byte, node.rf_pj_per_byte),
        acc_pj_per_byte=_pick(spec.acc_pj_per_byte, node.acc_pj_per_byte),
        sram_read_pj_per_byte=_pick(spec.sram_read_pj_per_byte, sram),
        sram_write_pj_per_byte=_pick(spec.sram_write_pj_per_byte, sram),
        noc_pj_per_byte_hop=_pick(spec.noc_pj_per_byte_hop, node.noc_pj_per_byte_hop),
        chip_link_pj_per_byte=_pick(spec.chip_link_pj_per_byte, node.chip_link_pj_per_byte),
        hbm_read_pj_per_byte=_pick(spec.hbm_read_pj_per_byte, node.hbm_read_pj_per_byte),
        hbm_write_pj_per_byte=_pick(spec.hbm_write_pj_per_byte, node.hbm_write_pj_per_byte),
        leakage_w_per_mm2=_pick(spec.leakage_w_per_mm2, node.leakage_w_per_mm2),
        sram_leakage_w_per_mib=_pick(spec.sram_leakage_w_per_mib, node.sram_leakage_w_per_mib),
    )


def _pick(override: float | None, default: float) -> float:
    return float(default if override is None else override)
