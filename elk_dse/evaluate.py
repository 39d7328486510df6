"""One design point end to end: build the workload, compile it, simulate it, bound it, report it.

:func:`evaluate` returns the stable output contract (a JSON-ready dict) that ``evaluate format=json`` prints
and the sweep stores; see README "Output contract".
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from elk_dse import __version__
from elk_dse.breakdown import PARTS, latency_breakdown
from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.area import area_mm2, area_proxy_mm2, static_power_w
from elk_dse.cost.energy import LEVELS, program_energy
from elk_dse.cost.network import noc_bytes_per_s
from elk_dse.cost.roofline import roofline_bound
from elk_dse.errors import ConfigError
from elk_dse.hw.chip import Chip
from elk_dse.hw.stack import StackProfile, apply_stack, default_stack
from elk_dse.ir.graph import Graph
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Infeasible
from elk_dse.sim import SimConfig, check_simulator, simulate

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
)


@dataclass(frozen=True)
class DesignPoint:
    """Everything that determines one evaluation."""

    chip: Chip
    model: ModelConfig
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    stack: StackProfile | None = None  # the software stack (hw/stack.py); None: the chip's default_stack

    @property
    def resolved_stack(self) -> StackProfile:
        """The software stack this point runs: ``stack``, else the chip's ``default_stack``, else ``none``."""
        return self.stack if self.stack is not None else default_stack(self.chip)

    @property
    def system(self) -> Chip:
        """The chip running the stack: the profile's overheads applied (hw/stack.apply_stack)."""
        return apply_stack(self.chip, self.resolved_stack)


def evaluate(point: DesignPoint, include_ops: bool = True, trace: str | None = None) -> dict[str, Any]:
    """Evaluate one design point; infeasibility is a result (``feasible: false`` with a reason), not an error.

    Raises ConfigError only for invalid input (unknown model, scheduler or simulator).
    """
    t0 = time.perf_counter()
    graph = build_model(point.model)
    stack = point.resolved_stack
    out = evaluate_graph(graph, point.system, point.scheduler, point.sim, dtype=point.model.dtype,
                         include_ops=include_ops, t0=t0, trace=trace)
    out["stack"] = stack.to_dict()  # issue 17: the JSON names the software stack and its values
    return out


def evaluate_graph(graph: Graph, chip: Chip, scheduler: SchedulerConfig | None = None,
                   sim: SimConfig | str = "analytic", dtype: str = "", include_ops: bool = True,
                   t0: float | None = None, trace: str | None = None) -> dict[str, Any]:
    """Evaluate an already-built workload graph on ``chip`` (the contract of :func:`evaluate`). ``trace``: a
    path for the event simulator's Chrome/Perfetto trace JSON."""
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
    program = compile_graph(graph, chip, scheduler)
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
    result = simulate(program, sim.name, **options)
    latency = result.latency_s
    out.update(
        feasible=True, latency_s=latency, roofline_fraction=bound.latency_s / latency if latency else math.nan,
        throughput_per_s=graph.batch / latency if latency else math.nan, hbm_bytes=program.hbm_bytes,
        noc_bytes=program.noc_bytes, chip_link_bytes=program.chip_link_bytes,
        achieved_flops_per_s=program.flops / latency if latency else math.nan,
        compute_busy_s=result.busy_s["compute"], noc_busy_s=result.busy_s["noc"],
        hbm_busy_s=result.busy_s["hbm"], sync_busy_s=result.busy_s["sync"],
        sram_used_bytes_per_core=float(program.meta.get("sram_used_bytes_per_core", math.nan)),
        event_latency_s=latency if sim.name == "event" else math.nan,
    )
    breakdown = latency_breakdown(program, result)
    out.update({f"breakdown_{k}": v for k, v in breakdown.total.to_dict().items()})
    out["breakdown"] = breakdown.to_dict()
    energy = program_energy(program, graph, latency)
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
