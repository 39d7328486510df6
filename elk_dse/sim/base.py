"""The simulator protocol and registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from elk_dse.cost.host_io import host_batch_io, host_readback_s
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
    stream_s: float = 0.0  # HBM streaming during the execution (double-buffered multi-pass plans), seconds


@dataclass(frozen=True)
class SimResult:
    """Latency of one pass and per-operator timings; ``busy_s`` is busy time per resource class."""

    latency_s: float
    timings: tuple[OpTiming, ...]
    busy_s: dict[str, float]


@dataclass(frozen=True)
class SimConfig:
    """Which simulator and its options: ``mode`` for ``event`` (auto | exact | aggregated)."""

    name: str = "analytic"
    mode: str = "auto"

    def __post_init__(self) -> None:
        physical = sorted(k for k, v in SIMULATORS.items() if v.physical)
        if self.name not in physical:
            raise ConfigError("name", self.name, "one of " + ", ".join(physical) + nearest(self.name, physical))
        if self.mode not in ("auto", "exact", "aggregated"):
            raise ConfigError("mode", self.mode, "one of auto, exact, aggregated")

    def options(self) -> dict:
        return {"mode": self.mode} if self.name == "event" else {}


class Simulator(ABC):
    """Protocol: ``run(program)`` returns a SimResult; it reads only the Program and its chip. ``physical``:
    False for a simulator whose times are not the chip's (the null simulator: fixed costs for compiler tests),
    which a sweep's ``sim.name`` may not select and the physics checks skip. ``exec_floor``: True for a
    simulator that runs a Program's operators one after another, each for at least
    cost/op_time.exec_time(work).total_s (the analytic one): parallelism=auto may then bound a candidate by its
    plans' whole execution times (compiler/parallel/auto.Tightener), otherwise by their compute and sync only."""

    name: ClassVar[str] = ""
    physical: bool = True
    exec_floor: ClassVar[bool] = False

    @abstractmethod
    def run(self, program: Program) -> SimResult:
        ...

    def check(self, chip: Any) -> None:
        """Raise ConfigError if this simulator cannot take ``chip`` (called before compiling, so a design it
        cannot simulate fails in a second rather than after the compile). Default: any chip."""
        return None


def check_simulator(chip: Any, name: str, **options) -> None:
    """The registered simulator ``name`` accepts ``chip`` (ConfigError naming the limit otherwise)."""
    if name in SIMULATORS:
        SIMULATORS[name](**options).check(chip)


def simulate(program: Program, name: str = "analytic", **options) -> SimResult:
    """Run the simulator registered as ``name`` (with its options, e.g. ``trace=`` for ``event``);
    ConfigError for an unknown name. Both simulators' latency then gets the pipeline composition (pipeline
    parallelism) and the host's launch of the program (``overheads.launch_us_per_step``, once per step: the
    device idles meanwhile, so the breakdown counts it as idle), and the host's read-back of the logits when the
    stack samples on the host (cost/host_io.py, issue 17t seventh session), likewise once per step."""
    if name not in SIMULATORS:
        raise ConfigError("sim.name", name, "one of " + ", ".join(sorted(SIMULATORS)) + nearest(name, SIMULATORS))
    result = SIMULATORS[name](**options).run(program)
    microbatches = int(program.meta.get("microbatches", 1))
    if microbatches > 1 and result.timings:  # pipeline parallelism: m micro-batches through the stages
        from elk_dse.cost.pipeline import pipeline_latency_s, stage_times_s

        stages = stage_times_s([t.end_s for t in result.timings], program.meta["stage_ends"])
        result = SimResult(max(result.latency_s, pipeline_latency_s(stages, microbatches)), result.timings,
                           result.busy_s)
    # + the host's read-back of the logits to sample (issue 17t, seventh session; 0 when the stack samples on device)
    # + what the batch's host input writes and output reads add to the device time (issue 17g, eighth session;
    # cost/host_io.host_batch_io: 0 unless the stack charges host I/O)
    launch_s = (program.chip.overheads.launch_s + host_readback_s(program)
                + host_batch_io(program, result.latency_s).added_s)
    if launch_s:  # the host launches the compiled program once per step; the device idles meanwhile (issue 17n)
        result = SimResult(result.latency_s + launch_s, result.timings, result.busy_s)
    return result
