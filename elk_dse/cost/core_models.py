"""Per-core compute cost models: cycles for one core's share of an operator.

A core model is chosen by name in the chip description (``cores.model``). Each maps the per-core sub-operator
sizes (arrays: one entry per candidate plan) to cycles, vectorized with numpy. Every model must respect the
physics: cycles >= FLOPs / (peak FLOP per cycle of the core) — tests/test_cost.py checks each registered model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from elk_dse.cost import neuron_engines
from elk_dse.errors import ConfigError, nearest
from elk_dse.hw.chip import FIDELITY_PHASES, CoreSpec
from elk_dse.ir.graph import Operator
from elk_dse.registry import registrar

CORE_MODELS: dict[str, type[CoreModel]] = {}
register_core_model = registrar(CORE_MODELS)




def matmul_shape(op: Operator, sub: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """(batch, m, n, k) extents of a contraction for per-core dim sizes ``sub``.

    m: dims of the output and the first input only; n: of the output and the second input only;
    k: reduction dims; batch: dims in the output and both inputs. Window axes count through their out dim.
    """
    a, b = op.inputs[0].dim_names, op.inputs[1].dim_names
    out = op.output.dim_names
    one = np.ones_like(next(iter(sub.values())))
    batch, m, n, k = one.copy(), one.copy(), one.copy(), one.copy()
    for d, _ in op.dims:
        s = sub[d]
        if d not in out:
            k = k * s
        elif d in a and d in b:
            batch = batch * s
        elif d in b:
            n = n * s
        else:
            m = m * s
    return batch, m, n, k


class CoreModel(ABC):
    """Cycles of one core running its share of an operator. Stateless apart from the core description."""

    name: ClassVar[str] = ""

    def __init__(self, core: CoreSpec, clock_hz: float = 0.0):
        self.core = core
        self.clock_hz = clock_hz  # the chip's clock: needed only by engine rules timed in seconds (vector_engine)
        if core.vector_engine and clock_hz <= 0:
            raise ValueError(f"cores.vector_engine={core.vector_engine!r} needs the chip's clock (clock_hz > 0)")

    def cycles(self, op: Operator, sub: Mapping[str, np.ndarray]) -> np.ndarray:
        """Cycles for one core to compute the sub-operator with per-dim sizes ``sub`` (arrays, one per plan).

        The matrix unit runs at its base rate times the speedup of the operator's narrowest input format
        (``cores.format_speedup``; e.g. LoFi for bfp4 weights on Tenstorrent): the one place where a numeric
        format changes a compute rate."""
        if op.uses_matrix_unit:
            cycles = self.matrix_cycles(op, sub) / self.format_speedup(op)
        else:
            cycles = self.vector_cycles(op, sub)
        if self.core.vector_engine:  # issue 17n: the NeuronCore-v2 engines' floor (cost/neuron_engines.py)
            # eighth session: the TensorE's PF-transposes of a LayerNorm's / softmax's output (cost/neuron_layout.py)
            cycles = cycles + neuron_engines.transpose_seconds(op, sub) * self.clock_hz
            cycles = np.maximum(cycles, neuron_engines.floor_seconds(op, sub) * self.clock_hz)
        return cycles + self.core.op_overhead_cycles

    def format_speedup(self, op: Operator) -> float:
        """Matrix-unit rate multiple of ``op``: the largest over its input formats (1.0 if none is named)."""
        return max((self.core.format_speedup.of(f) for f in op.formats), default=1.0)

    def vector_cycles(self, op: Operator, sub: Mapping[str, np.ndarray]) -> np.ndarray:
        """Element-wise / reduction work on the vector unit: FLOPs / lanes, at least one cycle per point."""
        points = np.ones_like(next(iter(sub.values())), dtype=np.float64)
        for d, _ in op.dims:
            points = points * sub[d]
        flops = points * op.flops_per_point
        return np.ceil(np.maximum(flops / self.core.vector_lanes, points / self.core.vector_lanes))

    @abstractmethod
    def matrix_cycles(self, op: Operator, sub: Mapping[str, np.ndarray]) -> np.ndarray:
        """Cycles of a contraction on the matrix unit."""


@register_core_model("systolic")
class SystolicCore(CoreModel):
    """A weight-stationary systolic array of ``matrix_rows`` (k) x ``matrix_cols`` (n) MACs.

    Each k x n weight tile is loaded and m rows stream through it, plus rows + cols cycles of fill and drain.
    Partial tiles waste the unused rows/cols (tile quantization). Per tile (docs/core_models.md):

    - streaming: max(m, ``matrix_min_tile_cycles``) cycles: the array cannot start the next tile sooner however
      few rows stream (NeuronCore-v2: "the initiation interval between subsequent MM instructions is roughly
      max(N, MM_INIT_LATENCY), where MM_INIT_LATENCY is 64 TensorE cycles", N the moving tensor's free size,
      i.e. m here);
    - the weight load: ``matrix_rows / weight_load_speedup`` cycles (one row of weights per cycle, or faster:
      NeuronCore-v2's "fast LoadStationary" is "up to 4x faster than a MultiplyMoving with the same free axis
      size").

    - the tile width: with ``cores.matrix_col_tile`` g < cols the hardware issues weight tiles g columns wide, so n
      weight columns take ceil(n / g) tiles of g / cols of a whole tile's cost each (streaming, load and drain all
      scale with the tile's columns); NeuronCore-v2: "stationary tensor free axis size ... must never exceed 128,
      due to the number of PE columns in TensorE" (same document, "Tile Size"), so a 64- or 128-wide operand
      (an attention head) uses one 128-column tile, not a whole 256-column tile of our array.

    Without ``cores.weight_double_buffer`` nothing overlaps: load + streaming + fill and drain (rows + cols) per
    tile. With it the array holds a second set of weight registers: tile i+1 loads while the rows of tile i
    stream, and the rows of consecutive tiles follow each other without draining the pipeline, so a tile costs
    max(streaming, load) and the operator pays one fill and drain (rows + cols) and the first tile's load once.
    This is NeuronCore-v2's TensorE ("background LoadStationary ... allows loading of the next stationary
    tensor in parallel to the computation on the current stationary tensor"). Source of these rules:
    aws-neuron/aws-neuron-sdk nki/guides/architecture/trainium_inferentia2_arch.rst @81ce03ae (Tensor Engine,
    Cost Model; earlier nki/about/... @db1586c3).
    """

    def matrix_cycles(self, op, sub):
        core = self.core
        rows, cols = core.matrix_rows, core.matrix_cols
        batch, m, n, k = matmul_shape(op, sub)
        width = core.matrix_col_tile or cols
        tiles = batch * np.ceil(k / rows) * (np.ceil(n / width) * (width / cols))  # in whole-array tiles
        stream = np.maximum(m, core.matrix_min_tile_cycles)
        load = rows / core.weight_load_speedup
        if core.weight_double_buffer:
            return tiles * np.maximum(stream, load) + (load + rows + cols)
        return tiles * (stream + load + cols)


@register_core_model("ipu_mk2")
class IpuMk2Core(CoreModel):
    """Graphcore IPU MK2 tile (AMP unit): blocks of 6 (m) x 16 (k) x 16 (n) MACs.

    A full block takes 1536 / macs_per_cycle cycles (24 at 64 MAC/cycle), and each 16x16 k-n block of the
    weight costs a fixed setup (papers.md §1: "hundreds of cycles per 16x16 k-n block"; 100 is a first value
    that issue 3 calibrates), which is why small-m (decode) matmuls run far below peak.
    """

    BLOCK_M, BLOCK_K, BLOCK_N = 6, 16, 16
    KN_BLOCK_SETUP_CYCLES = 100

    def matrix_cycles(self, op, sub):
        batch, m, n, k = matmul_shape(op, sub)
        block_cycles = self.BLOCK_M * self.BLOCK_K * self.BLOCK_N / self.core.macs_per_cycle
        kn_blocks = batch * np.ceil(k / self.BLOCK_K) * np.ceil(n / self.BLOCK_N)
        return kn_blocks * (np.ceil(m / self.BLOCK_M) * block_cycles + self.KN_BLOCK_SETUP_CYCLES)


# --- issue 18e: the Elk artifact's IPU matmul cost (conventions=paper switches ipu_mk2 chips to it) ---
@register_core_model("ipu_mk2_elk")
class IpuMk2ElkCore(IpuMk2Core):
    """The Elk artifact's cost of a matmul on one IPU MK2 tile, as its code computes it (platformxlab/elk@8c6e814
    TensorExpression.py:566-595, ``get_comp_time_per_iter_helper``, OP_TYPE_MATMUL); ``conventions=paper``
    selects it for ``ipu_mk2`` chips (elk_dse/conventions.py ``artifact_core``). Two things differ from ours:

    - orientation (:577-580): the larger of the two free extents goes to the AMP's 6-row side
      (``if n > m: m, n = n, m``; back ``if m <= 16``). A decode matmul with one query row per core (attention:
      m = 1, n = keys) thus streams its keys through 6-row blocks instead of paying one 16x16 k-n block setup
      per 16 keys with 1 of 6 rows used, as ours does;
    - its fitted constants (:588-589): per 16x16 k-n block 514 cycles of setup, per 16 n-columns 113, per call
      173, beside 2 x 12 = 24 cycles per 6 x 16 x 16 block (fp16) -- the same block rate as ours
      (1536 / macs_per_cycle, 24 on the MK2's 64 MAC/cycle; kept as 1536 / macs_per_cycle so that no core
      beats its peak). Batch dims multiply the whole (:581-583). The call's 173 cycles stand for our
      ``op_overhead_cycles``, which a matmul does not pay again here; vector work is ours.
    """

    KN_BLOCK_SETUP_CYCLES = 514  # TensorExpression.py:589
    N_BLOCK_CYCLES = 113  # :589
    CALL_CYCLES = 173  # :589

    def cycles(self, op, sub):
        if op.uses_matrix_unit:
            return self.matrix_cycles(op, sub) / self.format_speedup(op)
        return super().cycles(op, sub)

    def matrix_cycles(self, op, sub):
        batch, m, n, k = matmul_shape(op, sub)
        big, small = np.maximum(m, n), np.minimum(m, n)
        rows = np.where(big <= 16, small, big)  # the 6-row side (:577-580)
        cols = np.where(big <= 16, big, small)
        block_cycles = self.BLOCK_M * self.BLOCK_K * self.BLOCK_N / self.core.macs_per_cycle
        kb, nb = np.ceil(k / self.BLOCK_K), np.ceil(cols / self.BLOCK_N)
        per_call = (block_cycles * np.ceil(rows / self.BLOCK_M) * kb * nb + self.KN_BLOCK_SETUP_CYCLES * kb * nb
                    + self.N_BLOCK_CYCLES * nb + self.CALL_CYCLES)
        return batch * per_call


@register_core_model("tensix")
class TensixCore(CoreModel):
    """A Tenstorrent Tensix core: the matrix engine works on 32x32 tiles (tt-metal tiles every tensor so),
    so m, k and n are padded up to multiples of 32 (a decode matmul with one row computes a full 32-row tile),
    at ``matrix_rows x matrix_cols`` MAC/cycle at the base fidelity (times the format speedup), divided by the
    vendor kernels' measured utilization at that per-core work when ``cores.matmul_efficiency`` is set (issue
    17k, eighth session: :meth:`utilization`).
    """

    TILE = 32

    def format_speedup(self, op: Operator) -> float:
        """Issue 17s: an operator named in ``cores.op_fidelity`` runs at that fidelity (4 / phases x the HiFi4
        base rate: a stack's per-model program, hw/stack.py), never above the chip's fastest stated mode (the
        peak every roofline bound uses); every other one at its format's rate."""
        for name, fidelity in self.core.op_fidelity:
            if name == op.name:
                return min(4.0 / FIDELITY_PHASES[fidelity], self.core.format_speedup.best)
        return super().format_speedup(op)

    def __init__(self, core: CoreSpec, clock_hz: float = 0.0):
        super().__init__(core, clock_hz)
        table = core.matmul_efficiency  # issue 17k (eighth session): the measured utilization by per-core tiles
        self._log_tiles = np.log(np.array([row[0] for row in table], dtype=np.float64))
        self._utilization = np.array([row[1] for row in table], dtype=np.float64)

    def utilization(self, tiles: np.ndarray) -> np.ndarray:
        """Issue 17k (eighth session): the matrix engine's utilization for one core's share of ``tiles``
        32x32x32 tile products: ``cores.matmul_efficiency`` interpolated linearly in log(tiles), held at its
        first / last row outside them (tt-metal's GEMM_FLOPS tables, docs/core_models.md); 1.0 without a
        table. Every value is in (0, 1] (hw/chip.check_matmul_efficiency): it only ever slows a kernel."""
        if not len(self._utilization):
            return np.ones_like(tiles, dtype=np.float64)
        return np.interp(np.log(np.maximum(tiles, 1.0)), self._log_tiles, self._utilization)

    def matrix_cycles(self, op, sub):
        batch, m, n, k = matmul_shape(op, sub)
        t = self.TILE
        tiles = batch * np.ceil(m / t) * np.ceil(k / t) * np.ceil(n / t)
        cycles = tiles * (t * t * t / self.core.macs_per_cycle)
        return cycles / self.utilization(tiles) if len(self._utilization) else cycles


def core_model(core: CoreSpec, clock_hz: float = 0.0) -> CoreModel:
    """The registered cost model named by ``core.model`` (ConfigError naming ``chip.cores.model`` if unknown);
    ``clock_hz``: the chip's clock (required when ``core.vector_engine`` names an engine rule)."""
    if core.model not in CORE_MODELS:
        raise ConfigError("chip.cores.model", core.model, "one of " + ", ".join(sorted(CORE_MODELS))
                          + nearest(core.model, CORE_MODELS))
    return CORE_MODELS[core.model](core, clock_hz)
