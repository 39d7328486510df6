"""As-soon-as-possible timeline of loads and executions: the one place the schedule's timing rule lives.

Loads run one at a time on the HBM path in ``load_order``; a load waits for the executions listed in its
``load_after`` (the operators whose end frees the SRAM it needs); an operator executes after its own load,
after the previous operator, and after the executions in its ``exec_after``. Used by the compiler to score
schedules and by the analytic simulator to time Programs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def asap_timeline(load_s: Sequence[float], exec_s: Sequence[float], load_after: Sequence[Sequence[int]],
                  exec_after: Sequence[Sequence[int]], load_order: Sequence[int] | None = None):
    """(load_start, load_end, exec_start, exec_end) arrays in seconds.

    Raises ValueError if the dependencies deadlock (a load waits for an execution that waits for it).
    """
    n = len(exec_s)
    order = list(range(n)) if load_order is None else list(load_order)
    load_start = np.zeros(n)
    load_end = np.zeros(n)
    start = np.zeros(n)
    end = np.full(n, np.nan)
    loaded = np.zeros(n, dtype=bool)
    hbm_free = 0.0
    next_exec = 0
    p = 0
    prev_end = 0.0
    while next_exec < n:
        progressed = False
        # Issue loads in order while their dependencies have executed.
        while p < n:
            j = order[p]
            deps = load_after[j]
            if any(np.isnan(end[m]) for m in deps):
                break
            t = max([hbm_free, *(float(end[m]) for m in deps)])
            load_start[j], load_end[j] = t, t + float(load_s[j])
            if load_s[j] > 0:
                hbm_free = load_end[j]
            loaded[j] = True
            p += 1
            progressed = True
        # Execute in program order while loads are in.
        while next_exec < n and loaded[next_exec]:
            i = next_exec
            deps = exec_after[i]
            if any(np.isnan(end[m]) for m in deps):
                raise ValueError(f"op {i} depends on a later execution")
            start[i] = max([load_end[i], prev_end, *(float(end[m]) for m in deps)])
            end[i] = start[i] + float(exec_s[i])
            prev_end = end[i]
            next_exec += 1
            progressed = True
        if not progressed:
            raise ValueError(f"schedule deadlocks at op {next_exec}: its load waits for a later execution")
    return load_start, load_end, start, end
