"""Simulators: evaluate a compiled Program on its chip. Registry: ``analytic``, ``event`` (event-driven) and
``null`` (fixed costs, for compiler tests)."""

from elk_dse.sim import analytic as _analytic  # noqa: F401  (registers itself)
from elk_dse.sim import event as _event  # noqa: F401  (registers itself)
from elk_dse.sim import null as _null  # noqa: F401  (registers itself)
from elk_dse.sim.base import (
    SIMULATORS,
    OpTiming,
    SimConfig,
    SimResult,
    Simulator,
    check_simulator,
    register_simulator,
    simulate,
)

__all__ = ["SIMULATORS", "OpTiming", "SimConfig", "SimResult", "Simulator", "check_simulator", "register_simulator",
           "simulate"]
