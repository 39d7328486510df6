"""Analytic simulator: phase durations from the shared cost formulas, start times from the dependencies.

Two resources: the HBM path (loads run one at a time, in program order) and the cores (operators execute
one at a time, in program order). Contention between a load and a running operator's network traffic is not
modelled here (the event-driven simulator of issue 5 does).
"""

from __future__ import annotations

import numpy as np

from elk_dse.cost.op_time import exec_time, load_time_s
from elk_dse.program import Program
from elk_dse.sim.base import OpTiming, SimResult, Simulator, register_simulator


@register_simulator("analytic")
class AnalyticSimulator(Simulator):
    """Closed-form per-operator times, scheduled by the Program's dependencies."""

    def run(self, program: Program) -> SimResult:
        chip = program.chip
        ops = program.ops
        if not ops:
            return SimResult(0.0, (), {"compute": 0.0, "noc": 0.0, "hbm": 0.0, "sync": 0.0})
        w = [op.work for op in ops]
        arr = {k: np.array([getattr(x, k) for x in w], dtype=np.float64) for k in (
            "compute_cycles", "noc_bytes", "noc_max_core_bytes", "chip_link_bytes", "hbm_read_bytes",
            "hbm_write_bytes", "hbm_delivered_bytes", "barriers")}
        ex = exec_time(chip, arr["compute_cycles"], arr["noc_bytes"], arr["noc_max_core_bytes"],
                       arr["chip_link_bytes"], arr["barriers"])
        compute_s = np.broadcast_to(ex.compute_s, len(ops))
        noc_s = np.broadcast_to(ex.noc_s, len(ops))
        sync_s = np.broadcast_to(ex.sync_s, len(ops))
        exec_s = compute_s + noc_s + sync_s
        load_s = np.broadcast_to(
            load_time_s(chip, arr["hbm_read_bytes"] + arr["hbm_write_bytes"], arr["hbm_delivered_bytes"]),
            len(ops))

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
