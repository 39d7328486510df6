"""Analytic simulator: phase durations from the shared cost formulas, start times from the dependencies.

Two resources: the HBM path (loads run one at a time, in the Program's load order) and the cores (operators
execute one at a time, in program order); the timing rule is cost/timeline.py's. HBM data crossing the on-chip network during an operator's execution
competes with the operator's own traffic: the operator is stretched by the excess (one re-timing pass). On a
chip carrying the Elk artifact's delivery rule (conventions=paper) the artifact's contention rule applies
instead (cost/timeline.py ``artifact_contention``): the operator's syncs count as network time, and with
``hbm.delivery_delays_load`` (elk_full's delay_comp=False variant) the overlapping loads start later instead. Contention between a load and a running operator's network traffic is not
modelled here (the event-driven simulator of issue 5 does).
"""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace
from typing import Any

import numpy as np

from elk_dse.cost.collectives import collectives_time_s
from elk_dse.cost.network import hbm_network_time_s, layer_starts, layer_sync_time_s
from elk_dse.cost.op_time import exec_time, load_time_s, stream_passes
from elk_dse.cost.timeline import artifact_contention, asap_timeline, latest_loads
from elk_dse.program import OpWork, Program
from elk_dse.sim.base import OpTiming, SimResult, Simulator, register_simulator


@register_simulator("analytic")
class AnalyticSimulator(Simulator):
    """Closed-form per-operator times, scheduled by the Program's dependencies."""

    exec_floor = True  # every operator executes for exec_time(...).total_s or longer, one after another

    def __init__(self, **_options: Any) -> None:
        self.stats: dict = {}

    def run(self, program: Program) -> SimResult:
        chip = program.chip
        ops = program.ops
        if not ops:
            return SimResult(0.0, (), {"compute": 0.0, "noc": 0.0, "hbm": 0.0, "sync": 0.0})
        work = SimpleNamespace(**{
            f.name: np.array([getattr(op.work, f.name) for op in ops]) for f in fields(OpWork)
            if f.name not in ("rings", "collectives")})
        ex = exec_time(chip, work)
        n = len(ops)
        compute_s = np.broadcast_to(ex.compute_s, n)
        noc_s = np.array(np.broadcast_to(ex.noc_s + ex.shift_s + ex.warm_s, n), dtype=np.float64)
        layer_sync = layer_sync_time_s(chip, layer_starts(ops))  # the first op of a layer waits for the sync
        sync_s = np.broadcast_to(ex.sync_s, n) + layer_sync
        # Chip-to-chip collectives run after the operator's compute, one after the other (cost/collectives.py);
        # a collective op marked ``concurrent`` runs beside the operators after it (cost/timeline.py).
        system = program.whole_system
        coll_s = np.array([collectives_time_s(op.work.collectives, system) if op.work.collectives else 0.0
                           for op in ops])
        noc_s = noc_s + coll_s
        exec_s = np.array(np.broadcast_to(ex.total_s, n), dtype=np.float64) + layer_sync + coll_s
        load_s = np.broadcast_to(load_time_s(chip, work), n)

        load_after = [op.load_after for op in ops]
        exec_after = [op.exec_after for op in ops]
        order = program.load_order or None
        conc = [op.concurrent for op in ops]
        load_start, load_end, start, end = asap_timeline(load_s, exec_s, load_after, exec_after, order, conc)
        # Contention: HBM data crossing the network while an operator runs competes with that operator's own
        # network use. Stretch an operator whose network demand (its own plus its share of overlapping loads)
        # exceeds its execution time, then re-time once.
        # A streamed plan's load phase delivers its first pass; the other passes cross the network while it runs.
        passes = np.broadcast_to(stream_passes(work), n)
        deliver_net = np.asarray(hbm_network_time_s(chip, work.hbm_delivered_bytes), dtype=np.float64)
        load_net = deliver_net / passes
        own_net = np.broadcast_to(ex.noc_s + ex.shift_s + ex.warm_s, n) + deliver_net * (passes - 1) / passes
        hbm = chip.hbm
        if hbm is not None and hbm.delivery_gb_s_per_core > 0:
            # conventions=paper (the Elk artifact's delivery rule on this chip): its contention rule, which counts
            # the operator's syncs as network time and, in its delay_comp=False mode (``delivery_delays_load``),
            # shifts the overlapping loads later instead of slowing the operator (cost/timeline.py
            # ``artifact_contention``, the one place the rule lives).
            need = own_net + np.broadcast_to(ex.sync_s, n)
            # In its delay_comp=True mode the artifact's loads sit as late as possible, each just before its
            # operator (cost/timeline.py ``latest_loads``, issue 18g), and each operator's need is walked back
            # from its end through them; its delay_comp=False mode keeps 18f's mirrored (ASAP) placement.
            slow_op = not hbm.delivery_delays_load
            c_start, c_end = (latest_loads(load_start, load_end, start, order) if slow_op
                              else (load_start, load_end))
            stretch, delay = artifact_contention(c_start, c_end, load_net, start, end - coll_s, need,
                                                 hbm.delivery_delays_load, loads_latest=slow_op)
            if stretch.any() or delay.any():
                exec_s = exec_s + stretch
                noc_s = noc_s + stretch
                load_start, load_end, start, end = asap_timeline(load_s, exec_s, load_after, exec_after, order, conc,
                                                                 load_release=load_start + delay if delay.any() else None)
        else:
            stretch = np.zeros(n)
            dur = np.maximum(load_end - load_start, 1e-30)
            for i in range(n):
                # (within the op's own network phases: its collectives, last, use the chip-to-chip links)
                overlap = np.clip(np.minimum(load_end, end[i] - coll_s[i]) - np.maximum(load_start, start[i]), 0.0,
                                  None)
                overlap[i] = 0.0  # its own load finished before it started
                shared = float((load_net * overlap / dur).sum())
                stretch[i] = max(0.0, own_net[i] + shared - (exec_s[i] - coll_s[i]))
            if stretch.any():
                exec_s = exec_s + stretch
                noc_s = noc_s + stretch
                load_start, load_end, start, end = asap_timeline(load_s, exec_s, load_after, exec_after, order, conc)
        stream_s = np.broadcast_to(ex.stream_s, n)
        timings = tuple(
            OpTiming(i, float(load_start[i]), float(load_end[i]), float(start[i]), float(end[i]), float(load_s[i]),
                     float(compute_s[i]), float(noc_s[i]), float(sync_s[i]), float(stream_s[i]))
            for i in range(n))
        busy = {"compute": float(compute_s.sum()), "noc": float(noc_s.sum()),
                "hbm": float(load_s.sum() + stream_s.sum()),
                "sync": float(sync_s.sum())}
        return SimResult(float(end.max()), timings, busy)
