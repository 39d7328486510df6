"""The scheduler protocol and registry.

A scheduler decides, for a chip with HBM, which operator's weights/KV load from HBM when, how much SRAM each
operator executes in and which of its plans it runs. Every scheduler implements :class:`Scheduler`; one module
per scheduler in this package registers itself with ``@register_scheduler("name")`` and is imported by the
package automatically (``pkgutil``), so adding a scheduler is one module here plus one ``conf/scheduler/<name>.yaml``.
The conformance suite every registered scheduler must pass ships in ``elk_dse.testing.schedulers``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from elk_dse.compiler.elk import ElkSchedule, OpChoices
from elk_dse.registry import registrar

if TYPE_CHECKING:
    from elk_dse.ir.graph import Layer

# A plan index meaning "the compiler picks this operator's plan for loading straight into its active layout,
# in all its free SRAM, its load inside its execution" (the sequential scheduler).
DIRECT = -2

Schedule = ElkSchedule
"""What a scheduler returns: per operator (program order) its plan (an index into ``OpChoices`` frontier, -1 for
the streaming fallback, DIRECT), its window end, its SRAM split (execution budget / preloaded bytes per core);
the load order; the scheduler's own latency estimate (seconds); ``ideal`` when plans index the ideal frontier."""


@dataclass(frozen=True)
class NoKnobs:
    """A scheduler without knobs of its own."""


@dataclass(frozen=True)
class SchedulingProblem:
    """The inputs of one scheduling call, operators in program order (all repetitions of every layer).

    choices: per operator its plan options (frontier: SRAM bytes per core ascending, execution seconds
    descending; its HBM load time into the compact idle layout and the idle size per core); empty for a
    scheduler with ``needs_choices = False``. free_bytes: SRAM per core left to the operator beside the live
    activations (bytes). layers: the graph's layers (operators of one repetition, repeat count), in order.
    default_depth: the preload depth a ``max_preload_depth`` of 0 stands for (one repeated layer's operators).
    sram_bytes: SRAM per core (bytes).
    """

    choices: tuple[OpChoices, ...]
    free_bytes: tuple[float, ...]
    layers: tuple[Layer, ...]
    default_depth: int
    sram_bytes: float

    @property
    def num_ops(self) -> int:
        return len(self.free_bytes)


class Scheduler(ABC):
    """Protocol of an inter-operator scheduler.

    Call protocol: the compiler builds the scheduler once per compile with ``from_config(config)`` (its typed
    ``Knobs`` read from the flat ``SchedulerConfig`` by field name), then, for each residency decision of the
    activations, builds one :class:`SchedulingProblem` (inputs: the operator choices, the free SRAM per
    operator, the layers) and calls ``schedule(problem)`` once. Output: a :data:`Schedule`, or None when no
    schedule fits SRAM (the compiler reports the design point infeasible for ``sram_capacity``).

    The compiler turns the schedule into the Program: each operator's plan, its SRAM split, and the
    dependencies -- the load at position p of the load order waits for the execution of the last operator
    whose window ends before p (``elk.load_dependencies``); operators execute in program order.

    Contract (checked by ``elk_dse.testing.schedulers`` for every registered scheduler): window ends never
    decrease along the program and every window covers the operator's own load; an operator's plan plus the
    idle layouts resident while it runs fit its free SRAM (a separate space of its own when
    ``separate_preload_space``: the ideal reference); the simulated latency is never below the roofline
    bound; no scheduler beats ``ideal`` on the same program.

    Class attributes: ``description`` (one line, for listings); ``Knobs`` (a frozen dataclass whose fields are
    ``SchedulerConfig`` fields: the knobs this scheduler reads); ``needs_choices`` (False: the problem comes
    without plan options and every plan index is DIRECT); ``separate_preload_space`` (preloading does not
    take SRAM from execution: a reference, not a realizable schedule); ``rank`` (position in listings).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Knobs: ClassVar[type] = NoKnobs
    needs_choices: ClassVar[bool] = True
    separate_preload_space: ClassVar[bool] = False
    rank: ClassVar[int] = 100

    def __init__(self, knobs: Any = None) -> None:
        self.knobs = knobs if knobs is not None else self.Knobs()

    @classmethod
    def from_config(cls, config: Any) -> Scheduler:
        """The scheduler with its knobs taken from ``config`` (a SchedulerConfig) by field name."""
        return cls(cls.Knobs(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls.Knobs)}))

    def depth(self, problem: SchedulingProblem, max_preload_depth: int) -> int:
        """The preload depth a ``max_preload_depth`` knob stands for (0: one repeated layer's operators)."""
        return max_preload_depth or problem.default_depth

    @abstractmethod
    def schedule(self, problem: SchedulingProblem) -> Schedule | None:
        """The schedule of ``problem``, or None if no schedule fits SRAM."""


SCHEDULERS: dict[str, type[Scheduler]] = {}
register_scheduler = registrar(SCHEDULERS)
