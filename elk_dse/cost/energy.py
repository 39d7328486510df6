"""Energy of a compiled Program, per memory level and per operator: accesses counted from the plans, charged
with the chip's per-action energies (hw/energy.py). Both simulators' results are costed here, from the
Program and the simulated latency only, so they cannot disagree on energy for the same latency.

Levels (``LEVELS``, the keys of ``energy_by_level`` and the ``metric.energy_<level>_j`` columns):

- ``mac``: multiply-accumulates executed (padding included) x pJ per MAC of the operator's format; vector
  operators pay half a MAC per FLOP.
- ``rf``: register files inside the matrix unit. The unit is a weight-stationary array of ``matrix_rows`` (k)
  x ``matrix_cols`` (n) MACs: the stationary block is written into the PEs' weight registers once, every MAC
  reads its stationary operand there and reads and writes its partial sum (``acc_bytes``, default twice the
  widest input) in the accumulator. The streaming operand moves between PEs through pipeline flops, charged
  in the MAC.
- ``sram``: the core's scratchpad. Per compute-shift step each core reads its stationary block (k x n)
  once, its streaming operand (m x k, im2col for a convolution) once per n-tile of the array, spills
  partial sums when the reduction has more k-tiles than a PE's weight register holds
  (``energy.pe_weight_rf_bytes``; read, add, write at ``acc_bytes``) and writes its output block; vector operators
  read their inputs and write their output once. Every byte that arrives over the network or from HBM is
  written once, every byte sent (shifts, replica copies, redistribution, HBM writes) read once.
- ``noc``: bytes x hops on the on-chip network (rotations and replica copies as routed by the plan; other
  core-to-core traffic at the chip's mean hops; HBM data from its attach core at the mean HBM hops).
- ``hbm``: bytes read and written at the HBM interface. ``chip_link``: bytes crossing chip-to-chip links.
- ``static``: leakage (non-SRAM area x W/mm^2 + SRAM MiB x W/MiB) x latency.

``energy_j`` is the sum of the levels; each dynamic level is the sum over operators.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from elk_dse.cost.area import static_power_w
from elk_dse.cost.collectives import collectives_link_bytes
from elk_dse.hw.chip import Chip
from elk_dse.ir.formats import FORMAT_BITS
from elk_dse.ir.graph import Graph, Operator
from elk_dse.program import Program, ProgramOp

DYNAMIC_LEVELS = ("mac", "rf", "sram", "noc", "hbm", "chip_link")
LEVELS = (*DYNAMIC_LEVELS, "static")
PJ = 1e-12
_FORMAT_OF_BYTES = {1.0: "int8", 2.0: "fp16", 4.0: "fp32"}


@dataclass(frozen=True)
class Accesses:
    """What one operator instance does at each level, summed over its cores, steps and passes.

    ``macs``: executed multiply-accumulates (vector FLOPs / 2 for vector operators) in format ``fmt``;
    bytes read from register files (stationary operand) and accumulators (partial sums, reads + writes);
    SRAM bytes read and written; on-chip byte-hops; chip-to-chip bytes; HBM bytes read and written.
    """

    fmt: str
    macs: float
    rf_bytes: float
    acc_bytes: float
    sram_read_bytes: float
    sram_write_bytes: float
    noc_byte_hops: float
    chip_link_bytes: float
    hbm_read_bytes: float
    hbm_write_bytes: float

    def energy_j(self, chip: Chip) -> dict[str, float]:
        """Joules per dynamic level (the keys of ``DYNAMIC_LEVELS``)."""
        t = chip.energy_table
        joules = {
            "mac": self.macs * t.mac(self.fmt) * PJ,
            "rf": (self.rf_bytes * t.rf_pj_per_byte + self.acc_bytes * t.acc_pj_per_byte) * PJ,
            "sram": (self.sram_read_bytes * t.sram_read_pj_per_byte
                     + self.sram_write_bytes * t.sram_write_pj_per_byte) * PJ,
            "noc": self.noc_byte_hops * t.noc_pj_per_byte_hop * PJ,
            "hbm": (self.hbm_read_bytes * t.hbm_read_pj_per_byte + self.hbm_write_bytes * t.hbm_write_pj_per_byte) * PJ,
            "chip_link": self.chip_link_bytes * t.chip_link_pj_per_byte * PJ,
        }
        return {level: float(j) for level, j in joules.items()}


@dataclass(frozen=True)
class EnergyReport:
    """Energy of one pass: joules per level (``LEVELS`` order), per operator (dynamic levels) and the total."""

    by_level: tuple[tuple[str, float], ...]
    by_op: tuple[tuple[tuple[str, float], ...], ...]
    accesses: tuple[Accesses, ...]

    @property
    def total_j(self) -> float:
        """Sum of the levels, added in ``LEVELS`` order."""
        total = 0.0
        for _, joules in self.by_level:
            total += joules
        return total

    @property
    def dynamic_j(self) -> float:
        total = 0.0
        for level, joules in self.by_level:
            if level != "static":
                total += joules
        return total

    def level(self, name: str) -> float:
        return dict(self.by_level)[name]


def op_format(op: Operator) -> str:
    """The numeric format the operator's MACs run in: its widest named input format, else the format of its
    widest input element (1 B int8, 2 B fp16, 4 B fp32; others fp16)."""
    if op.formats:
        return max(op.formats, key=lambda f: FORMAT_BITS[f])
    widest = max((t.bytes_per_element for t in op.inputs), default=2.0)
    return _FORMAT_OF_BYTES.get(float(widest), "fp16")


def _per_exec_sizes(op: Operator, pop: ProgramOp) -> tuple[dict[str, int], float]:
    """Per-core dim sizes of one execution (one step of one pass) and how many executions each core runs."""
    spatial = dict(pop.plan.spatial)
    passes = dict(pop.plan.passes)
    steps_on: dict[str, int] = {}
    for _, dim, factor in pop.plan.rotation:
        steps_on[dim] = max(steps_on.get(dim, 1), factor)
    sizes = {}
    for d, n in op.dims:
        sub = -(-n // spatial.get(d, 1))
        sizes[d] = -(-sub // (steps_on.get(d, 1) * passes.get(d, 1)))
    return sizes, float(pop.plan.steps * pop.plan.num_passes)


_COUNTS: OrderedDict[tuple, tuple[float, ...]] = OrderedDict()
_COUNTS_MAX = 20_000


def _compute_counts(op: Operator, pop: ProgramOp, chip: Chip, acc_bytes: float | None,
                    rf_bytes: float) -> tuple[float, ...]:
    """(macs, rf_read, acc, sram_read, sram_write) bytes of the operator's compute, all cores, cached by what
    they depend on: the operator's shape, its plan, the matrix unit and the accumulator width."""
    key = (op.signature, pop.plan, chip.cores.matrix_rows, chip.cores.matrix_cols, acc_bytes, rf_bytes)
    hit = _COUNTS.get(key)
    if hit is not None:
        return hit
    sizes, execs = _per_exec_sizes(op, pop)
    scale = execs * pop.plan.cores_used
    out_b = op.output.bytes_per_element
    if op.uses_matrix_unit:
        a, b = op.inputs[0], op.inputs[1]
        a_dims, b_dims, o_dims = a.dim_names, b.dim_names, op.output.dim_names
        bt = m = n = k = 1
        for d, _ in op.dims:
            s = sizes[d]
            if d not in o_dims:
                k *= s
            elif d in a_dims and d in b_dims:
                bt *= s
            elif d in b_dims:
                n *= s
            else:
                m *= s
        acc_b = acc_bytes if acc_bytes is not None else 2.0 * max(a.bytes_per_element, b.bytes_per_element)
        macs = float(bt * m * n * k)
        n_tiles = -(-n // chip.cores.matrix_cols)
        k_tiles = -(-k // chip.cores.matrix_rows)
        # The stationary (k x n) block is read from SRAM once per execution and written into the PEs' weight
        # registers; the streaming operand is read once per n-tile, as the m x k matrix the array consumes
        # (im2col for a convolution: a sliding window's inputs are read once per tap).
        stationary = float(b.nbytes(sizes))
        streaming = float(bt * m * k) * a.bytes_per_element * n_tiles
        # A PE's weight register holds ``pe_weight_rf_bytes`` / element weights, i.e. that many k-tiles: partial
        # sums stay in the accumulator across them and spill to SRAM (read, add, write) between groups.
        held = max(int(rf_bytes // b.bytes_per_element), 1)
        spills = -(-k_tiles // held) - 1
        outputs = float(bt * m * n)
        spill = outputs * spills * acc_b
        counts = (macs * scale, (macs * b.bytes_per_element + stationary) * scale, 2.0 * macs * acc_b * scale,
                  (stationary + streaming + spill + sum(float(t.nbytes(sizes)) for t in op.inputs[2:])) * scale,
                  (spill + outputs * out_b) * scale)
    else:
        points = float(math.prod(sizes.values()))
        reads = sum(float(t.nbytes(sizes)) for t in op.inputs)
        counts = (points * op.flops_per_point / 2.0 * scale, 0.0, 0.0, reads * scale,
                  float(op.output.nbytes(sizes)) * scale)
    _COUNTS[key] = counts
    if len(_COUNTS) > _COUNTS_MAX:
        _COUNTS.popitem(last=False)
    return counts


def op_accesses(op: Operator, pop: ProgramOp, chip: Chip, system: Chip | None = None) -> Accesses:
    """Accesses per level of one operator instance ``pop`` (compiled from ``op``) on ``chip``; its collectives'
    link bytes are routed on ``system`` (the whole system; None: ``chip`` is it)."""
    macs, rf, acc, sram_r, sram_w = _compute_counts(op, pop, chip, chip.energy.acc_bytes, chip.energy.pe_weight_rf_bytes)
    w = pop.work
    moved = w.shift_bytes + w.warm_bytes + w.noc_bytes  # core to core: read at the sender, written at the receiver
    delivered = max(w.hbm_delivered_bytes, w.hbm_read_bytes)
    hbm_hops = chip.mean_hbm_hops if chip.hbm is not None else 0.0
    return Accesses(
        fmt=op_format(op), macs=macs, rf_bytes=rf, acc_bytes=acc,
        sram_read_bytes=sram_r + moved + w.hbm_write_bytes,
        sram_write_bytes=sram_w + moved + delivered,
        noc_byte_hops=(w.shift_link_bytes + w.warm_link_bytes + w.noc_bytes * max(chip.mean_hops, 1.0)
                       + w.hbm_delivered_bytes * hbm_hops),
        chip_link_bytes=w.chip_link_bytes + w.shift_cross_bytes + w.warm_cross_bytes
        + (collectives_link_bytes(w.collectives, system or chip) if w.collectives else 0.0),
        hbm_read_bytes=w.hbm_read_bytes, hbm_write_bytes=w.hbm_write_bytes,
    )


def collective_accesses(pop: ProgramOp, system: Chip) -> Accesses:
    """Accesses of a ProgramOp of kind ``collective`` that no graph operator stands for: the chip-link bytes of
    its collectives (summed over the links they cross); their SRAM reads and writes are not counted."""
    w = pop.work
    return Accesses(fmt="fp16", macs=0.0, rf_bytes=0.0, acc_bytes=0.0, sram_read_bytes=0.0, sram_write_bytes=0.0,
                    noc_byte_hops=0.0, chip_link_bytes=w.chip_link_bytes + collectives_link_bytes(w.collectives, system),
                    hbm_read_bytes=0.0, hbm_write_bytes=0.0)


def program_energy(program: Program, graph: Graph, latency_s: float) -> EnergyReport:
    """Energy of one pass of ``program`` (compiled from ``graph``) that ran ``latency_s`` seconds."""
    chip = program.chip
    ops = [op for _, _, op in graph.instances()]
    per_op = []
    accesses = []
    totals = dict.fromkeys(DYNAMIC_LEVELS, 0.0)
    j = 0  # the next graph operator instance
    for pop in program.ops:
        op = ops[j] if j < len(ops) else None
        if pop.kind in ("collective", "device_op") and (op is None or op.name != pop.name):
            # A collective the compiler placed on its own (no graph operator): its chip-link bytes only.
            acc = collective_accesses(pop, program.whole_system)
        else:
            if op is None:
                raise ValueError(f"program has more operator instances than its graph ({len(ops)})")
            if op.name != pop.name:
                raise ValueError(f"program op {pop.index} is {pop.name}, the graph's is {op.name}")
            acc = op_accesses(op, pop, chip, program.system)
            j += 1
        joules = acc.energy_j(chip)
        for level in DYNAMIC_LEVELS:
            totals[level] += joules[level]
        accesses.append(acc)
        per_op.append(tuple((level, joules[level]) for level in DYNAMIC_LEVELS))
    if j != len(ops):
        raise ValueError(f"program has {j} of its graph's {len(ops)} operator instances")
    by_level = (*((level, totals[level]) for level in DYNAMIC_LEVELS), ("static", static_power_w(chip) * latency_s))
    return EnergyReport(by_level=tuple(by_level), by_op=tuple(per_op), accesses=tuple(accesses))


# ---- systems of chips compiled with a parallelism strategy (issue 17; compiler/parallel/) -------------------

def system_energy(program: Program, latency_s: float, collective_link_bytes: list[float]) -> EnergyReport:
    """Energy of one pass of a Program compiled for one chip's view of a system (``program.system`` set):
    every operator's dynamic energy on that chip (from the per-chip graph in ``meta["parallel_graph"]``), times
    the chips that run each stage (``meta["parallel_copies"]``) and the micro-batches (``meta["microbatches"]``);
    a collective op's chip-link energy from its link bytes (``collective_link_bytes``, one per Program op, 0 for
    the others; summed over the system's links), times the micro-batches; static power of the whole system."""
    system = program.system if program.system is not None else program.chip
    chip = program.chip
    graph = program.meta["parallel_graph"]
    copies = float(program.meta.get("parallel_copies", 1)) * float(program.meta.get("microbatches", 1))
    repeats = float(program.meta.get("microbatches", 1))
    graph_ops = iter(op for _, _, op in graph.instances())
    per_op, accesses = [], []
    totals = dict.fromkeys(DYNAMIC_LEVELS, 0.0)
    for pop, link_bytes in zip(program.ops, collective_link_bytes, strict=True):
        if pop.kind in ("collective", "device_op"):  # device_op (issue 17t): no graph operator, no link bytes
            acc = Accesses("fp16", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, link_bytes * repeats, 0.0, 0.0)  # no MACs
            joules = acc.energy_j(system)
        else:
            op = next(graph_ops)
            if op.name != pop.name:
                raise ValueError(f"program op {pop.index} is {pop.name}, the per-chip graph's is {op.name}")
            acc = op_accesses(op, pop, chip)
            joules = {k: v * copies for k, v in acc.energy_j(chip).items()}
        for level in DYNAMIC_LEVELS:
            totals[level] += joules[level]
        accesses.append(acc)
        per_op.append(tuple((level, joules[level]) for level in DYNAMIC_LEVELS))
    by_level = (*((level, totals[level]) for level in DYNAMIC_LEVELS), ("static", static_power_w(system) * latency_s))
    return EnergyReport(by_level=tuple(by_level), by_op=tuple(per_op), accesses=tuple(accesses))
