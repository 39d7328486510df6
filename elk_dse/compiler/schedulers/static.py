"""``static``: one execution-space size for every operator (the best of a sweep), the rest of SRAM preloads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elk_dse.compiler.elk import fixed_window_schedule
from elk_dse.compiler.schedulers.base import Schedule, Scheduler, SchedulingProblem, register_scheduler
from elk_dse.hw.chip import KIB


@dataclass(frozen=True)
class StaticKnobs:
    """static_exec_kib: the execution space per core in KiB (0 = best of ``static_steps`` sizes, evenly spaced
    from the largest minimal plan to all of SRAM). max_preload_depth: most operators preloaded ahead (0 = one
    repeated layer's worth). margin: fraction added to every preloaded idle size."""

    static_exec_kib: float = 0.0
    static_steps: int = 16
    max_preload_depth: int = 0
    margin: float = 0.01


@register_scheduler("static")
class Static(Scheduler):
    """Every candidate size is scored by the full forward (ASAP) timeline; the fastest is kept."""

    description = "one execution-space size for every operator (best of a sweep), the rest preloads"
    rank = 2
    Knobs = StaticKnobs

    def schedule(self, problem: SchedulingProblem) -> Schedule | None:
        k = self.knobs
        choices, free = list(problem.choices), list(problem.free_bytes)
        depth = self.depth(problem, k.max_preload_depth)
        smallest = max(c.mem[0] for c in choices if c.mem)
        sizes = ([k.static_exec_kib * KIB] if k.static_exec_kib
                 else list(np.linspace(smallest, problem.sram_bytes, k.static_steps)))
        best = None
        for x in sizes:
            cand = fixed_window_schedule(choices, free, depth, float(x), k.margin)
            if cand is not None and (best is None or cand.latency_s < best.latency_s):
                best = cand
        return best
