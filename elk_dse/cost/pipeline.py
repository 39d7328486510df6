"""Pipeline composition: the latency of a batch split into micro-batches flowing through pipeline stages (the
one place it lives; both simulators' results go through it in sim/base.simulate).

A Program compiled with pipeline parallelism (compiler/parallel/pp.py) holds one micro-batch's pass through
every stage in order; ``meta["stage_ends"]`` names each stage's last operation (its send_recv handoff
included) and ``meta["microbatches"]`` the number m of micro-batches. With stage times t_s of one micro-batch
(the simulated span of each stage), the GPipe schedule finishes the last micro-batch after

    sum_s t_s + (m - 1) * max_s t_s

(the first micro-batch fills the pipeline; every further one leaves the slowest stage one t_max later). The
bubble -- the idle share of the chips -- is (pp - 1) / (m + pp - 1) of the time when the stages are balanced.
"""

from __future__ import annotations

from collections.abc import Sequence


def pipeline_latency_s(stage_s: Sequence[float], microbatches: int) -> float:
    """Seconds until the last of ``microbatches`` micro-batches leaves the last stage (stage times of one
    micro-batch ``stage_s``, seconds)."""
    if microbatches < 1:
        raise ValueError(f"microbatches must be >= 1, got {microbatches}")
    if not stage_s:
        return 0.0
    return float(sum(stage_s)) + (microbatches - 1) * float(max(stage_s))


def stage_times_s(ends_s: Sequence[float], stage_ends: Sequence[int]) -> list[float]:
    """Each stage's span (seconds) from the end times of every operation (``ends_s``) and the index of each
    stage's last operation: stage s runs from the end of stage s-1 (0 for the first) to its own last end."""
    out, prev = [], 0.0
    for k in stage_ends:
        end = float(ends_s[k])
        out.append(max(end - prev, 0.0))
        prev = end
    return out


def bubble_fraction(stages: int, microbatches: int) -> float:
    """Idle share of the chips of a balanced pipeline: (pp - 1) / (m + pp - 1)."""
    return (stages - 1) / (microbatches + stages - 1)
