"""Sweep results from files alone: Parquet storage, Pareto analysis, plots and the HTML report.

Kept free of the compiler, simulators and search stack (and of Ray / Optuna / Hydra) so a report can be
built on any machine that has the sweep folder. ``plots`` and ``report`` import matplotlib; import them
explicitly (``from elk_dse.results.report import build_report``) so writers of results do not pay for it.
"""

from elk_dse.results.pareto import Objective, knee_point, pareto_front, pareto_mask
from elk_dse.results.store import (
    META_COLUMNS,
    METRIC_PREFIX,
    PARAM_PREFIX,
    REQUIRED_METRICS,
    ResultStore,
    make_schema,
)

__all__ = [
    "META_COLUMNS",
    "METRIC_PREFIX",
    "PARAM_PREFIX",
    "REQUIRED_METRICS",
    "Objective",
    "ResultStore",
    "knee_point",
    "make_schema",
    "pareto_front",
    "pareto_mask",
]
