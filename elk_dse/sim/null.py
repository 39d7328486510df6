"""Null simulator: fixed costs, the Program's dependencies through the one timing rule (cost/timeline.py).

Every operator executes in ``exec_s`` seconds and every operator with HBM bytes loads in ``load_s`` seconds,
whatever its plan or the chip: compiler tests check a schedule's structure (what waits for what, what
overlaps) with it, independent of the cost formulas and of either real simulator.
"""

from __future__ import annotations

from elk_dse.cost.timeline import asap_timeline
from elk_dse.errors import ConfigError
from elk_dse.program import Program
from elk_dse.sim.base import OpTiming, SimResult, Simulator, register_simulator


@register_simulator("null")
class NullSimulator(Simulator):
    """Fixed per-operator costs (seconds): ``exec_s`` for every execution, ``load_s`` for every HBM load."""

    physical = False

    def __init__(self, exec_s: float = 1e-6, load_s: float = 1e-6, **_options) -> None:
        for field, value in (("exec_s", exec_s), ("load_s", load_s)):
            if not value >= 0:
                raise ConfigError(f"sim.{field}", value, "a duration >= 0 seconds")
        self.exec_s = float(exec_s)
        self.load_s = float(load_s)

    def run(self, program: Program) -> SimResult:
        ops = program.ops
        load = [self.load_s if op.work.hbm_bytes > 0 or op.work.hbm_delivered_bytes > 0 else 0.0 for op in ops]
        ex = [self.exec_s] * len(ops)
        ls, le, s, e = asap_timeline(load, ex, [op.load_after for op in ops], [op.exec_after for op in ops],
                                     program.load_order or None, [op.concurrent for op in ops])
        timings = tuple(OpTiming(i, float(ls[i]), float(le[i]), float(s[i]), float(e[i]), load[i], self.exec_s,
                                 0.0, 0.0) for i in range(len(ops)))
        return SimResult(float(e.max()) if len(ops) else 0.0, timings,
                         {"compute": self.exec_s * len(ops), "noc": 0.0, "hbm": float(sum(load)), "sync": 0.0})
