"""Software-stack profiles: what the software running a chip costs, separate from the silicon (issue 17).

A profile (``conf/stack/<name>.yaml``, chosen with ``stack=<name>``; default: the chip's ``default_stack``,
else ``none``) holds the fixed costs a software stack adds on top of the silicon, each with its source:

- ``dispatch_us_per_op``: launching one operator instance (host or firmware command processing, kernel start
  and completion signalling), microseconds;
- ``sync_us_per_layer``: one synchronization of all cores between repeated layers, microseconds per layer
  instance;
- ``chip_sync_us_per_layer``: a cross-chip synchronization per layer instance, paid only on systems of more than
  one chip whose operators are partitioned over all cores of all chips (``chips.parallelism`` all_core, today's
  compiler): it stands in for the collectives a tensor-parallel stack runs per layer. Where the compiler
  places the collectives itself (another parallelism), their startups are ``collective_startup_us`` instead;
- ``collective_startup_us``: the fixed cost of one collective (all-reduce, all-gather, ...), microseconds;
- ``launch_us_per_step``: the host's cost of one execution of the compiled program (one decode step, one
  inference: runtime call, tensor allocation, framework overhead), during which the device idles,
  microseconds per step (a whole-graph compiler such as neuronx-cc pays it instead of a per-operator dispatch);
- ``dram_efficiency``: the fraction of the DRAM bandwidth the stack's kernels achieve.
- ``sdpa_grid_cores``, ``sdpa_max_cores_per_head``, ``sdpa_k_chunk_tokens``, ``sdpa_ns_per_score_tile`` (issue
  17s): the stack's decode-attention kernel (tt-metal's ``scaled_dot_product_attention_decode``): the cores of its
  grid per chip (0: no such kernel modelled), its cap on cores per (user, KV head), its key chunk, and one core's
  nanoseconds per 32x32 score tile; cost/decode_attention.py, docs/stacks.md. Their source is
  ``sources.sdpa`` (required when the grid is not 0). ``sdpa_padded_users`` (issue 17k): the users per chip the
  stack launches the kernel for whatever the real batch (tt-metal's Galaxy demo builds its model for 32 users,
  8 per chip, and skips the idle ones, which keep their share of the cores); 0 = the real users.
- ``ccl_link_latency_ns``, ``ccl_bytes_per_element`` (issue 17c): the stack's own collectives: the per-step, per-hop
  latency they pay (replaces the chip's ``chips.link_latency_ns``; 0 keeps it) and the bytes per element of their
  payload buffers (0: the operators' own output dtype; tp2d reads it through ``overheads.ccl_bytes_per_element``
  for the collectives whose persistent buffers the stack keeps in that format). Their source is ``sources.ccl``
  (required when either is not 0).
- ``ccl_scheme`` (issue 17t): which collectives the tensor-parallel strategies issue under this stack: ``""`` their
  own (tp: Megatron all-reduces; tp2d: the Galaxy demo's), ``tt_transformers``: what tt-metal's tt_transformers
  code runs (compiler/parallel/tp.py and tp2d.py, docs/parallelism.md). Its source is ``sources.ccl``.
- ``kv_bucket_min_tokens``, ``decode_softmax`` (issue 17d): the stack runs decode attention over a power-of-two
  bucket of cache positions starting at ``kv_bucket_min_tokens`` (0: over ``kv_len`` itself; evaluate.py builds
  the decode graph at the bucket), and its decode softmax's engine rule (``neuron_v2``: NeuronCore-v2's
  VectorE/ScalarE floor; "": none); cost/neuron_attention.py, docs/stacks.md. Their source is
  ``sources.decode_attention`` (required when either is set).
- ``ccl_dispatch_us_per_op`` (issue 17c, sixth session): what an operation running only a collective pays in place
  of ``dispatch_us_per_op`` (None: the same per-operator dispatch as every operation). Under tt-metal's trace a
  CCL op's own device time is its kernel duration, which the collective cost already prices (the vendor's CCL
  tables time device kernels), plus the device's op-to-op gap; the fitted per-operator dispatch, fitted on
  single-chip points without collectives, says nothing about it. cost/network.op_sync_time_s charges it; its
  source is ``sources.ccl_dispatch`` (required when set).
- ``host_sampling_min_batch``, ``host_read_gb_per_s`` (issue 17t, seventh session): from this batch on (0: never)
  the stack's decode loop samples the next tokens on the host: every step the device's logits (tile rows x
  vocabulary, bfloat16 after the device's untilize) are read back to the host at ``host_read_gb_per_s`` (GB/s)
  while the device idles (tt-metal's simple_text_demo: "Argmax on device is only supported for batch_size=1";
  docs/parallelism.md, "The logits at batch > 1"). cost/host_io.py prices it, sim/base.simulate charges it in
  both simulators. Its source is ``sources.host_sampling`` (required when set).
- ``host_batch_io``, ``host_write_gb_per_s`` (issue 17g, eighth session): the stack's per-batch host I/O rule (""
  none; ``trace_2cq``: tt-metal's tt_cnn executor writes the next batch's inputs on a second command queue while
  the device computes and reads each output on the compute queue after it; ``trace_1cq`` (issue 17g2): the
  inputs written, the trace run and the outputs read in order on one command queue, as tt-metal's ResNet-50
  ``test_perf_trace`` does, so nothing overlaps) and the host's measured write rate
  (GB/s; reads at ``host_read_gb_per_s``). The chips behind one host link (``chips.host_links``) share it;
  cost/host_io.host_batch_io prices it, sim/base.simulate charges it in both simulators. Its source is
  ``sources.host_io`` (required when set); docs/parallelism.md "Host I/O per batch".
- ``split_fused_projections`` (issue 17d, eighth session): the stack's runtime splits a checkpoint's fused
  ``qkv_proj`` / ``gate_up_proj`` tensors into separate q/k/v and gate/up weights when it loads them (tt-metal's
  tt_transformers: load_checkpoints.split_hf_keys), so a Phi-3 or Falcon decoder runs the same program as a Llama
  one; evaluate.stack_model builds such a decoder with separate projections (ModelConfig.split_projections) and
  every operator pays what a Llama operator pays. Its source is ``sources.split_projections`` (required when set).
- ``separate_qkv_bias`` (issue 17q, ninth session): the stack's attention adds a Qwen2 decoder's q/k/v biases in a
  separate elementwise operator after the QKV matmul (its matmul kernel takes no bias), one per layer over the fused
  q/k/v columns, its bias tensor expanded to the tile-padded rows at decode (tt-metal's tt_transformers:
  attention.py forward_decode); evaluate.stack_model builds such a decoder with ``ModelConfig.qkv_bias_add``. Other
  stacks keep the bias folded into the projections. Its source is ``sources.qkv_bias`` (required when set).
- ``kv_head_sharding`` (issue 17d): how the stack lays attention heads over its tensor-parallel ranks.
  "" (default): compiler/parallel/tp.py's per-chip split; ``replicate_to_ranks``: transformers-neuronx's
  layout, one rank per core (TP degree = chips x cores per chip): query heads padded to a multiple of the
  ranks, KV heads replicated to the query heads when the ranks do not divide them, so each core stores and
  reads its own copy. Its source is ``sources.kv_head_sharding`` (required when set).
- ``matrix_fidelity`` (issue 17g): the math fidelity the stack's kernels run every matrix-unit operator at,
  whatever the operands' formats. "" (default): the rate of the operands' format (``cores.format_speedup``);
  ``lofi``: the Tensix core's one-phase LoFi rate, which the Tenstorrent chip files give as their fastest
  matrix mode (``format_speedup.best``, 4096 FLOP/cycle = 4x the HiFi4 base); tt-metal's CNN and ViT demos run
  their convolutions and matmuls at LoFi (docs/stacks.md, tt_cnn). Fidelity phases exist on Tensix cores only
  (``cores.model: tensix``); on other core models the field changes nothing. Its source is
  ``sources.matrix_fidelity`` (required when set).
- ``auto_cast`` (issue 17e, seventh session): neuronx-cc's ``--auto-cast`` mode the stack compiles traced FP32
  models with: ``matmult`` (matrix operands at the model's declared format, every other operation and the
  tensors between them in FP32, with a cast where an FP32 tensor feeds a matmul), ``none`` (all FP32), ``all`` or
  "" (the graph as declared); cost/neuron_autocast.py. Its source is ``sources.auto_cast`` (required when set).

- ``programs`` (issue 17s): what the stack's own code for one model sets beyond the stack-wide rules, one
  :class:`ModelProgram` per model name: the compute grid its program configs run every operator on (e.g.
  tt-metal's Sentence-BERT demo: 6 x 8 of the Wormhole's 8 x 8 cores) and the math fidelity of named matrix
  operators (its FF1 matmul at HiFi2 while the stack's other matmuls run LoFi). :func:`apply_program` applies
  the model's entry (evaluate.py); its source is ``sources.programs`` (required when set).

- ``matmul_efficiency_by_arch`` (issue 17k, eighth session): the stack's matrix kernels' measured utilization on
  chips of a named architecture, a table of [per-core 32x32x32 tile products, utilization] rows per
  architecture (``wormhole_b0``, ``blackhole``): applied to Tensix cores as ``cores.matmul_efficiency``
  (cost/core_models.TensixCore divides a matrix operator's ideal cycles by it; docs/core_models.md). An
  architecture left out (and a chip naming none) runs at the peak. Its source is ``sources.matmul_efficiency``
  (required when any table is set).

- ``dispatch_us_per_op_by_arch`` (issue 17b, seventh session): the per-operator dispatch on chips of a named
  silicon architecture (``Chip.architecture``: ``wormhole_b0``, ``blackhole``), in place of
  ``dispatch_us_per_op``; an architecture left out (and a chip naming none) pays ``dispatch_us_per_op``. Each entry
  can be fitted (``calibration.fit: [dispatch_us_per_op.blackhole]``) on the stack's calibration points of that
  architecture only (validation/suite.fit). Its source is ``sources.dispatch_by_arch`` (required when any entry
  is set).

- ``dispatch_offset_us_by_arch`` (issue 17b3, ninth session): microseconds added to ``dispatch_us_per_op`` on chips
  of a named architecture (signed; the sum is never charged below 0): the difference the vendor measures between
  architectures in the part of the per-operator gap it measures (tt_cnn: the traced dispatch micro-benchmark),
  so an architecture's gap follows the stack's fitted gap instead of being fitted on a point of its own. An own
  entry in ``dispatch_us_per_op_by_arch`` takes precedence over the offset (e.g. ``stack.dispatch_us_per_op_by_arch
  .blackhole=5`` on the command line). Its source is ``sources.dispatch_offset`` (required when any offset is set).

Applying a profile to a chip (:func:`apply_stack`) *adds* its times to the chip's own ``overheads`` (silicon
or firmware costs a description may carry) and *multiplies* ``hbm.efficiency`` by ``dram_efficiency``, so a
chip override and a stack never silently replace each other. ``calibration`` names the profile's declared
calibration points (``role: calibration`` in ``validation/points.yaml``) and the parameters fitted on them
(docs/stacks.md, docs/validation.md).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from elk_dse.errors import ConfigError, nearest
from elk_dse.hw.chip import (
    ARCHITECTURES,
    Chip,
    FormatSpeedup,
    check_ccl_scheme,
    check_decode_attention,
    check_host_batch_io,
    check_host_sampling,
    check_kv_head_sharding,
    check_matmul_efficiency,
    check_op_fidelity,
    check_sdpa_kernel,
)
from elk_dse.schema import build, in_range

# issue 17b (seventh session): the fitted name of an architecture's own dispatch, e.g. dispatch_us_per_op.blackhole
ARCH_DISPATCH = tuple(f"dispatch_us_per_op.{arch}" for arch in ARCHITECTURES)
# What validation/suite.py can fit on calibration points.
FITTABLE = ("dispatch_us_per_op", "dram_efficiency", "collective_startup_us", "launch_us_per_step",
            "sdpa_ns_per_score_tile", *ARCH_DISPATCH)
# The profile's fixed costs, microseconds.
TIMES = ("dispatch_us_per_op", "sync_us_per_layer", "chip_sync_us_per_layer", "collective_startup_us",
         "launch_us_per_step")
NONE = "none"
# issue 17g: StackProfile.matrix_fidelity's values ("" = the rate of the operands' format).
MATRIX_FIDELITIES = ("", "lofi")
AUTO_CAST_MODES = ("", "none", "matmult", "all")  # issue 17e: neuronx-cc's --auto-cast (cost/neuron_autocast.py)


@dataclass(frozen=True)
class StackSources:
    """Where each value of a profile comes from (a document with its commit, a fit, or an assumption)."""

    dispatch_us_per_op: str
    sync_us_per_layer: str
    chip_sync_us_per_layer: str
    collective_startup_us: str
    dram_efficiency: str
    launch_us_per_step: str = ""  # required only when the value is not 0 (StackProfile checks)
    sdpa: str = ""  # issue 17s: the decode-attention kernel's values; required when sdpa_grid_cores is not 0
    ccl: str = ""  # issue 17c: ccl_link_latency_ns / ccl_bytes_per_element; required when either is not 0
    sdpa_padded_users: str = ""  # issue 17k: required when sdpa_padded_users is not 0
    decode_attention: str = ""  # issue 17d: kv_bucket_min_tokens / decode_softmax; required when either is set
    kv_head_sharding: str = ""  # issue 17d: required when kv_head_sharding is set
    matrix_fidelity: str = ""  # issue 17g: required when matrix_fidelity is set
    ccl_dispatch: str = ""  # issue 17c (sixth session): required when ccl_dispatch_us_per_op is set
    programs: str = ""  # issue 17s: required when programs is set
    auto_cast: str = ""  # issue 17e (seventh session): required when auto_cast is set
    host_sampling: str = ""  # issue 17t (seventh session): required when host_sampling_min_batch is set
    dispatch_by_arch: str = ""  # issue 17b (seventh session): required when dispatch_us_per_op_by_arch has an entry
    host_io: str = ""  # issue 17g (eighth session): required when host_batch_io is set
    split_projections: str = ""  # issue 17d (eighth session): required when split_fused_projections is set
    matmul_efficiency: str = ""  # issue 17k (eighth session): required when matmul_efficiency_by_arch has a table
    dispatch_offset: str = ""  # issue 17b3 (ninth session): required when dispatch_offset_us_by_arch has an entry
    qkv_bias: str = ""  # issue 17q (ninth session): required when separate_qkv_bias is set

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            optional = ("launch_us_per_step", "sdpa", "ccl", "sdpa_padded_users", "decode_attention",
                        "kv_head_sharding", "matrix_fidelity", "ccl_dispatch", "programs", "auto_cast",
                        "host_sampling", "dispatch_by_arch", "host_io", "split_projections", "matmul_efficiency",
                        "dispatch_offset", "qkv_bias")
            if f.name not in optional and not getattr(self, f.name).strip():
                raise ConfigError(f.name, getattr(self, f.name), "say where the value comes from (a source, a "
                                  "fit on named calibration points, or 'assumption: ...')")


    def of(self, name: str) -> str:
        """The source of a fitted parameter (a FITTABLE name; an architecture's dispatch: ``dispatch_by_arch``)."""
        if name in ARCH_DISPATCH:
            return self.dispatch_by_arch
        return str(getattr(self, name, ""))


@dataclass(frozen=True)
class ArchDispatch:
    """issue 17b (seventh session): the per-operator dispatch, microseconds, a stack charges on chips of each
    silicon architecture (hw/chip.ARCHITECTURES, one field each); None = the stack's ``dispatch_us_per_op``."""

    wormhole_b0: float | None = None
    blackhole: float | None = None
    LOWEST_US: ClassVar[float] = 0.0  # the smallest entry allowed (ArchOffset: signed)

    def __post_init__(self) -> None:
        for arch in ARCHITECTURES:
            value = getattr(self, arch)
            if value is not None:
                in_range(arch, value, self.LOWEST_US, 1e6)

    def set(self) -> dict[str, float]:
        """{architecture: microseconds} of the entries given."""
        return {arch: v for arch in ARCHITECTURES if (v := getattr(self, arch)) is not None}


@dataclass(frozen=True)
class ArchOffset(ArchDispatch):
    """issue 17b3 (ninth session): microseconds a stack adds to its ``dispatch_us_per_op`` on chips of each silicon
    architecture (hw/chip.ARCHITECTURES, one field each; signed); None = no offset."""

    LOWEST_US: ClassVar[float] = -1e6


@dataclass(frozen=True)
class ArchEfficiency:
    """issue 17k (eighth session): the stack's matrix kernels' measured utilization on chips of each silicon
    architecture (hw/chip.ARCHITECTURES, one field each): [per-core 32x32x32 tile products, utilization] rows
    (hw/chip.CoreSpec.matmul_efficiency); () = the matrix engine's peak."""

    wormhole_b0: tuple[tuple[float, float], ...] = ()
    blackhole: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        for arch in ARCHITECTURES:
            check_matmul_efficiency(arch, getattr(self, arch))

    def set(self) -> dict[str, tuple[tuple[float, float], ...]]:
        """{architecture: table} of the tables given."""
        return {arch: t for arch in ARCHITECTURES if (t := getattr(self, arch))}


@dataclass(frozen=True)
class StackCalibration:
    """The profile's declared calibration points (ids in validation/points.yaml) and the parameters fitted on
    them (a subset of FITTABLE); empty: the shipped values are used as is."""

    points: tuple[str, ...] = ()
    fit: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in self.fit:
            if name not in FITTABLE:
                raise ConfigError("fit", name, "one of " + ", ".join(FITTABLE) + nearest(name, FITTABLE))
        if len(set(self.fit)) != len(self.fit) or len(set(self.points)) != len(self.points):
            raise ConfigError("fit", list(self.fit), "each parameter and point at most once")
        if self.fit and not self.points:
            raise ConfigError("fit", list(self.fit), "fitted parameters need calibration points (points: [...])")


@dataclass(frozen=True)
class ModelProgram:
    """Issue 17s: what a stack's code for one model (``model``: the model config's name, e.g. ``bert_base``)
    sets: ``grid``, the compute grid (cores per chip, as ``cores.grid``) every operator of the model runs on
    (() = the chip's whole grid; clipped to the chip's grid dimension by dimension; chips without a grid or of
    another rank keep theirs), and ``op_fidelity``, (operator name, fidelity) pairs for matrix operators the
    code runs at another Tensix fidelity than the stack's (``cores.op_fidelity``; Tensix cores only)."""

    model: str
    grid: tuple[int, ...] = ()
    op_fidelity: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ConfigError("model", self.model, "the name of a model config (e.g. bert_base)")
        for g in self.grid:
            in_range("grid", g, 1, 4096)
        check_op_fidelity("op_fidelity", self.op_fidelity)


@dataclass(frozen=True)
class StackProfile:
    """A software stack's fixed costs (physical units in the names) with their sources; see the module doc."""

    name: str
    sources: StackSources
    description: str = ""
    dispatch_us_per_op: float = 0.0
    sync_us_per_layer: float = 0.0
    chip_sync_us_per_layer: float = 0.0
    collective_startup_us: float = 0.0
    dram_efficiency: float = 1.0
    calibration: StackCalibration = field(default_factory=StackCalibration)
    launch_us_per_step: float = 0.0
    sdpa_grid_cores: int = 0  # issue 17s (module doc): 0 = no decode-attention kernel modelled
    sdpa_max_cores_per_head: int = 16
    sdpa_k_chunk_tokens: int = 32
    sdpa_ns_per_score_tile: float = 0.0
    sdpa_padded_users: int = 0  # issue 17k (module doc): 0 = the kernel is launched for the real users only
    ccl_link_latency_ns: float = 0.0  # issue 17c (module doc): 0 = the chip's chips.link_latency_ns
    ccl_bytes_per_element: float = 0.0  # issue 17c (module doc): 0 = the operators' output dtype
    ccl_scheme: str = ""  # issue 17t (module doc): "" = the strategies' own collectives
    kv_bucket_min_tokens: int = 0  # issue 17d (module doc): 0 = decode attention over kv_len itself
    decode_softmax: str = ""  # issue 17d (module doc): "" or "neuron_v2" (cost/neuron_attention.py)
    kv_head_sharding: str = ""  # issue 17d (module doc): "" or "replicate_to_ranks" (compiler/parallel/tp.py)
    matrix_fidelity: str = ""  # issue 17g (module doc): "" (by operand format) or "lofi"
    ccl_dispatch_us_per_op: float | None = None  # issue 17c, sixth session (module doc): None = dispatch_us_per_op
    programs: tuple[ModelProgram, ...] = ()  # issue 17s (module doc): per-model grid and operator fidelities
    auto_cast: str = ""  # issue 17e, seventh session (module doc): "", none, matmult or all (cost/neuron_autocast.py)
    host_sampling_min_batch: int = 0  # issue 17t, seventh session (module doc): 0 = sampling on the device
    host_read_gb_per_s: float = 0.0  # issue 17t, seventh session (module doc): the host's read rate, GB/s
    host_batch_io: str = ""  # issue 17g, eighth session (module doc): "" = no per-batch host I/O charged
    host_write_gb_per_s: float = 0.0  # issue 17g, eighth session (module doc): the host's write rate, GB/s
    # issue 17b, seventh session (module doc): the dispatch per chip architecture; an entry left out (None) and a
    # chip naming no architecture pay dispatch_us_per_op
    dispatch_us_per_op_by_arch: ArchDispatch = field(default_factory=ArchDispatch)
    split_fused_projections: bool = False  # issue 17d, eighth session (module doc): fused checkpoint tensors split at load
    # issue 17k, eighth session (module doc): the matrix kernels' utilization per architecture (Tensix cores)
    matmul_efficiency_by_arch: ArchEfficiency = field(default_factory=ArchEfficiency)
    # issue 17b3, ninth session (module doc): us added to dispatch_us_per_op on chips of an architecture
    dispatch_offset_us_by_arch: ArchOffset = field(default_factory=ArchOffset)
    separate_qkv_bias: bool = False  # issue 17q, ninth session (module doc): q/k/v biases added after the matmul

    def __post_init__(self) -> None:
        check_ccl_scheme("ccl_scheme", self.ccl_scheme)
        models = [p.model for p in self.programs]
        if len(set(models)) != len(models):
            raise ConfigError("programs", models, "one entry per model")
        check_host_sampling(self.host_sampling_min_batch, self.host_read_gb_per_s)
        check_host_batch_io(self.host_batch_io, self.host_write_gb_per_s, self.host_read_gb_per_s)
        if self.matrix_fidelity not in MATRIX_FIDELITIES:
            raise ConfigError("matrix_fidelity", self.matrix_fidelity, "one of '' (the rate of the operands' "
                              "format, cores.format_speedup) or 'lofi' (every matrix operator at the Tensix "
                              "core's LoFi rate)" + nearest(self.matrix_fidelity, MATRIX_FIDELITIES))
        check_decode_attention(self)
        if self.auto_cast not in AUTO_CAST_MODES:  # issue 17e
            raise ConfigError("auto_cast", self.auto_cast, "one of '' (the graph as declared), 'none', 'matmult' or "
                              "'all' (neuronx-cc's --auto-cast)" + nearest(self.auto_cast, AUTO_CAST_MODES))
        check_kv_head_sharding(self.kv_head_sharding)
        check_sdpa_kernel(self)
        in_range("ccl_link_latency_ns", self.ccl_link_latency_ns, 0.0, 1e9)
        in_range("ccl_bytes_per_element", self.ccl_bytes_per_element, 0.0, 16.0)
        if self.ccl_dispatch_us_per_op is not None:
            in_range("ccl_dispatch_us_per_op", self.ccl_dispatch_us_per_op, 0.0, 1e6)
        if not self.name.isidentifier():
            raise ConfigError("name", self.name, "a stack name is a word of letters, digits and _")
        for name in TIMES:
            in_range(name, getattr(self, name), 0.0, 1e6)
        if not 0.05 <= self.dram_efficiency <= 1.0:
            raise ConfigError("dram_efficiency", self.dram_efficiency,
                              "the achievable fraction of the DRAM peak, in [0.05, 1]")

    def dispatch_for(self, architecture: str) -> float:
        """The per-operator dispatch, microseconds, on a chip of ``architecture`` (Chip.architecture; "" = none
        named): its ``dispatch_us_per_op_by_arch`` entry (it takes precedence over an offset), else ``dispatch_us_per_op`` plus the architecture's ``dispatch_offset_us_by_arch`` entry
        (issue 17b3; never below 0)."""
        own = getattr(self.dispatch_us_per_op_by_arch, architecture, None) if architecture else None
        if own is not None:
            return float(own)
        offset = getattr(self.dispatch_offset_us_by_arch, architecture, None) if architecture else None
        return self.dispatch_us_per_op if offset is None else max(0.0, self.dispatch_us_per_op + float(offset))

    def value(self, name: str) -> float:
        """A numeric value by its fitted name (FITTABLE): a field, or ``dispatch_us_per_op.<architecture>`` (that
        architecture's dispatch, ``dispatch_us_per_op`` where it has no entry)."""
        if name in ARCH_DISPATCH:
            return self.dispatch_for(name.split(".", 1)[1])
        return float(getattr(self, name))

    def with_values(self, **values: float) -> StackProfile:
        """This profile with some numeric values replaced (the calibration fit's candidates), validated again;
        ``dispatch_us_per_op.<architecture>`` sets that architecture's entry of dispatch_us_per_op_by_arch."""
        unknown = set(values) - {*TIMES, "dram_efficiency", "sdpa_ns_per_score_tile", "ccl_link_latency_ns",
                                 *ARCH_DISPATCH}
        if unknown:
            raise ValueError(f"not a numeric value of a stack profile: {sorted(unknown)}")
        per_arch = {name.split(".", 1)[1]: values.pop(name) for name in list(values) if name in ARCH_DISPATCH}
        if per_arch:
            values["dispatch_us_per_op_by_arch"] = dataclasses.replace(  # type: ignore[assignment]
                self.dispatch_us_per_op_by_arch, **per_arch)
        return dataclasses.replace(self, **values)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain data (the JSON output and sweep.json name the stack and its values)."""
        return dataclasses.asdict(self)


def stack_from_dict(data: Any, path: str = "stack") -> StackProfile:
    """Build and validate a profile from a mapping; ConfigError (one line) naming the field. A launch cost
    other than 0 needs its source (``sources.launch_us_per_step``; optional while the value is 0)."""
    profile = build(StackProfile, data, path)
    if profile.launch_us_per_step and not profile.sources.launch_us_per_step.strip():
        raise ConfigError(f"{path}.sources.launch_us_per_step", "", "say where the value comes from (a source, "
                          "a fit on named calibration points, or 'assumption: ...')")
    if profile.sdpa_grid_cores and not profile.sources.sdpa.strip():
        raise ConfigError(f"{path}.sources.sdpa", "", "say where the decode-attention kernel's values come from "
                          "(the vendor's code with its commit, a fit on named calibration points, or "
                          "'assumption: ...')")
    if profile.sdpa_padded_users and not profile.sources.sdpa_padded_users.strip():
        raise ConfigError(f"{path}.sources.sdpa_padded_users", "", "say where the kernel's launch batch comes from "
                          "(the vendor's demo code with its commit, or 'assumption: ...')")
    if (profile.kv_bucket_min_tokens or profile.decode_softmax) and not profile.sources.decode_attention.strip():
        raise ConfigError(f"{path}.sources.decode_attention", "", "say where the decode attention's bucket and "
                          "softmax rule come from (the vendor's code with its commit, or 'assumption: ...')")
    if profile.kv_head_sharding and not profile.sources.kv_head_sharding.strip():
        raise ConfigError(f"{path}.sources.kv_head_sharding", "", "say where the KV-head sharding comes from "
                          "(the vendor's code with its commit, or 'assumption: ...')")
    if profile.matrix_fidelity and not profile.sources.matrix_fidelity.strip():
        raise ConfigError(f"{path}.sources.matrix_fidelity", "", "say where the kernels' math fidelity comes from "
                          "(the vendor's code with its commit, or 'assumption: ...')")
    if profile.programs and not profile.sources.programs.strip():
        raise ConfigError(f"{path}.sources.programs", "", "say where the per-model grid and fidelities come from "
                          "(the vendor's model code with its commit, or 'assumption: ...')")
    if profile.ccl_dispatch_us_per_op is not None and not profile.sources.ccl_dispatch.strip():
        raise ConfigError(f"{path}.sources.ccl_dispatch", "", "say where the charge of an operation running a "
                          "collective comes from (the vendor's measurements with their commit, or 'assumption: ...')")
    if profile.auto_cast and not profile.sources.auto_cast.strip():  # issue 17e
        raise ConfigError(f"{path}.sources.auto_cast", "", "say where the compiler's auto-cast mode comes from "
                          "(the vendor's benchmark configuration or compiler reference with its commit, or "
                          "'assumption: ...')")
    if profile.host_sampling_min_batch and not profile.sources.host_sampling.strip():
        raise ConfigError(f"{path}.sources.host_sampling", "", "say where the batch from which the host samples and "
                          "its read rate come from (the vendor's code and measurements with their commit, or "
                          "'assumption: ...')")
    if profile.host_batch_io and not profile.sources.host_io.strip():  # issue 17g (eighth session)
        raise ConfigError(f"{path}.sources.host_io", "", "say where the host I/O rule and its write / read rates "
                          "come from (the vendor's code and measurements with their commit, or 'assumption: ...')")
    if profile.split_fused_projections and not profile.sources.split_projections.strip():  # issue 17d
        raise ConfigError(f"{path}.sources.split_projections", "", "say where the runtime's splitting of fused "
                          "projections comes from (the vendor's loader code with its commit, or 'assumption: ...')")
    if profile.separate_qkv_bias and not profile.sources.qkv_bias.strip():  # issue 17q (ninth session)
        raise ConfigError(f"{path}.sources.qkv_bias", "", "say where the separate q/k/v bias add comes from (the "
                          "vendor's attention code with its commit, or 'assumption: ...')")
    if profile.dispatch_us_per_op_by_arch.set() and not profile.sources.dispatch_by_arch.strip():
        raise ConfigError(f"{path}.sources.dispatch_by_arch", "", "say where the per-architecture dispatch comes "
                          "from (a fit on named calibration points of that architecture, or 'assumption: ...')")
    if profile.dispatch_offset_us_by_arch.set() and not profile.sources.dispatch_offset.strip():  # issue 17b3
        raise ConfigError(f"{path}.sources.dispatch_offset", "", "say where the per-architecture offset of the "
                          "dispatch comes from (the vendor's micro-benchmarks with their commit, or 'assumption: ...')")
    if profile.matmul_efficiency_by_arch.set() and not profile.sources.matmul_efficiency.strip():  # issue 17k
        raise ConfigError(f"{path}.sources.matmul_efficiency", "", "say where the matrix kernels' utilization "
                          "comes from (the vendor's micro-benchmark tables with their commit, or 'assumption: ...')")
    if (profile.ccl_link_latency_ns or profile.ccl_bytes_per_element or profile.ccl_scheme) and not \
            profile.sources.ccl.strip():
        raise ConfigError(f"{path}.sources.ccl", "", "say where the collectives' latency and payload format come "
                          "from (the vendor's code or micro-benchmarks with their commit, or 'assumption: ...')")
    return profile


def stack_names() -> list[str]:
    """The shipped profiles: conf/stack/<name>.yaml."""
    return _stack_names()


@functools.cache
def _stack_names() -> list[str]:
    root = importlib.resources.files("elk_dse.conf") / "stack"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def check_stack_name(name: str, field_name: str = "stack") -> None:
    """ConfigError naming ``field_name`` unless ``name`` is a shipped profile."""
    names = stack_names()
    if name not in names:
        raise ConfigError(field_name, name, "one of " + ", ".join(names) + nearest(name, names))


@functools.cache
def load_stack(name: str) -> StackProfile:
    """The shipped profile ``conf/stack/<name>.yaml``, validated (ConfigError naming the file's field)."""
    check_stack_name(name)
    text = (importlib.resources.files("elk_dse.conf") / "stack" / f"{name}.yaml").read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"conf/stack/{name}.yaml", "", f"not valid YAML ({type(err).__name__})") from None
    profile = stack_from_dict(data, "stack")
    if profile.name != name:
        raise ConfigError("stack.name", profile.name, f"must equal the file name ({name})")
    return profile


def default_stack(chip: Chip) -> StackProfile:
    """The profile a chip runs when none is chosen: its ``default_stack``, else ``none``."""
    return load_stack(chip.default_stack or NONE)


def all_core(chip: Chip) -> bool:
    """Whether the compiler partitions every operator over all cores of all chips (today's compiler, and
    ``chips.parallelism: all_core`` once that field exists)."""
    return getattr(chip.chips, "parallelism", "all_core") == "all_core"


def apply_stack(chip: Chip, stack: StackProfile) -> Chip:
    """``chip`` running ``stack``: the profile's times added to the chip's overheads, its DRAM efficiency
    multiplied into ``hbm.efficiency`` (see the module doc). ConfigError if the product leaves the allowed
    range of ``hbm.efficiency``."""
    if not (any(getattr(stack, name) for name in TIMES) or stack.dram_efficiency != 1.0 or stack.sdpa_grid_cores
            or stack.ccl_link_latency_ns or stack.ccl_bytes_per_element or stack.ccl_scheme or stack.decode_softmax
            or stack.kv_head_sharding or stack.matrix_fidelity
            or stack.ccl_dispatch_us_per_op is not None or stack.host_sampling_min_batch
            or stack.dispatch_us_per_op_by_arch.set() or stack.host_batch_io or stack.matmul_efficiency_by_arch.set()
            or stack.dispatch_offset_us_by_arch.set()):
        return chip  # nothing to add (the none profile): keep the chip and its cached routing figures
    o = chip.overheads
    chip_sync = stack.chip_sync_us_per_layer if chip.num_chips > 1 and all_core(chip) else 0.0
    # parallelism=auto: held back for auto's all_core candidate (OverheadSpec.all_core_sync_us_per_layer)
    held = stack.chip_sync_us_per_layer if chip.num_chips > 1 and chip.chips.parallelism == "auto" else 0.0
    overheads = dataclasses.replace(  # issue 17b: the dispatch of the chip's architecture (stack.dispatch_for)
        o, dispatch_us_per_op=o.dispatch_us_per_op + stack.dispatch_for(chip.architecture),
        sync_us_per_layer=o.sync_us_per_layer + stack.sync_us_per_layer + chip_sync,
        collective_startup_us=o.collective_startup_us + stack.collective_startup_us,
        all_core_sync_us_per_layer=o.all_core_sync_us_per_layer + held,
        launch_us_per_step=o.launch_us_per_step + stack.launch_us_per_step)
    if stack.sdpa_grid_cores:  # the stack's decode-attention kernel replaces the chip's (issue 17s)
        overheads = dataclasses.replace(
            overheads, sdpa_grid_cores=stack.sdpa_grid_cores, sdpa_max_cores_per_head=stack.sdpa_max_cores_per_head,
            sdpa_k_chunk_tokens=stack.sdpa_k_chunk_tokens, sdpa_ns_per_score_tile=stack.sdpa_ns_per_score_tile,
            sdpa_padded_users=stack.sdpa_padded_users)
    if stack.decode_softmax:  # issue 17d: the stack's decode softmax engine rule (cost/neuron_attention.py)
        overheads = dataclasses.replace(overheads, decode_softmax=stack.decode_softmax)
    if stack.kv_head_sharding:  # issue 17d: the stack's KV-head layout over TP ranks (compiler/parallel/tp.py)
        overheads = dataclasses.replace(overheads, kv_head_sharding=stack.kv_head_sharding)
    if stack.ccl_bytes_per_element:  # issue 17c: the stack's CCL payload format (tp2d reads it)
        overheads = dataclasses.replace(overheads, ccl_bytes_per_element=stack.ccl_bytes_per_element)
    if stack.ccl_scheme:  # issue 17t: the collectives the stack's code issues (tp and tp2d read it)
        overheads = dataclasses.replace(overheads, ccl_scheme=stack.ccl_scheme)
    if stack.ccl_dispatch_us_per_op is not None:  # issue 17c (sixth session): a collective operation's own charge,
        # added to the chip's own per-operation cost as every stack time is
        overheads = dataclasses.replace(overheads, ccl_dispatch_us_per_op=o.dispatch_us_per_op
                                        + stack.ccl_dispatch_us_per_op)
    if stack.host_sampling_min_batch:  # issue 17t (seventh session): the stack's host sampling (cost/host_io.py)
        overheads = dataclasses.replace(overheads, host_sampling_min_batch=stack.host_sampling_min_batch,
                                        host_read_gb_per_s=stack.host_read_gb_per_s)
    if stack.host_batch_io:  # issue 17g (eighth session): the stack's per-batch host I/O (cost/host_io.py)
        overheads = dataclasses.replace(overheads, host_batch_io=stack.host_batch_io,
                                        host_write_gb_per_s=stack.host_write_gb_per_s,
                                        host_read_gb_per_s=stack.host_read_gb_per_s)
    chips = chip.chips
    if stack.ccl_link_latency_ns and chip.num_chips > 1:  # issue 17c: the stack's collectives' per-step latency
        chips = dataclasses.replace(chips, link_latency_ns=stack.ccl_link_latency_ns)
    cores = chip.cores
    if stack.matrix_fidelity and cores.model == "tensix":  # issue 17g: every matrix operator at LoFi
        # Fidelity phases are a Tensix notion; other core models keep their format rates (module doc).
        lofi = cores.format_speedup.best  # the Tensix chip files' fastest matrix mode is LoFi (one phase)
        cores = dataclasses.replace(cores, format_speedup=FormatSpeedup(
            **{f.name: lofi for f in dataclasses.fields(FormatSpeedup)}))
    table = getattr(stack.matmul_efficiency_by_arch, chip.architecture, ()) if chip.architecture else ()
    if table and cores.model == "tensix":  # issue 17k (eighth session): the stack's kernels' measured utilization
        cores = dataclasses.replace(cores, matmul_efficiency=table)
    hbm = chip.hbm
    if hbm is not None and stack.dram_efficiency != 1.0:
        efficiency = hbm.efficiency * stack.dram_efficiency
        if efficiency < 0.05:
            raise ConfigError("stack.dram_efficiency", stack.dram_efficiency, f"times chip.hbm.efficiency="
                              f"{hbm.efficiency} gives {efficiency:.3g}; the product must be >= 0.05")
        hbm = dataclasses.replace(hbm, efficiency=efficiency)
    return dataclasses.replace(chip, overheads=overheads, hbm=hbm, chips=chips, cores=cores)


def model_program(stack: StackProfile, model: str) -> ModelProgram | None:
    """The stack's program for the model named ``model`` (issue 17s), None if it has none."""
    return next((p for p in stack.programs if p.model == model), None)


def apply_program(chip: Chip, stack: StackProfile, model: str, op_names: Collection[str]) -> Chip:
    """Issue 17s: ``chip`` as the stack's code for ``model`` uses it (the module doc's ``programs``): the
    program's grid (clipped to the chip's, dimension by dimension; a chip without a grid, with a grid of another
    rank or a ``graph`` network keeps its own) and, on Tensix cores, its operator fidelities. ConfigError (one
    line) if the program names an operator the model's graph (``op_names``) does not have."""
    program = model_program(stack, model)
    if program is None:
        return chip
    for op, _ in program.op_fidelity:
        if op not in op_names:
            raise ConfigError(f"stack {stack.name}: programs[{model}].op_fidelity", op,
                              f"an operator of model {model}" + nearest(op, sorted(op_names)))
    cores = chip.cores
    if program.grid and cores.grid is not None and len(cores.grid) == len(program.grid) \
            and chip.interconnect.topology != "graph":
        grid = tuple(min(g, c) for g, c in zip(program.grid, cores.grid, strict=True))
        cores = dataclasses.replace(cores, grid=grid, count=math.prod(grid))
    if program.op_fidelity and cores.model == "tensix":
        cores = dataclasses.replace(cores, op_fidelity=program.op_fidelity)
    return chip if cores is chip.cores else dataclasses.replace(chip, cores=cores)
