"""The chip description: a typed, validated, immutable record from which compiler and simulators read.

Config files state units in key names (``sram_kib``, ``clock_ghz``, ``bandwidth_gb_s``); the properties
below convert once to base units (bytes, Hz, bytes/s, seconds). GB is 1e9 bytes, GiB/KiB are powers of two.
The description never holds run state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from elk_dse.errors import ConfigError, nearest
from elk_dse.hw.energy import EnergySpec, EnergyTable, energy_table
from elk_dse.hw.topology import TOPOLOGIES, Ring, Topology, make_topology
from elk_dse.schema import at_least, at_most, build, in_range, positive

KIB = 1024
MAX_SYSTEM_CORES = 4_000_000  # cores of all chips together (a wafer-scale engine has ~10^6)
# Chip-level routes are kept per pair of chips (quadratic): 1,024 chips of 16 cores took 9.4 s and 0.87 GB to
# evaluate, 2,048 took 23 s and 3.3 GB, 4,096 took 88 s and 12.7 GB (2026-11-29; 36,882 ran out of memory).
MAX_SYSTEM_CHIPS = 1024
MIB = 1024**2
GIB = 1024**3
GB = 1e9


@dataclass(frozen=True)
class FormatSpeedup:
    """Matrix-unit throughput per numeric format, as a multiple of the base rate (``matrix_rows x
    matrix_cols`` MAC/cycle). An operator runs at the rate of its narrowest operand's format: e.g. Tenstorrent
    runs bfp4 weights at LoFi (4x the HiFi4 rate of bf16) and bfp8 at HiFi2 (2x). 1.0 everywhere (the
    default) means the format does not change the rate.
    """

    fp32: float = 1.0
    fp16: float = 1.0
    bf16: float = 1.0
    fp8: float = 1.0
    int8: float = 1.0
    bfp8: float = 1.0
    bfp4: float = 1.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            in_range(name, value, 1 / 64, 64.0)

    @property
    def best(self) -> float:
        """The largest multiple: the format-independent peak uses it, so no format beats the roofline."""
        return max(asdict(self).values())

    def of(self, fmt: str) -> float:
        """The multiple of format ``fmt`` (1.0 for an unnamed format)."""
        return float(getattr(self, fmt, 1.0)) if fmt else 1.0


# issue 17s: Tensix math fidelities and their phases (tt-metal tech_reports/GEMM_FLOPS/GEMM_FLOPS.md: LoFi one
# phase, HiFi2 two, HiFi3 three, HiFi4 four; a matmul's rate is the LoFi rate divided by the phases).
FIDELITY_PHASES = {"lofi": 1, "hifi2": 2, "hifi3": 3, "hifi4": 4}


def check_op_fidelity(field_name: str, pairs: tuple[tuple[str, str], ...]) -> None:
    """ConfigError naming ``field_name`` unless every pair is (a non-empty operator name, a fidelity of
    :data:`FIDELITY_PHASES`), each operator at most once."""
    names = [op for op, _ in pairs]
    for op, fidelity in pairs:
        if not op.strip():
            raise ConfigError(field_name, op, "an operator name of the model's graph (e.g. fc1)")
        if fidelity not in FIDELITY_PHASES:
            raise ConfigError(f"{field_name}.{op}", fidelity, "one of " + ", ".join(FIDELITY_PHASES)
                              + nearest(fidelity, FIDELITY_PHASES))
    if len(set(names)) != len(names):
        raise ConfigError(field_name, names, "each operator at most once")


def check_matmul_efficiency(field_name: str, table: tuple[tuple[float, float], ...]) -> None:
    """Issue 17k (eighth session): ConfigError naming ``field_name`` unless ``table`` is empty or a list of
    [per-core tiles, utilization] rows with tiles > 0 strictly ascending and each utilization in (0, 1] (a
    kernel never beats the matrix engine's peak, so the table can only slow a kernel)."""
    tiles = [row[0] for row in table]
    for row in table:
        if len(row) != 2:
            raise ConfigError(field_name, list(row), "[per-core 32x32x32 tile products, utilization] pairs")
        if not row[0] > 0:
            raise ConfigError(field_name, list(row), "per-core tile products must be > 0")
        if not 0 < row[1] <= 1:
            raise ConfigError(field_name, list(row), "a utilization in (0, 1] of the matrix engine's peak")
    if any(b <= a for a, b in zip(tiles, tiles[1:], strict=False)):
        raise ConfigError(field_name, tiles, "rows in strictly ascending per-core tile products")


def check_grid(grid: tuple[int, ...], count: int) -> None:
    """ConfigError naming ``grid`` unless every dimension is >= 1 and their product is ``count``."""
    if any(g < 1 for g in grid):
        raise ConfigError("grid", list(grid), "every grid dimension must be >= 1")
    if int(np.prod(grid)) != count:
        raise ConfigError("grid", list(grid), f"the grid's product must equal count={count}")


@dataclass(frozen=True)
class CoreSpec:
    """One core: matrix unit, vector unit, scratchpad SRAM, and how it overlaps work.

    The matrix unit does ``matrix_rows * matrix_cols`` multiply-accumulates per cycle at its base rate
    (fp16/bf16), times ``format_speedup`` for narrower formats; the vector unit ``vector_lanes`` FLOP per cycle.
    ``op_overhead_cycles`` is paid once per operator step. ``die_cores``: cores on the die (harvested or
    reserved ones included; None = ``count``): a compute grid can use at most that many.
    ``weight_double_buffer`` (systolic core model): the array holds a second set of weight registers, so the
    next weight tile loads while rows stream through the current one (AWS NeuronCore-v2's "background
    LoadStationary"); without it every tile's load, fill and drain is exposed (cost/core_models.py).
    ``matrix_min_tile_cycles`` (systolic): the fewest cycles one weight tile's streaming takes, however few
    rows stream (AWS NeuronCore-v2: a MultiplyMoving instruction's initiation interval is max(N, 64) TensorE
    cycles); 0 = no floor. ``weight_load_speedup`` (systolic): a weight tile loads in
    ``matrix_rows / weight_load_speedup`` cycles (NeuronCore-v2's "fast LoadStationary", up to 4x); 1 = one
    row per cycle.
    ``matrix_col_tile`` (systolic): the width in columns of one weight tile as the hardware issues it, a divisor
    of ``matrix_cols``; an operator with n weight columns occupies ceil(n / matrix_col_tile) such tiles, each
    costing matrix_col_tile / matrix_cols of a whole-array tile (AWS NeuronCore-v2: 128-column stationary tiles;
    our 128 x 256 array stands for two of them); 0 = ``matrix_cols`` (whole-array tiles).
    ``op_fidelity`` (issue 17s, ``tensix`` cores only): (operator name, fidelity) pairs: the named matrix
    operators run at that Tensix math fidelity (``lofi`` / ``hifi2`` / ``hifi3`` / ``hifi4``: 1-4 phases, i.e.
    4 / phases x the HiFi4 base rate) instead of their format's rate; set from a stack's per-model program
    (hw/stack.py ``programs``), not a property of the silicon.
    ``matmul_efficiency`` (issue 17k, eighth session; ``tensix`` cores only): the matrix engine's measured
    utilization as a function of one core's work in 32x32x32 tile products (batch x m x k x n tiles): rows
    [tiles, utilization in (0, 1]], ascending; a matrix operator takes its ideal cycles / the utilization
    interpolated linearly in log(tiles) and held at the end rows (cost/core_models.TensixCore); () = the peak.
    Set from a stack profile (``matmul_efficiency_by_arch``: the vendor's kernels on that silicon).
    ``vector_engine`` (issue 17n, any core model): "" = the FLOP rule (``vector_lanes``) alone; ``neuron_v2`` =
    AWS NeuronCore-v2's VectorE / ScalarE instruction passes and the PSUM read-out of every matrix result as a
    floor on each operator's cycles (cost/neuron_engines.py; timed at the engines' own clocks).
    """

    count: int
    sram_kib: float
    grid: tuple[int, ...] | None = None
    model: str = "systolic"
    matrix_rows: int = 16
    matrix_cols: int = 16
    vector_lanes: int = 16
    op_overhead_cycles: int = 0
    overlap_compute_comm: bool = True
    format_speedup: FormatSpeedup = field(default_factory=FormatSpeedup)
    die_cores: int | None = None
    weight_double_buffer: bool = False
    matrix_min_tile_cycles: int = 0
    weight_load_speedup: float = 1.0
    matrix_col_tile: int = 0
    vector_engine: str = ""  # issue 17n: "" or "neuron_v2" (cost/neuron_engines.py)
    op_fidelity: tuple[tuple[str, str], ...] = ()  # issue 17s: (operator name, Tensix fidelity) pairs
    # issue 17k (eighth session): (per-core tile products, utilization) rows; () = the engine's peak
    matmul_efficiency: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        in_range("count", self.count, 1, 4_000_000)  # a wafer-scale engine has ~10^6 cores
        if self.die_cores is not None:
            in_range("die_cores", self.die_cores, 1, 4_000_000)
            if self.count > self.die_cores:
                raise ConfigError("count", self.count, f"the compute grid cannot use more than the "
                                  f"die_cores={self.die_cores} cores on the die")
        positive("sram_kib", self.sram_kib, "KiB")
        at_most("sram_kib", self.sram_kib, 1_048_576, "KiB (1 GiB per core)")
        for name, high in (("matrix_rows", 1024), ("matrix_cols", 1024), ("vector_lanes", 65_536)):
            in_range(name, getattr(self, name), 1, high)
        in_range("op_overhead_cycles", self.op_overhead_cycles, 0, 10**9)
        in_range("matrix_min_tile_cycles", self.matrix_min_tile_cycles, 0, 65_536)
        in_range("weight_load_speedup", self.weight_load_speedup, 1.0, 64.0)
        if self.matrix_col_tile and (self.matrix_col_tile < 0 or self.matrix_cols % self.matrix_col_tile):
            raise ConfigError("matrix_col_tile", self.matrix_col_tile,
                              f"0 (whole-array tiles) or a divisor of matrix_cols={self.matrix_cols}")
        if self.grid is not None:
            check_grid(self.grid, self.count)
        if self.vector_engine not in ("", "neuron_v2"):  # issue 17n: cost/neuron_engines.VECTOR_ENGINE_RULES
            raise ConfigError("vector_engine", self.vector_engine, "'' (the FLOP rule of vector_lanes) or "
                              "'neuron_v2' (AWS NeuronCore-v2's engine passes, cost/neuron_engines.py)")
        check_op_fidelity("op_fidelity", self.op_fidelity)
        check_matmul_efficiency("matmul_efficiency", self.matmul_efficiency)

    @property
    def sram_bytes(self) -> int:
        return int(self.sram_kib * KIB)

    @property
    def macs_per_cycle(self) -> int:
        return self.matrix_rows * self.matrix_cols

    @property
    def peak_flops_per_cycle(self) -> float:
        """Best FLOP/cycle of any unit of the core in any format (2 FLOP per MAC)."""
        return float(max(2 * self.macs_per_cycle * self.format_speedup.best, self.vector_lanes))


@dataclass(frozen=True)
class InterconnectSpec:
    """The on-chip network.

    ``link_bytes_per_cycle`` is per link and direction on mesh/torus/ring, and per core port (injection and
    ejection each) on all_to_all; on a ``graph`` it is the reference link (links without their own bandwidth).
    ``barrier_cycles`` is the cost of one chip-wide synchronization. ``graph``: the YAML/JSON file describing
    the network (``topology: graph``; docs/topologies.md); a relative path is looked up from the working
    directory, then in the packaged ``conf/chip/``.
    """

    topology: str
    link_bytes_per_cycle: float
    hop_latency_cycles: float = 1.0
    barrier_cycles: float = 0.0
    graph: str = ""

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise ConfigError("topology", self.topology, "one of " + ", ".join(sorted(TOPOLOGIES)))
        if TOPOLOGIES[self.topology].needs_file and not self.graph:
            raise ConfigError("graph", self.graph, f"topology {self.topology} needs a graph file (YAML or JSON)")
        if self.graph and not TOPOLOGIES[self.topology].needs_file:
            raise ConfigError("graph", self.graph, f"only a topology read from a file takes a graph file, not "
                              f"{self.topology}")
        # A floor, not just > 0: a 1e-248 B/cycle link makes every transfer time overflow to infinity.
        at_least("link_bytes_per_cycle", self.link_bytes_per_cycle, 1e-3, "bytes/cycle")
        at_most("link_bytes_per_cycle", self.link_bytes_per_cycle, 65_536, "bytes/cycle")
        in_range("hop_latency_cycles", self.hop_latency_cycles, 0, 10**6)
        in_range("barrier_cycles", self.barrier_cycles, 0, 10**9)


@dataclass(frozen=True)
class HbmSpec:
    """Off-chip memory of one chip: bandwidth, capacity, channels and where the controllers attach.

    ``attach`` is ``all`` (every core has a port, IPU-POD-like), ``edge`` (controllers on the grid boundary)
    or an explicit list of core ids. Channels (DRAM banks) are spread round-robin over the attach cores.
    ``efficiency``: the fraction of ``bandwidth_gb_s`` that streaming reads achieve (refresh, bank conflicts,
    NoC congestion at the controllers); transfer times use bandwidth x efficiency, the roofline the peak.
    """

    bandwidth_gb_s: float
    capacity_gib: float
    channels: int = 8
    attach: str | tuple[int, ...] = "edge"
    efficiency: float = 1.0
    # The Elk artifact's delivery convention (set only by conventions=paper, elk_dse/conventions.py): > 0, a
    # load's on-chip delivery runs at this rate per receiving core (GB/s) times ``delivery_share`` instead of
    # over the routed network; 0 (the default): the routed network model of cost/network.py.
    delivery_gb_s_per_core: float = 0.0
    delivery_share: float = 1.0
    delivery_delays_load: bool = False  # the artifact's delay_comp=False: contention shifts the load later instead
    # Issue 17e (seventh session): the most one core's DMA engines move between HBM and its SRAM, GB/s (0: no
    # limit). The chip then draws at most cores per chip x this from HBM (Chip.hbm_bytes_per_s): a NeuronCore-v2
    # has 16 DMA engines of 27 GiB/s each, 463.9 GB/s, against the chip's 880.5 GB/s (conf/chip/inferentia2.yaml).
    core_dma_gb_s: float = 0.0

    def __post_init__(self) -> None:
        if self.delivery_gb_s_per_core < 0:
            raise ConfigError("delivery_gb_s_per_core", self.delivery_gb_s_per_core, ">= 0 GB/s per core")
        if not 0.0 < self.delivery_share <= 1.0:
            raise ConfigError("delivery_share", self.delivery_share, "a fraction in (0, 1]")
        at_least("bandwidth_gb_s", self.bandwidth_gb_s, 1e-3, "GB/s")  # a floor: tiny values overflow times
        if not 0.05 <= self.efficiency <= 1.0:
            raise ConfigError("efficiency", self.efficiency, "the achievable fraction of the peak, in [0.05, 1]")
        at_most("bandwidth_gb_s", self.bandwidth_gb_s, 10**6, "GB/s")
        in_range("core_dma_gb_s", self.core_dma_gb_s, 0.0, 10**6)  # issue 17e: 0 = no per-core DMA limit
        positive("capacity_gib", self.capacity_gib, "GiB")
        at_most("capacity_gib", self.capacity_gib, 10**6, "GiB")
        in_range("channels", self.channels, 1, 65_536)
        if isinstance(self.attach, str) and self.attach not in ("all", "edge"):
            raise ConfigError("attach", self.attach, "'all', 'edge' or a list of core ids")
        if isinstance(self.attach, tuple) and not self.attach:
            raise ConfigError("attach", [], "a list of core ids needs at least one entry")


# Names chips.parallelism accepts: the built-in strategies; a strategy registered in compiler/parallel/ adds its
# name here when it registers (the compiler depends on hw, not the other way round).
PARALLELISMS: list[str] = ["all_core", "tp", "pp", "ep", "dp", "auto"]
DEGREES = ("tp", "pp", "ep", "dp")


def check_parallelism(spec: ChipLinkSpec) -> None:
    """ConfigError unless ``spec.parallelism`` is known and the degrees fit it: each degree >= 0 (0 = not set);
    a degree may be set only for the strategy named (or any, under ``auto``); a degree, when set, equals
    ``count`` (one strategy spans all chips)."""
    if spec.parallelism not in PARALLELISMS:
        raise ConfigError("parallelism", spec.parallelism, "one of " + ", ".join(PARALLELISMS))
    for name in DEGREES:
        in_range(name, getattr(spec, name), 0, 65_536)
    used = {name: getattr(spec, name) for name in DEGREES if getattr(spec, name)}
    if spec.parallelism == "all_core":
        if used:
            name = next(iter(used))
            raise ConfigError(name, used[name], f"a degree needs parallelism {name} (or auto), not all_core")
        return
    for name, degree in used.items():
        if spec.parallelism not in (name, "auto"):
            raise ConfigError(name, degree, f"parallelism is {spec.parallelism}: set chips.{spec.parallelism} "
                              f"(or parallelism: {name}); one strategy spans all chips")
        if degree != spec.count:
            others = [f"{n}={d}" for n, d in used.items() if n != name]
            hybrid = (f" (with {', '.join(others)}: hybrids such as tp x pp are not modelled)" if others else "")
            raise ConfigError(name, degree, f"must equal chips.count={spec.count} or be 0 (unset): one strategy "
                              f"spans all chips{hybrid}")


@dataclass(frozen=True)
class ChipLinkSpec:
    """Several chips joined by chip-to-chip links; ``link_gb_s`` is each chip's total, per direction.

    ``topology``: how the chips are wired, any registered topology that needs no file (hw/topology.py): a
    bidirectional ring in chip order, all_to_all (a switch: one hop between any two chips), or a mesh / torus
    of chips arranged on ``grid`` (e.g. [2, 4] for an 8-chip Tenstorrent T3000), routed dimension-ordered like
    the on-chip networks. As on chip, a ring runs through the grid's chips in id order and all_to_all ignores
    the grid, so a sweep can search the topology.

    ``parallelism``: how a workload is spread over the chips (elk_dse/compiler/parallel/): ``all_core`` (every
    operator partitioned over all cores of all chips, as one big chip), ``tp`` (Megatron tensor parallelism),
    ``pp`` (pipeline stages of consecutive layers), ``ep`` (experts over chips), ``dp`` (batch split) or
    ``auto`` (the fastest feasible of those). ``tp`` / ``pp`` / ``ep`` / ``dp``: the strategy's degree (0 = not
    set = ``count``); the degree in use must equal ``count``.
    """

    count: int = 1
    topology: str = Ring.name
    grid: tuple[int, ...] | None = None
    link_gb_s: float = 100.0
    link_latency_ns: float = 500.0
    # --- parallelism across chips (issue 17; elk_dse/compiler/parallel/) ---
    parallelism: str = "all_core"
    tp: int = 0
    pp: int = 0
    ep: int = 0
    dp: int = 0
    # --- the host's links (issue 17g, eighth session; cost/host_io.py, docs/parallelism.md "Host I/O") ---
    # host_links: chips with their own PCIe link to the host (0 = every chip); the others are reached through one
    # of them over Ethernet (tunnelled), so ceil(count / host_links) chips share each link's transfers.
    # host_link_gb_s: one link's rate per direction, GB/s (0 = not given: the stack's measured host rates alone).
    host_links: int = 0
    host_link_gb_s: float = 0.0

    def __post_init__(self) -> None:
        in_range("count", self.count, 1, 65_536)
        check_parallelism(self)
        in_range("host_links", self.host_links, 0, self.count)  # issue 17g (eighth session)
        in_range("host_link_gb_s", self.host_link_gb_s, 0.0, 1e6)
        if self.topology not in TOPOLOGIES or TOPOLOGIES[self.topology].needs_file:
            raise ConfigError("topology", self.topology, "one of " + ", ".join(
                sorted(k for k, v in TOPOLOGIES.items() if not v.needs_file)))
        if TOPOLOGIES[self.topology].needs_grid and self.grid is None:
            raise ConfigError("grid", None, f"a {self.topology} of chips needs the chips' arrangement, "
                              f"e.g. grid: [2, {max(self.count // 2, 1)}] for count={self.count}")
        if self.grid is not None:  # as on chip: a ring runs through it in id order, all_to_all ignores it
            check_grid(self.grid, self.count)
        at_least("link_gb_s", self.link_gb_s, 1e-3, "GB/s")  # a floor: tiny values overflow transfer times
        at_most("link_gb_s", self.link_gb_s, 10**6, "GB/s")
        in_range("link_latency_ns", self.link_latency_ns, 0, 10**9)


def check_sdpa_kernel(spec: Any) -> None:
    """The one range check of the decode-attention kernel fields (``sdpa_*``) shared by :class:`OverheadSpec` and
    the stack profile (hw/stack.py) that fills it: raises ConfigError naming the field."""
    in_range("sdpa_grid_cores", spec.sdpa_grid_cores, 0, 100_000)
    in_range("sdpa_max_cores_per_head", spec.sdpa_max_cores_per_head, 1, 100_000)
    in_range("sdpa_k_chunk_tokens", spec.sdpa_k_chunk_tokens, 32, 1 << 20)
    if spec.sdpa_k_chunk_tokens % 32:
        raise ConfigError("sdpa_k_chunk_tokens", spec.sdpa_k_chunk_tokens, "a multiple of 32 (one tile)")
    in_range("sdpa_ns_per_score_tile", spec.sdpa_ns_per_score_tile, 0.0, 1e7)
    in_range("sdpa_padded_users", spec.sdpa_padded_users, 0, 100_000)  # issue 17k


CCL_SCHEMES = ("", "tt_transformers")  # issue 17t: OverheadSpec.ccl_scheme / hw/stack.py ccl_scheme


def check_ccl_scheme(field_name: str, value: str) -> None:
    """ConfigError naming ``field_name`` unless ``value`` is a known collective scheme (issue 17t)."""
    if value not in CCL_SCHEMES:
        raise ConfigError(field_name, value, "'' (the strategy's own collectives) or tt_transformers")


DECODE_SOFTMAX_RULES = ("", "neuron_v2")  # issue 17d: cost/neuron_attention.py ("" = none)


def check_decode_attention(spec: Any) -> None:
    """Issue 17d: the range check of the decode-attention bucket / softmax-rule fields shared by
    :class:`OverheadSpec` (``decode_softmax``) and the stack profile (both fields); ConfigError naming the field."""
    if spec.decode_softmax not in DECODE_SOFTMAX_RULES:
        raise ConfigError("decode_softmax", spec.decode_softmax, "one of '' (none), 'neuron_v2' "
                          "(NeuronCore-v2 VectorE/ScalarE, cost/neuron_attention.py)")
    bucket = getattr(spec, "kv_bucket_min_tokens", 0)
    in_range("kv_bucket_min_tokens", bucket, 0, 1 << 20)
    if bucket & (bucket - 1):
        raise ConfigError("kv_bucket_min_tokens", bucket, "0 (no buckets) or a power of two, e.g. 128")


KV_HEAD_SHARDINGS = ("", "replicate_to_ranks")  # issue 17d: compiler/parallel/tp.py ("" = per chip)


def check_kv_head_sharding(value: str) -> None:
    """Issue 17d: ConfigError naming ``kv_head_sharding`` unless it is one of KV_HEAD_SHARDINGS."""
    if value not in KV_HEAD_SHARDINGS:
        raise ConfigError("kv_head_sharding", value, "one of '' (heads split over the chips) or "
                          "'replicate_to_ranks' (transformers-neuronx: heads padded and KV heads replicated over "
                          "the TP ranks = chips x cores per chip; compiler/parallel/tp.py)")


def check_host_sampling(min_batch: int, read_gb_per_s: float, prefix: str = "") -> None:
    """Issue 17t (seventh session): ConfigError (one line) unless ``min_batch`` is 0 or a batch >= 1 and, when it
    is set, the host's read rate of the logits is a positive GB/s."""
    in_range(prefix + "host_sampling_min_batch", min_batch, 0, 1_000_000)
    in_range(prefix + "host_read_gb_per_s", read_gb_per_s, 0.0, 10_000.0)
    if min_batch and not read_gb_per_s > 0:
        raise ConfigError(prefix + "host_read_gb_per_s", read_gb_per_s, "the host's read rate of the logits, GB/s "
                          "> 0, is needed when host_sampling_min_batch is set (0 = sampling on the device)")


HOST_BATCH_IO_RULES = ("", "trace_2cq", "trace_1cq")  # issue 17g (eighth session; trace_1cq 17g2): cost/host_io.py


def check_host_batch_io(rule: str, write_gb_per_s: float, read_gb_per_s: float, prefix: str = "") -> None:
    """Issue 17g (eighth session): ConfigError (one line) unless ``rule`` is a known host I/O rule and, when it is
    set, the host's write and read rates are positive GB/s."""
    if rule not in HOST_BATCH_IO_RULES:
        raise ConfigError(prefix + "host_batch_io", rule, "one of '' (no host I/O charged), 'trace_2cq' (inputs "
                          "written on a second command queue during the previous batch's compute, outputs read "
                          "after it) or 'trace_1cq' (write, trace and read in order on one queue; cost/host_io.py)" + nearest(rule, HOST_BATCH_IO_RULES))
    in_range(prefix + "host_write_gb_per_s", write_gb_per_s, 0.0, 10_000.0)
    if rule and not write_gb_per_s > 0:
        raise ConfigError(prefix + "host_write_gb_per_s", write_gb_per_s, "the host's measured write rate of a "
                          "batch's inputs, GB/s > 0, is needed when host_batch_io is set")
    if rule and not read_gb_per_s > 0:
        raise ConfigError(prefix + "host_read_gb_per_s", read_gb_per_s, "the host's measured read rate of a "
                          "batch's outputs, GB/s > 0, is needed when host_batch_io is set")


@dataclass(frozen=True)
class OverheadSpec:
    """Fixed costs real chips pay that a roofline misses (physical meaning, seconds).

    ``dispatch_us_per_op``: launching one operator (host or firmware command processing, kernel start and
    completion signalling), microseconds per operator instance. ``sync_us_per_layer``: one synchronization
    of all cores (all chips) between repeated layers, microseconds per layer instance.
    ``collective_startup_us``: fixed cost of starting one collective across chips (handshakes, semaphores,
    kernel launch on every chip), microseconds per collective (cost/collectives.py).
    ``launch_us_per_step``: the host's cost of one execution of the whole compiled program (runtime call,
    tensor allocation, framework overhead), during which the device idles, microseconds per step (sim/base).
    A software stack (hw/stack.py, ``stack=<name>``) adds its own values to these.
    ``all_core_sync_us_per_layer``: on a ``chips.parallelism: auto`` system, the stack's cross-chip sync per
    layer (``chip_sync_us_per_layer``), held back until ``auto`` compiles its all_core candidate, which pays
    it as ``sync_us_per_layer`` exactly as a fixed all_core point does (compiler/parallel/auto.py); 0 elsewhere.
    """

    dispatch_us_per_op: float = 0.0
    sync_us_per_layer: float = 0.0
    collective_startup_us: float = 0.0
    all_core_sync_us_per_layer: float = 0.0  # issue 17x: see the class docstring
    launch_us_per_step: float = 0.0
    # issue 17s: the stack's decode-attention kernel (cost/decode_attention.py; hw/stack.py sdpa_* fields).
    # sdpa_grid_cores 0: no such kernel (the compiler's plans as they are).
    sdpa_grid_cores: int = 0
    sdpa_max_cores_per_head: int = 16
    sdpa_k_chunk_tokens: int = 32
    sdpa_ns_per_score_tile: float = 0.0
    # issue 17k: users per chip the kernel is launched for (idle ones skipped but given cores); 0 = the real users
    sdpa_padded_users: int = 0
    # issue 17c: the stack's CCL payload bytes per element (hw/stack.py ccl_bytes_per_element); 0 = the
    # operators' own output dtype.
    ccl_bytes_per_element: float = 0.0
    # issue 17t: which collectives the tensor-parallel strategies issue (hw/stack.py ccl_scheme); "" = their own
    # (Megatron all-reduces; tp2d the Galaxy demo's), "tt_transformers" = tt-metal tt_transformers' code.
    ccl_scheme: str = ""
    # issue 17d: the stack's decode softmax engine rule (cost/neuron_attention.py; hw/stack.py decode_softmax).
    decode_softmax: str = ""
    # issue 17d: the stack's KV-head sharding over TP ranks (compiler/parallel/tp.py; hw/stack.py).
    kv_head_sharding: str = ""
    # issue 17c (sixth session): the fixed charge of an operation that runs only a collective (a ProgramOp of kind
    # collective), microseconds, in place of ``dispatch_us_per_op``; None = it pays ``dispatch_us_per_op`` like
    # every operation (cost/network.op_sync_time_s; hw/stack.py ccl_dispatch_us_per_op).
    ccl_dispatch_us_per_op: float | None = None
    # issue 17t (seventh session): the host samples the next tokens from logits read back from the device when the
    # batch is at least ``host_sampling_min_batch`` (0: sampling on the device at every batch), reading them at
    # ``host_read_gb_per_s`` (GB/s, 1e9 B/s); cost/host_io.py, sim/base.simulate; hw/stack.py.
    host_sampling_min_batch: int = 0
    host_read_gb_per_s: float = 0.0

    # issue 17g (eighth session): the stack's per-batch host I/O rule ("" = not charged; "trace_2cq" = inputs
    # written on a second command queue while the previous batch computes, outputs read after it on the compute
    # queue; issue 17g2: "trace_1cq" = write, trace and read in order on one command queue) and its measured
    # host-to-device write rate, GB/s; cost/host_io.py, sim/base.simulate; hw/stack.py.
    host_batch_io: str = ""
    host_write_gb_per_s: float = 0.0

    def __post_init__(self) -> None:
        check_host_sampling(self.host_sampling_min_batch, self.host_read_gb_per_s)
        check_host_batch_io(self.host_batch_io, self.host_write_gb_per_s, self.host_read_gb_per_s)
        check_decode_attention(self)
        check_kv_head_sharding(self.kv_head_sharding)
        in_range("ccl_bytes_per_element", self.ccl_bytes_per_element, 0.0, 16.0)
        check_ccl_scheme("overheads.ccl_scheme", self.ccl_scheme)
        check_sdpa_kernel(self)
        in_range("dispatch_us_per_op", self.dispatch_us_per_op, 0.0, 1e6)
        in_range("sync_us_per_layer", self.sync_us_per_layer, 0.0, 1e6)
        in_range("collective_startup_us", self.collective_startup_us, 0.0, 1e6)
        in_range("all_core_sync_us_per_layer", self.all_core_sync_us_per_layer, 0.0, 1e6)
        in_range("launch_us_per_step", self.launch_us_per_step, 0.0, 1e6)
        if self.ccl_dispatch_us_per_op is not None:
            in_range("ccl_dispatch_us_per_op", self.ccl_dispatch_us_per_op, 0.0, 1e6)

    @property
    def dispatch_s(self) -> float:
        return self.dispatch_us_per_op * 1e-6

    @property
    def layer_sync_s(self) -> float:
        return self.sync_us_per_layer * 1e-6

    @property
    def collective_startup_s(self) -> float:
        return self.collective_startup_us * 1e-6

    @property
    def launch_s(self) -> float:
        return self.launch_us_per_step * 1e-6

    @property
    def host_write_bytes_per_s(self) -> float:
        """The host's measured write rate of a batch's inputs, bytes per second (issue 17g, eighth session)."""
        return self.host_write_gb_per_s * 1e9

    @property
    def host_read_bytes_per_s(self) -> float:
        """The host's read rate of the logits, bytes per second (issue 17t, seventh session)."""
        return self.host_read_gb_per_s * 1e9

    @property
    def ccl_dispatch_s(self) -> float:
        """Seconds an operation running only a collective pays in place of the per-operator dispatch (issue 17c,
        sixth session): ``ccl_dispatch_us_per_op``, or ``dispatch_us_per_op`` when that is None."""
        us = self.dispatch_us_per_op if self.ccl_dispatch_us_per_op is None else self.ccl_dispatch_us_per_op
        return us * 1e-6


PLAN_RULES = ("t10", "artifact")  # Chip.plan_rules: ours, or the Elk artifact's (conventions=paper)
# issue 17b (seventh session): the silicon architectures a software stack may price differently
# (Chip.architecture; StackProfile.dispatch_us_per_op_by_arch, hw/stack.py). Tenstorrent's names, as tt-metal's
# soc descriptors spell them (wormhole_b0_80_arch.yaml, blackhole_140_arch.yaml). "" = not named.
ARCHITECTURES = ("wormhole_b0", "blackhole")


@dataclass(frozen=True)
class Chip:
    """A chip (or a system of identical chips) as the compiler and simulators see it."""

    name: str
    clock_ghz: float
    cores: CoreSpec
    interconnect: InterconnectSpec
    hbm: HbmSpec | None = None
    chips: ChipLinkSpec = field(default_factory=ChipLinkSpec)
    overheads: OverheadSpec = field(default_factory=OverheadSpec)
    description: str = ""
    process: str = "n7"
    energy: EnergySpec = field(default_factory=EnergySpec)  # per-action energy overrides (hw/energy.py)
    default_stack: str = ""  # the software stack (conf/stack/<name>.yaml) run when none is chosen; "" = none
    # Issue 18 (set only by conventions=paper, elk_dse/conventions.py): "artifact" makes the T10 planner obey the
    # Elk artifact's plan-space rules and sync counts (compiler/t10.py, compiler/select.py); "t10" is ours.
    plan_rules: str = "t10"
    # issue 17b (seventh session): the silicon architecture (one of ARCHITECTURES, "" = not named); a stack's
    # per-architecture values (hw/stack.py dispatch_us_per_op_by_arch) are picked by it in apply_stack.
    architecture: str = ""

    def __post_init__(self) -> None:
        in_range("clock_ghz", self.clock_ghz, 1e-3, 100.0)
        if self.architecture and self.architecture not in ARCHITECTURES:
            raise ConfigError("architecture", self.architecture, "one of " + ", ".join(ARCHITECTURES)
                              + " or '' (not named)" + nearest(self.architecture, ARCHITECTURES))
        if self.plan_rules not in PLAN_RULES:
            raise ConfigError("plan_rules", self.plan_rules, " or ".join(PLAN_RULES))
        if self.default_stack:
            from elk_dse.hw.stack import check_stack_name

            check_stack_name(self.default_stack, "default_stack")
        if self.chips.count > MAX_SYSTEM_CHIPS:
            raise ConfigError("chips.count", self.chips.count, f"at most {MAX_SYSTEM_CHIPS:,} chips in one system "
                              "(routes between chips are kept per pair of chips: 0.87 GB at 1,024, 12.7 GB at "
                              "4,096; docs/reliability.md)")
        total = self.cores.count * self.chips.count
        if total > MAX_SYSTEM_CORES:
            raise ConfigError("chips.count", self.chips.count, f"{self.cores.count:,} cores x {self.chips.count:,} "
                              f"chips = {total:,} cores; a system holds at most {MAX_SYSTEM_CORES:,} (the cost "
                              "models keep per-core arrays: ~360 MiB and ~20 s for 10^6 cores, docs/benchmarks.md)")
        from elk_dse.hw.tech import TECH_NODES

        if self.process not in TECH_NODES:
            raise ConfigError("process", self.process, "one of " + ", ".join(sorted(TECH_NODES)))
        if isinstance(self.hbm, HbmSpec) and isinstance(self.hbm.attach, tuple):
            bad = [c for c in self.hbm.attach if not 0 <= c < self.cores.count]
            if bad:
                raise ConfigError(
                    "hbm.attach", bad[0], f"core ids must be in [0, {self.cores.count - 1}]"
                )
        if TOPOLOGIES[self.interconnect.topology].needs_grid and self.cores.grid is None:
            raise ConfigError(
                "cores.grid", None, f"a {self.interconnect.topology} needs a grid, e.g. [rows, cols]"
            )
        if self.interconnect.graph:
            self.topology.check_cores(self.cores.count)  # reads and validates the file (ConfigError)
            if isinstance(self.hbm, HbmSpec) and self.hbm.attach == "edge" and not self.topology.boundary_cores().size:
                raise ConfigError("interconnect.graph", self.interconnect.graph,
                                  "hbm.attach=edge needs the HBM attach cores listed under hbm: in the graph file")

    # ---- derived figures, base units -------------------------------------------------------------
    @cached_property
    def energy_table(self) -> EnergyTable:
        """Per-action energies: the process node's defaults with ``energy`` overrides applied."""
        return energy_table(self.energy, self.process, self.sram_bytes_per_core)

    @property
    def clock_hz(self) -> float:
        return self.clock_ghz * 1e9

    @property
    def grid(self) -> tuple[int, ...]:
        return self.cores.grid if self.cores.grid is not None else (self.cores.count,)

    @property
    def num_chips(self) -> int:
        return self.chips.count

    @property
    def cores_per_chip(self) -> int:
        return self.cores.count

    @property
    def num_cores(self) -> int:
        """Cores of the whole system (all chips)."""
        return self.cores.count * self.chips.count

    @property
    def sram_bytes_per_core(self) -> int:
        return self.cores.sram_bytes

    @property
    def total_sram_bytes(self) -> int:
        return self.cores.sram_bytes * self.num_cores

    @property
    def peak_flops_per_s(self) -> float:
        """Peak FLOP/s of the whole system (the compute roof)."""
        return self.cores.peak_flops_per_cycle * self.clock_hz * self.num_cores

    @property
    def core_peak_flops_per_s(self) -> float:
        return self.cores.peak_flops_per_cycle * self.clock_hz

    @cached_property
    def topology(self) -> Topology:
        """The on-chip network graph of one chip."""
        return make_topology(self.interconnect.topology, self.grid, path=self.interconnect.graph)

    @cached_property
    def directed_link_capacity(self) -> float:
        """Directed on-chip link capacity of one chip, in reference links (core ports on a port fabric)."""
        return self.topology.directed_link_capacity()

    @property
    def link_bytes_per_s(self) -> float:
        """One on-chip link (or all_to_all core port), one direction, bytes/s."""
        return self.interconnect.link_bytes_per_cycle * self.clock_hz

    @cached_property
    def bisection_bytes_per_s(self) -> float:
        """On-chip bisection bandwidth of one chip, one direction, derived from the topology graph."""
        return self.topology.bisection_links() * self.link_bytes_per_s

    @cached_property
    def mean_hops(self) -> float:
        return self.topology.mean_hops()

    @property
    def hbm_bytes_per_s(self) -> float:
        """HBM bandwidth of the whole system (all chips), bytes/s; 0 without HBM. Per chip the smaller of
        ``hbm.bandwidth_gb_s`` and what its cores' DMA engines move (``hbm.core_dma_gb_s`` x cores per chip, when
        set; issue 17e)."""
        if not self.hbm:
            return 0.0
        per_chip = self.hbm.bandwidth_gb_s
        if self.hbm.core_dma_gb_s:
            per_chip = min(per_chip, self.hbm.core_dma_gb_s * self.cores_per_chip)
        return per_chip * GB * self.num_chips

    @property
    def hbm_achievable_bytes_per_s(self) -> float:
        """HBM bandwidth streaming transfers achieve (all chips), bytes/s: peak x ``hbm.efficiency``."""
        return self.hbm_bytes_per_s * self.hbm.efficiency if self.hbm else 0.0

    @property
    def hbm_capacity_bytes(self) -> int:
        return int(self.hbm.capacity_gib * GIB * self.num_chips) if self.hbm else 0

    @cached_property
    def hbm_attach_cores(self) -> np.ndarray:
        """Core ids (within one chip) where HBM controllers inject into the network."""
        if self.hbm is None:
            return np.zeros(0, dtype=np.int64)
        if self.hbm.attach == "all":
            return np.arange(self.cores.count)
        if self.hbm.attach == "edge":
            return self.topology.boundary_cores()
        return np.asarray(self.hbm.attach, dtype=np.int64)

    @cached_property
    def mean_hbm_hops(self) -> float:
        """Mean hops from the nearest HBM attach core to each core of a chip."""
        attach = self.hbm_attach_cores
        if attach.size == 0 or attach.size == self.cores.count:
            return 0.0
        return float(self.topology.nearest_hops(attach).mean())

    @cached_property
    def resources(self):
        """The chip's shared resources and routes (hw.resources.Resources), built on first use."""
        from elk_dse.hw.resources import Resources

        return Resources(self)

    @cached_property
    def hbm_delivery_link_share(self) -> float:
        """Bytes on the busiest on-chip link per byte delivered from HBM to evenly spread destinations (every
        core of a chip, from every channel), routed on the chip graph; 0 without HBM."""
        if self.hbm is None or self.cores.count < 2 or self.hbm.attach == "all":
            return 0.0  # every core has its own HBM port: nothing crosses the network
        from elk_dse.hw.resources import routed, routing_key

        attach = self.hbm_channel_attach

        def compute() -> float:
            return self.topology.delivery_share(attach)

        return routed((*routing_key(self), "hbm_delivery", tuple(attach.tolist())), compute)

    @cached_property
    def hbm_channel_attach(self) -> np.ndarray:
        """The core (within one chip) where each HBM channel injects: channels evenly spaced over the attach
        cores (which, for ``edge``, run around the perimeter)."""
        attach = self.hbm_attach_cores
        if self.hbm is None or attach.size == 0:
            return attach
        return attach[(np.arange(self.hbm.channels) * attach.size) // self.hbm.channels]

    @cached_property
    def hbm_channel_cores(self) -> np.ndarray:
        """Distinct cores (within one chip) through which the HBM channels inject."""
        return np.unique(self.hbm_channel_attach)

    @cached_property
    def hbm_cut_bytes_per_s(self) -> float:
        """Bandwidth of the links from the HBM attach cores into the other cores (all chips), bytes/s: data
        for cores without an HBM port must cross this cut. 0 when every core has one."""
        attach = self.hbm_attach_cores
        if self.hbm is None or attach.size in (0, self.cores.count):
            return 0.0
        inside = np.zeros(self.cores.count, dtype=bool)
        inside[attach] = True
        return self.topology.cut_capacity(inside) * self.link_bytes_per_s * self.num_chips

    @property
    def hbm_interior_fraction(self) -> float:
        """Share of the cores without an HBM attach point (their data crosses hbm_cut_bytes_per_s)."""
        if self.hbm is None:
            return 0.0
        return 1.0 - self.hbm_attach_cores.size / self.cores.count

    @cached_property
    def hbm_injection_bytes_per_s(self) -> float:
        """How fast the network can accept HBM data at the channels' attach cores, all chips, bytes/s: the
        out-links of those cores on the chip graph (one port each on all_to_all)."""
        if self.hbm is None:
            return 0.0
        cores = self.hbm_channel_cores if self.hbm.attach != "all" else self.hbm_attach_cores
        ports = float(self.topology.out_ports()[cores].sum())
        return max(ports, 1.0) * self.link_bytes_per_s * self.num_chips

    @cached_property
    def chip_topology(self) -> Topology:
        """The graph the chip-to-chip links form, one node per chip (the same topology classes as on chip)."""
        grid = self.chips.grid if self.chips.grid is not None else (self.num_chips,)
        return make_topology(self.chips.topology, grid, tie="forward")

    @cached_property
    def chip_port_share(self) -> float:
        """Bytes through the busiest chip-to-chip port (a chip's output or input, ``chips.link_gb_s``) per byte
        of cross-chip traffic spread evenly over all ordered pairs of distinct chips, routed on the chips'
        graph; 0 for one chip. Rings, tori and all_to_all are symmetric: every port carries mean hops / chips.
        A mesh is not: its middle chips also carry through-traffic, so it is taken from the routes (meshes of
        up to 256 chips; larger ones use the mean, which underestimates their busiest port)."""
        n = self.num_chips
        if n < 2:
            return 0.0
        symmetric = self.chip_topology.symmetric or n > 256
        if symmetric:
            return self.chip_topology.mean_hops() / n
        from elk_dse.hw.resources import routed, routing_key

        def compute() -> float:
            from elk_dse.hw.patterns import chip_pair_flows

            res = self.resources
            ids, amounts = res.demand(*chip_pair_flows(n, self.cores_per_chip))
            ports = (ids >= res.chip_link_base) & (ids < res.hbm_base)
            return float(amounts[ports].max())

        return routed((*routing_key(self), "chip_port_share"), compute)

    @property
    def chip_link_bytes_per_s(self) -> float:
        """Chip-to-chip bandwidth of one chip, one direction, bytes/s (0 for a single chip)."""
        return self.chips.link_gb_s * GB if self.num_chips > 1 else 0.0

    def resolved(self) -> dict[str, Any]:
        """The description as written plus the derived figures, for reports and JSON output."""
        out = asdict(self)
        if out["hbm"] is not None and not out["hbm"]["delivery_gb_s_per_core"]:  # only under conventions=paper
            for key in ("delivery_gb_s_per_core", "delivery_share", "delivery_delays_load"):
                del out["hbm"][key]
        if out["plan_rules"] == "t10":  # "artifact" only under conventions=paper
            del out["plan_rules"]
        if not out["overheads"]["all_core_sync_us_per_layer"]:  # only on a parallelism=auto system of chips
            del out["overheads"]["all_core_sync_us_per_layer"]
        if not out["overheads"]["sdpa_grid_cores"]:  # issue 17s: only under a stack with a decode-attention kernel
            for name in ("sdpa_grid_cores", "sdpa_max_cores_per_head", "sdpa_k_chunk_tokens", "sdpa_ns_per_score_tile",
                         "sdpa_padded_users"):
                del out["overheads"][name]
        if not out["overheads"]["ccl_bytes_per_element"]:  # issue 17c: only under a stack with its CCL format
            del out["overheads"]["ccl_bytes_per_element"]
        if not out["overheads"]["ccl_scheme"]:  # issue 17t: only under a stack with its own collectives
            del out["overheads"]["ccl_scheme"]
        if out["overheads"]["ccl_dispatch_us_per_op"] is None:  # issue 17c (sixth session): only when a stack sets it
            del out["overheads"]["ccl_dispatch_us_per_op"]
        out["derived"] = {
            "num_cores": self.num_cores,
            "total_sram_bytes": self.total_sram_bytes,
            "peak_flops_per_s": self.peak_flops_per_s,
            "hbm_bytes_per_s": self.hbm_bytes_per_s,
            "hbm_capacity_bytes": self.hbm_capacity_bytes,
            "link_bytes_per_s": self.link_bytes_per_s,
            "bisection_bytes_per_s": self.bisection_bytes_per_s,
            "mean_hops": self.mean_hops,
            "diameter_hops": self.topology.diameter,
            "directed_links": self.directed_link_capacity,
            "mean_hbm_hops": self.mean_hbm_hops,
            "hbm_attach_cores": int(self.hbm_attach_cores.size),
        }
        return out


def chip_from_dict(data: Any, path: str = "chip") -> Chip:
    """Build and validate a Chip from a plain mapping (parsed YAML); raises ConfigError with the field."""
    return build(Chip, data, path)
