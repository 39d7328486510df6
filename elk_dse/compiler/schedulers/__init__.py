"""Inter-operator schedulers: they decide what waits for what (HBM loads versus execution).

A scheduler maps the operator sequence to dependencies; the foundation has ``sequential`` (load an
operator's data, then run it, then the next: no overlap). Issue 4 adds basic, static, elk_dyn, elk_full, ideal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

SCHEDULERS: dict[str, type[Scheduler]] = {}


def register_scheduler(name: str):
    """Class decorator adding a Scheduler to the registry under ``name``."""

    def deco(cls: type[Scheduler]) -> type[Scheduler]:
        cls.name = name
        SCHEDULERS[name] = cls
        return cls

    return deco


PLAN_FAMILIES = ("t10", "replicate")


@dataclass(frozen=True)
class SchedulerConfig:
    """Which scheduler to use and the compiler knobs it runs with.

    ``plans``: the intra-operator plan family: ``t10`` (compute-shift plans with rotating tensors) or
    ``replicate`` (spatial partitions only, every tensor a core needs held whole: the baseline T10 beats).
    """

    name: str = "sequential"
    plans: str = "t10"

    def __post_init__(self) -> None:
        if self.plans not in PLAN_FAMILIES:
            from elk_dse.errors import ConfigError

            raise ConfigError("plans", self.plans, "one of " + ", ".join(PLAN_FAMILIES))


class Scheduler(ABC):
    """Protocol: ``dependencies(n)`` returns, for each of n ops in order, (load_after, exec_after): indices of
    earlier ops whose execution must end before this op's load, respectively execution, may start."""

    name: str = ""

    @abstractmethod
    def dependencies(self, n: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        ...


@register_scheduler("sequential")
class Sequential(Scheduler):
    """Load operator i's data from HBM only after operator i-1 has finished, then run it (no overlap)."""

    def dependencies(self, n):
        return [((i - 1,), (i - 1,)) if i else ((), ()) for i in range(n)]
