"""One design point end to end: build the workload, compile it, simulate it, bound it, report it.

:func:`evaluate` returns the stable output contract (a JSON-ready dict) that ``evaluate format=json`` prints
and the sweep stores; see README "Output contract".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from elk_dse import __version__
from elk_dse.breakdown import PARTS, latency_breakdown
from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.parallel import SimTimer
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.conventions import conventions
from elk_dse.cost.area import area_mm2, area_proxy_mm2, static_power_w
from elk_dse.cost.energy import LEVELS, program_energy, system_energy
from elk_dse.cost.network import noc_bytes_per_s
from elk_dse.cost.neuron_attention import kv_bucket
from elk_dse.cost.neuron_autocast import auto_cast_graph
from elk_dse.cost.neuron_layout import mark_transposes
from elk_dse.cost.roofline import roofline_bound
from elk_dse.errors import ConfigError
from elk_dse.hw.chip import Chip
from elk_dse.hw.stack import StackProfile, apply_program, apply_stack, default_stack, model_program
from elk_dse.ir.graph import Graph
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Infeasible, Program
from elk_dse.sim import SimConfig, check_simulator, simulate
from elk_dse.sim.base import SIMULATORS, SimResult

PARALLEL_METRICS = ("parallel_tp", "parallel_pp", "parallel_ep", "parallel_dp", "collectives_per_step")

# The scalar metrics of the contract, in the order the Parquet rows carry them (prefixed "metric.").
METRICS = (
    "latency_s", "roofline_latency_s", "roofline_compute_s", "roofline_hbm_s", "roofline_fraction",
    "throughput_per_s", "flops", "hbm_bytes", "must_hbm_bytes", "weight_bytes", "kv_cache_bytes",
    "parameter_bytes", "noc_bytes", "chip_link_bytes", "peak_flops_per_s", "hbm_bytes_per_s",
    "noc_bytes_per_s", "achieved_flops_per_s", "area_proxy_mm2", "area_mm2", "power_w", "static_power_w",
    "energy_j", "energy_per_item_j", "latency_per_item_s", "perf_per_mm2", "perf_per_w", "constraint_violation", "compute_busy_s", "noc_busy_s",
    "hbm_busy_s", "sync_busy_s", "sram_used_bytes_per_core", "event_latency_s", "eval_s",
    # Where the latency goes (elk_dse/breakdown.py); the five sum to latency_s.
    "breakdown_compute_s", "breakdown_shift_s", "breakdown_hbm_exposed_s", "breakdown_sync_s", "breakdown_idle_s",
    # Where the energy goes (elk_dse/cost/energy.py): per level, the seven sum to energy_j; dynamic = all but static.
    *(f"energy_{level}_j" for level in LEVELS), "energy_dynamic_j",
    # The parallelism across chips the compiler used (compiler/parallel/): each strategy's degree (1 = not used;
    # all 1 = all_core or one chip) and the collectives of one step (issue 17).
    *PARALLEL_METRICS,
)


@dataclass(frozen=True)
class DesignPoint:
    """Everything that determines one evaluation."""

    chip: Chip
    model: ModelConfig
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    conventions: str = "default"  # default | paper (elk_dse/conventions.py)
    stack: StackProfile | None = None  # the software stack (hw/stack.py); None: the chip's default_stack

    def __post_init__(self) -> None:
        conventions(self.conventions)  # ConfigError naming the field if unknown

    @property
    def resolved_stack(self) -> StackProfile:
        """The software stack this point runs: ``stack``, else the chip's ``default_stack``, else ``none``."""
        return self.stack if self.stack is not None else default_stack(self.chip)

    @property
    def system(self) -> Chip:
        """The chip running the stack: the profile's overheads applied (hw/stack.apply_stack)."""
        return apply_stack(self.chip, self.resolved_stack)


def stack_model(model: ModelConfig, stack: StackProfile) -> ModelConfig:
    """Issue 17d: the model as the stack runs it: a decode step of a stack with KV buckets
    (``kv_bucket_min_tokens``, e.g. transformers-neuronx) attends over its bucket of cache positions, not
    ``kv_len`` (cost/neuron_attention.kv_bucket); issue 17d (eighth session): a stack that splits fused
    checkpoint projections at load (``split_fused_projections``) runs the decoder with separate ones; issue 17q
    (ninth session): a stack that adds the q/k/v biases after the matmul (``separate_qkv_bias``) builds a Qwen2
    decoder with that operator (ModelConfig.qkv_bias_add); every other model as given."""
    if stack.split_fused_projections and not model.split_projections:
        model = replace(model, split_projections=True)
    if stack.separate_qkv_bias and not model.qkv_bias_add:  # issue 17q (ninth session): Qwen2's bias add
        model = replace(model, qkv_bias_add=True)
    if model.phase != "decode" or not stack.kv_bucket_min_tokens:
        return model
    return replace(model, kv_len=kv_bucket(model.kv_len, stack.kv_bucket_min_tokens))


def evaluate(point: DesignPoint, include_ops: bool = True, trace: str | None = None) -> dict[str, Any]:
    """Evaluate one design point; infeasibility is a result (``feasible: false`` with a reason), not an error.

    Raises ConfigError only for invalid input (unknown model, scheduler or simulator).
    """
    t0 = time.perf_counter()
    conv = conventions(point.conventions)
    stack = point.resolved_stack
    model = stack_model(point.model, stack)
    def build(m: ModelConfig) -> Graph:  # issue 17e: as the stack's compiler casts it (cost/neuron_autocast.py)
        # issue 17n (eighth session): mark the matmul inputs a LayerNorm / softmax leaves in the other layout
        # (cost/neuron_layout.py); only NeuronCore-v2's engine rule charges the mark, so no other chip walks it
        graph = auto_cast_graph(conv.graph(build_model(m)), stack.auto_cast)
        return mark_transposes(graph) if point.chip.cores.vector_engine else graph

    def rebuild(batch: int) -> Graph:  # the model at another batch (data parallelism, micro-batches)
        return build(replace(model, batch=batch))

    graph = build(model)

    # One chip, or under conventions=paper one per delivery-rate variant the artifact runs for this design
    # (its ICBM Ordered: three thresholds), keeping the fastest feasible result as it does (launch.py:399-407).
    # issue 17s: the stack's program for this model (its grid, its operators' fidelities), hw/stack.py
    system = point.system
    if model_program(stack, model.name) is not None:  # the graph's operator names only when a program names some
        system = apply_program(system, stack, model.name, {op.name for layer in graph.layers for op in layer.ops})
    outs = [evaluate_graph(graph, chip, point.scheduler, point.sim, dtype=point.model.dtype,
                           include_ops=include_ops, t0=t0, trace=trace, rebuild=rebuild)
            for chip in conv.chips(system, point.scheduler.name)]
    out = min(outs, key=lambda o: (not o["feasible"], o["latency_s"] if o["feasible"] else 0.0))
    out["conventions"] = conv.name  # issue 18: the modelling conventions the numbers are in
    out["stack"] = stack.to_dict()  # issue 17: the JSON names the software stack and its values
    return out


def evaluate_graph(graph: Graph, chip: Chip, scheduler: SchedulerConfig | None = None,
                   sim: SimConfig | str = "analytic", dtype: str = "", include_ops: bool = True,
                   t0: float | None = None, trace: str | None = None,
                   rebuild: Callable[[int], Graph] | None = None) -> dict[str, Any]:
    """Evaluate an already-built workload graph on ``chip`` (the contract of :func:`evaluate`). ``trace``: a
    path for the event simulator's Chrome/Perfetto trace JSON; ``rebuild(batch)``: the same model at another
    batch (parallelism across chips: data parallelism and micro-batches need it)."""
    t0 = time.perf_counter() if t0 is None else t0
    sim = SimConfig(sim) if isinstance(sim, str) else sim
    scheduler = scheduler or SchedulerConfig()
    bound = roofline_bound(chip, graph.flops, graph.must_weight_bytes, graph.kv_cache_read_bytes,
                           graph.kv_cache_write_bytes)
    out: dict[str, Any] = {
        "feasible": False,
        "infeasible_reason": "",
        "infeasible_detail": "",
        "latency_s": math.nan,
        "roofline_latency_s": bound.latency_s,
        "roofline_compute_s": bound.compute_s,
        "roofline_hbm_s": bound.hbm_s,
        "roofline_fraction": math.nan,
        "throughput_per_s": math.nan,
        "flops": graph.flops,
        "hbm_bytes": math.nan,
        "must_hbm_bytes": bound.must_hbm_bytes,
        "weight_bytes": graph.weight_bytes,
        "kv_cache_bytes": graph.kv_cache_bytes,
        "parameter_bytes": graph.parameter_bytes,
        "noc_bytes": math.nan,
        "chip_link_bytes": math.nan,
        "peak_flops_per_s": chip.peak_flops_per_s,
        "hbm_bytes_per_s": chip.hbm_bytes_per_s,
        "noc_bytes_per_s": noc_bytes_per_s(chip),
        "achieved_flops_per_s": math.nan,
        "area_proxy_mm2": area_proxy_mm2(chip),
        "area_mm2": area_mm2(chip),
        "static_power_w": static_power_w(chip),
        "power_w": math.nan, "energy_j": math.nan, "energy_per_item_j": math.nan, "latency_per_item_s": math.nan,
        "perf_per_mm2": math.nan, "perf_per_w": math.nan, "constraint_violation": math.nan,
        "sram_used_bytes_per_core": math.nan,
        "event_latency_s": math.nan,
        "compute_busy_s": math.nan, "noc_busy_s": math.nan, "hbm_busy_s": math.nan, "sync_busy_s": math.nan,
        **{f"breakdown_{part}_s": math.nan for part in PARTS},
        **{f"energy_{level}_j": math.nan for level in LEVELS}, "energy_dynamic_j": math.nan,
        "chip": chip.resolved(),
        "model": {"name": graph.name, "phase": graph.phase, "batch": graph.batch, "seq_len": graph.seq_len,
                  "kv_len": graph.kv_len, "dtype": dtype, "ops": graph.num_op_instances,
                  **{k: v for k, v in graph.meta}},
        "scheduler": scheduler.name,
        "sim": sim.name,
        "version": __version__,
        "ops": [],
    }
    check_simulator(chip, sim.name, **sim.options())
    timed: dict[int, tuple[Program, SimResult]] = {}

    def time_program(candidate: Program) -> float:  # parallelism=auto compares candidates with this simulator
        run = simulate(candidate, sim.name, **sim.options())
        timed[id(candidate)] = (candidate, run)
        return run.latency_s

    timer = SimTimer(time_program, SIMULATORS[sim.name].exec_floor)

    out["parallelism"] = {"strategy": chip.chips.parallelism if chip.num_chips > 1 else "single_chip", "degrees": {},
                          "collectives_per_step": 0, "cross_chip_bytes": math.nan}
    out.update({m: 1.0 for m in PARALLEL_METRICS}, collectives_per_step=0.0)
    program = compile_graph(graph, chip, scheduler, rebuild=rebuild, timer=timer)
    if isinstance(program, Infeasible):
        out["infeasible_reason"] = program.reason
        out["infeasible_detail"] = program.detail
        out["eval_s"] = time.perf_counter() - t0
        return out
    options = sim.options()
    if trace:
        if sim.name != "event":
            raise ConfigError("trace", trace, "traces come from the event simulator: add sim=event")
        options["trace"] = trace
    known = timed.get(id(program))
    result = known[1] if known is not None and known[0] is program and not trace else simulate(
        program, sim.name, **options)
    latency = result.latency_s
    totals = system_totals(program)
    out.update(
        feasible=True, latency_s=latency, roofline_fraction=bound.latency_s / latency if latency else math.nan,
        throughput_per_s=graph.batch / latency if latency else math.nan, hbm_bytes=totals.hbm_bytes,
        noc_bytes=totals.noc_bytes, chip_link_bytes=totals.chip_link_bytes,
        achieved_flops_per_s=totals.flops / latency if latency else math.nan,
        compute_busy_s=result.busy_s["compute"], noc_busy_s=result.busy_s["noc"],
        hbm_busy_s=result.busy_s["hbm"], sync_busy_s=result.busy_s["sync"],
        sram_used_bytes_per_core=float(program.meta.get("sram_used_bytes_per_core", math.nan)),
        event_latency_s=latency if sim.name == "event" else math.nan,
    )
    breakdown = latency_breakdown(program, result)
    out.update({f"breakdown_{k}": v for k, v in breakdown.total.to_dict().items()})
    out["breakdown"] = breakdown.to_dict()
    out["parallelism"] = totals.choice
    # issue 17t (seventh session): the logits the host reads back per step to sample (cost/host_io.py; 0: none)
    out["host_read_bytes"] = float(program.meta.get("host_logits_bytes", 0.0))
    out.update({f"parallel_{k}": float(totals.choice["degrees"].get(k, 1)) for k in ("tp", "pp", "ep", "dp")},
               collectives_per_step=float(totals.choice["collectives_per_step"]))
    energy = (program_energy(program, graph, latency) if program.system is None
              else system_energy(program, latency, totals.collective_link_bytes))
    items = max(graph.batch, 1)
    out.update(
        energy_j=energy.total_j, energy_per_item_j=energy.total_j / items, power_w=energy.total_j / latency,
        latency_per_item_s=latency / items, perf_per_mm2=out["throughput_per_s"] / out["area_mm2"],
        perf_per_w=out["throughput_per_s"] / (energy.total_j / latency), energy_dynamic_j=energy.dynamic_j,
        **{f"energy_{level}_j": joules for level, joules in energy.by_level},
    )
    out["energy_by_level"] = dict(energy.by_level)
    out["energy_table"] = chip.energy_table.to_dict()
    if include_ops:
        out["ops"] = [
            {"name": op.name, "kind": op.kind, "layer": op.layer, "repetition": op.repetition,
             "dims": dict(op.dims), "start_s": t.start_s, "end_s": t.end_s, "load_start_s": t.load_start_s,
             "load_end_s": t.load_end_s, "load_s": t.load_s, "compute_s": t.compute_s, "noc_s": t.noc_s,
             "sync_s": t.sync_s, "flops": op.flops, "hbm_bytes": op.work.hbm_bytes,
             "noc_bytes": op.work.noc_bytes + op.work.shift_bytes + op.work.warm_bytes + op.work.hbm_delivered_bytes,
             "sram_exec_bytes": op.sram_exec_bytes, "sram_preload_bytes": op.sram_preload_bytes,
             "plan": op.plan.to_dict(), "energy_j": dict(e), "accesses": asdict(a)}
            for op, t, e, a in zip(program.ops, result.timings, energy.by_op, energy.accesses, strict=True)
        ]
    out["eval_s"] = time.perf_counter() - t0
    return out


@dataclass(frozen=True)
class SystemTotals:
    """What a Program does on the whole system in one pass: FLOPs, HBM, on-chip and chip-to-chip bytes summed
    over every chip (a Program compiled for one chip's view runs on ``parallel_copies`` chips per stage, once
    per micro-batch), the link bytes of each collective op (0 for other ops) and the parallelism choice."""

    flops: float
    hbm_bytes: float
    noc_bytes: float
    chip_link_bytes: float
    collective_link_bytes: list[float]
    choice: dict[str, Any]


def system_totals(program: Program) -> SystemTotals:
    """Totals of ``program`` over the system (see SystemTotals); a Program of the whole system as it is."""
    meta = program.meta
    strategy = meta.get("parallelism", "all_core" if program.chip.num_chips > 1 else "single_chip")
    if program.system is None:
        choice = {"strategy": strategy, "degrees": {}, "collectives_per_step": 0,
                  "cross_chip_bytes": program.chip_link_bytes, "microbatches": 1,
                  **({"candidates": meta["parallel_candidates"]} if "parallel_candidates" in meta else {})}
        return SystemTotals(program.flops, program.hbm_bytes, program.noc_bytes, program.chip_link_bytes,
                            [0.0] * len(program.ops), choice)
    from elk_dse.cost.collectives import collective_cost

    runs = float(meta.get("microbatches", 1))
    copies = float(meta.get("parallel_copies", 1)) * runs
    costs: dict[Any, float] = {}  # identical collectives (one per layer) are costed once

    def link_bytes(c: Any) -> float:
        if c not in costs:
            costs[c] = collective_cost(c, program.whole_system).link_bytes
        return costs[c]

    link = [sum(link_bytes(c) for c in op.work.collectives) if op.kind == "collective" else 0.0
            for op in program.ops]
    ops_link = sum(op.work.chip_link_bytes + op.work.shift_cross_bytes + op.work.warm_cross_bytes
                   for op in program.ops)
    cross = ops_link * copies + sum(link) * runs
    choice = {"strategy": strategy, "degrees": dict(meta.get("parallel_degrees", {})),
              "collectives_per_step": int(meta.get("collectives", 0)) * int(runs), "cross_chip_bytes": cross,
              "microbatches": int(runs),
              **({"candidates": meta["parallel_candidates"]} if "parallel_candidates" in meta else {})}
    return SystemTotals(program.flops * copies, program.hbm_bytes * copies, program.noc_bytes * copies, cross,
                        link, choice)
