"""Analytic simulator: phase durations from the shared cost formulas, start times from the dependencies.

Two resources: the HBM path (loads run one at a time, in program order) and the cores (operators execute
one at a time, in program order). Contention between a load and a running operator's network traffic is not
modelled here (the event-driven simulator of issue 5 does).
"""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace

import numpy as np

from elk_dse.cost.op_time import exec_time, load_time_s
from elk_dse.program import OpWork, Program
from elk_dse.sim.base import OpTiming, SimResult, Simulator, register_simulator


@register_simulator("analytic")
class AnalyticSimulator(Simulator):
    """Closed-form per-operator times, scheduled by the Program's dependencies."""

    def run(self, program: Program) -> SimResult:
        chip = program.chip
        ops = program.ops
        if not ops:
            return SimResult(0.0, (), {"compute": 0.0, "noc": 0.0, "hbm": 0.0, "sync": 0.0})
        work = SimpleNamespace(**{
            f.name: np.array([getattr(op.work, f.name) for op in ops]) for f in fields(OpWork)})
        ex = exec_time(chip, work)
        n = len(ops)
        compute_s = np.broadcast_to(ex.compute_s, n)
        noc_s = np.broadcast_to(ex.noc_s + ex.shift_s, n)
        sync_s = np.broadcast_to(ex.sync_s, n)
        exec_s = np.broadcast_to(ex.total_s, n)
        load_s = np.broadcast_to(load_time_s(chip, work), n)

        end = np.zeros(len(ops))
        timings = []
        hbm_free = cores_free = 0.0
        for i, op in enumerate(ops):
            load_start = max([hbm_free, *(end[j] for j in op.load_after)])
            load_end = load_start + load_s[i]
            if load_s[i] > 0:
                hbm_free = load_end
            start = max([load_end, cores_free, *(end[j] for j in op.exec_after)])
            end[i] = start + exec_s[i]
            cores_free = end[i]
            timings.append(OpTiming(i, float(load_start), float(load_end), float(start), float(end[i]),
                                    float(load_s[i]), float(compute_s[i]), float(noc_s[i]), float(sync_s[i])))
        busy = {"compute": float(compute_s.sum()), "noc": float(noc_s.sum()), "hbm": float(load_s.sum()),
                "sync": float(sync_s.sum())}
        return SimResult(float(end.max()), tuple(timings), busy)
