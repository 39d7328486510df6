"""The simulator protocol and registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from elk_dse.errors import ConfigError, nearest
from elk_dse.program import Program
from elk_dse.registry import registrar

SIMULATORS: dict[str, type[Simulator]] = {}
register_simulator = registrar(SIMULATORS)




@dataclass(frozen=True)
class OpTiming:
    """When one operator instance loaded and ran (seconds from the start), and its phase durations."""

    index: int
    load_start_s: float
    load_end_s: float
    start_s: float
    end_s: float
    load_s: float
    compute_s: float
    noc_s: float
    sync_s: float


@dataclass(frozen=True)
class SimResult:
    """Latency of one pass and per-operator timings; ``busy_s`` is busy time per resource class."""

    latency_s: float
    timings: tuple[OpTiming, ...]
    busy_s: dict[str, float]


class Simulator(ABC):
    """Protocol: ``run(program)`` returns a SimResult; it reads only the Program and its chip."""

    name: str = ""

    @abstractmethod
    def run(self, program: Program) -> SimResult:
        ...


def simulate(program: Program, name: str = "analytic") -> SimResult:
    """Run the simulator registered as ``name``; ConfigError for an unknown name."""
    if name not in SIMULATORS:
        raise ConfigError("sim.name", name, "one of " + ", ".join(sorted(SIMULATORS)) + nearest(name, SIMULATORS))
    return SIMULATORS[name]().run(program)
