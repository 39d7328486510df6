"""Inter-operator schedulers: which operator's data loads from HBM when, and how SRAM is split.

One module per scheduler, each a :class:`~elk_dse.compiler.schedulers.base.Scheduler` registered in
``SCHEDULERS`` (the protocol is in base.py); every module of this package is imported here, so a new scheduler
is one module plus one ``conf/scheduler/<name>.yaml``. ``sequential`` loads an operator's data straight into its
active layout, then runs it (no overlap). The preloading schedulers load into compact idle layouts while earlier
operators run: ``basic`` (the next operator only), ``static`` (one execution-space size for all), ``elk_dyn``
(inductive scheduling), ``elk_full`` (plus the load-order search) and the ``ideal`` reference; their shared
machinery is compiler/elk.py. On chips without HBM everything stays on chip and T10's global trade-off decides
the plans whatever the scheduler.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from elk_dse.compiler.schedulers.base import (
    DIRECT,
    SCHEDULERS,
    Schedule,
    Scheduler,
    SchedulingProblem,
    register_scheduler,
)
from elk_dse.errors import ConfigError
from elk_dse.schema import at_least, in_range

__all__ = ["DIRECT", "PLAN_FAMILIES", "SCHEDULERS", "Schedule", "Scheduler", "SchedulerConfig", "SchedulingProblem",
           "register_scheduler"]

PLAN_FAMILIES = ("t10", "replicate")


@dataclass(frozen=True)
class SchedulerConfig:
    """The scheduler and its knobs (all searchable as ``scheduler.<knob>`` in a sweep): the union of every
    registered scheduler's ``Knobs`` plus the compiler's own (``plans``, ``cross_op``); each scheduler reads
    only the fields of its ``Knobs``.

    plans: intra-operator plan family, ``t10`` (compute-shift) or ``replicate`` (spatial only).
    max_preload_depth: most operators preloaded ahead (0 = one repeated layer's worth).
    order_edit_distance / max_orders: elk_full's load-order search (adjacent group swaps, candidates).
    static_exec_kib: static's execution-space size per core in KiB (0 = best of a sweep in ``static_step_kib``
    steps, the paper's 10 KiB; 0 = ``static_steps`` evenly spaced sizes instead).
    margin: fraction added to every preloaded idle size (Elk uses 1%).
    cross_op: the cross-operator traffic analysis (compiler/traffic.py): activations stay on chip between
    operators unless capacity forces a spill; False = every activation round-trips through HBM (baseline).
    """

    name: str = "elk_full"
    plans: str = "t10"
    max_preload_depth: int = 0
    order_edit_distance: int = 4
    max_orders: int = 24
    static_exec_kib: float = 0.0
    static_steps: int = 16
    static_step_kib: float = 10.0
    margin: float = 0.01
    cross_op: bool = True

    def __post_init__(self) -> None:
        if self.plans not in PLAN_FAMILIES:
            raise ConfigError("plans", self.plans, "one of " + ", ".join(PLAN_FAMILIES))
        at_least("max_preload_depth", self.max_preload_depth, 0)
        in_range("order_edit_distance", self.order_edit_distance, 0, 8)
        in_range("max_orders", self.max_orders, 1, 1000)
        at_least("static_exec_kib", self.static_exec_kib, 0)
        in_range("static_steps", self.static_steps, 1, 1000)
        in_range("static_step_kib", self.static_step_kib, 0.0, 1e6)
        in_range("margin", self.margin, 0.0, 1.0)


# Import every scheduler module (each registers itself), in name order so that the registry is deterministic.
for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod != "base":
        importlib.import_module(f"{__name__}.{_mod}")
# Listed by rank (sequential, basic, static, elk_dyn, elk_full, ideal; then new ones by name).
_ranked = sorted(SCHEDULERS.items(), key=lambda kv: (kv[1].rank, kv[0]))
SCHEDULERS.clear()
SCHEDULERS.update(_ranked)
