"""``static``: one execution-space size for every operator (the best of a sweep), the rest of SRAM preloads.

As the Elk paper defines its Static baseline: the sizes are swept in ``static_step_kib`` steps (10 KiB) from
the largest minimal plan to all of SRAM, and the fastest schedule is kept. The artifact keeps the better of
two variants, Min Cold and Max Cold (idle layouts without / with the replicas the plan needs). Under our
default conventions idle layouts are always the compact ones (replicas are made by warm-up copies on chip), so
ours is Min Cold only; under ``conventions=paper`` (choices with cold layouts, issue 18e) every size is also
scored in its Max Cold variant (``elk.max_cold_choices``) and the faster kept (platformxlab/elk@8c6e814
launch.py runs both). ``static_step_kib = 0`` sweeps ``static_steps`` evenly spaced sizes instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from elk_dse.compiler.elk import fixed_window, forward_latency, max_cold_choices
from elk_dse.compiler.schedulers.base import Schedule, Scheduler, SchedulingProblem, register_scheduler
from elk_dse.hw.chip import KIB


@dataclass(frozen=True)
class StaticKnobs:
    """static_exec_kib: the execution space per core in KiB (0 = the best of the sweep). static_step_kib:
    the sweep's step in KiB (0 = ``static_steps`` sizes evenly spaced from the largest minimal plan to all of
    SRAM). max_preload_depth: most operators preloaded ahead (0 = one repeated layer's worth). margin:
    fraction added to every preloaded idle size."""

    static_exec_kib: float = 0.0
    static_step_kib: float = 10.0
    static_steps: int = 16
    max_preload_depth: int = 0
    margin: float = 0.01


@register_scheduler("static")
class Static(Scheduler):
    """Every distinct candidate schedule is scored by the full forward (ASAP) timeline; the fastest is kept
    (sizes that lead to the same plans and windows are scored once)."""

    description = "one execution-space size for every operator (best of a 10 KiB sweep), the rest preloads"
    rank = 2
    Knobs = StaticKnobs

    def sizes(self, problem: SchedulingProblem) -> list[float]:
        """The execution-space sizes tried (bytes per core)."""
        k = self.knobs
        if k.static_exec_kib:
            return [k.static_exec_kib * KIB]
        # Operators on the streaming fallback (no plan fits their free SRAM) do not bound the sweep.
        smallest = max((c.mem[0] for c in problem.choices if c.mem and c.stream is None), default=problem.sram_bytes)
        if k.static_step_kib:
            return [*np.arange(smallest, problem.sram_bytes, k.static_step_kib * KIB), problem.sram_bytes]
        return list(np.linspace(smallest, problem.sram_bytes, k.static_steps))

    def schedule(self, problem: SchedulingProblem) -> Schedule | None:
        k = self.knobs
        choices, free = list(problem.choices), list(problem.free_bytes)
        depth = self.depth(problem, k.max_preload_depth)
        best = None
        seen: set[tuple] = set()
        has_cold = any(c.cold_mem is not None for c in choices)  # conventions=paper only
        for x in self.sizes(problem):
            cold = max_cold_choices(choices, [min(float(x), f) for f in free]) if has_cold else None
            for variant, chosen in ((False, choices), (True, cold)):
                if chosen is None:
                    continue
                cand = fixed_window(chosen, free, depth, float(x), k.margin)
                if cand is None:
                    continue
                key = (variant, cand.plan_index, cand.window_end,
                       tuple(c.rows[0] for c in chosen) if variant else ())
                if key in seen:
                    continue
                seen.add(key)
                cand = replace(cand, latency_s=forward_latency(chosen, cand),
                               choices=tuple(chosen) if variant else ())
                if best is None or cand.latency_s < best.latency_s:
                    best = cand
        return best
