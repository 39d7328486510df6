"""Evaluate one trial: a base design plus searched parameters -> one result row (plain dict).

This is the function Ray workers run; it imports nothing of Ray or Optuna and never raises for bad designs:
invalid parameter combinations and infeasible design points come back as rows with a status and reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import traceback
from typing import Any

from elk_dse import __version__
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.conventions import conventions
from elk_dse.errors import ElkError
from elk_dse.evaluate import METRICS, DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import stack_from_dict
from elk_dse.models import ModelConfig
from elk_dse.schema import build
from elk_dse.search.space import apply_params
from elk_dse.sim import SimConfig

PARAM_PREFIX = "param."
METRIC_PREFIX = "metric."


def params_of_row(row: Any) -> dict[str, Any]:
    """{dotted key: value} of a result row (a pandas Series); null columns (conditional parameters that were
    not active in this trial) are left out, so the base design's value stays."""
    out: dict[str, Any] = {}
    for column, value in row.items():
        if not str(column).startswith(PARAM_PREFIX) or value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        out[str(column)[len(PARAM_PREFIX):]] = value.item() if hasattr(value, "item") else value
    return out


def config_hash(design: dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of a design config (base with parameters applied)."""
    return hashlib.sha256(json.dumps(design, sort_keys=True, default=str).encode()).hexdigest()[:16]


def design_point(design: dict[str, Any]) -> DesignPoint:
    """Validate a plain design dict {chip, model, scheduler, sim[, stack]} into a DesignPoint (ConfigError if
    bad). Without ``stack`` the point runs the chip's ``default_stack`` (hw/stack.py)."""
    return DesignPoint(
        chip=chip_from_dict(design["chip"], "chip"),
        model=build(ModelConfig, design["model"], "model"),
        scheduler=build(SchedulerConfig, design["scheduler"], "scheduler"),
        sim=build(SimConfig, design["sim"], "sim") if isinstance(design["sim"], dict) else SimConfig(design["sim"]),
        conventions=conventions(design.get("conventions", "default")).name,
        stack=stack_from_dict(design["stack"]) if design.get("stack") is not None else None,
    )


def check_design(design: dict[str, Any]) -> DesignPoint:
    """design_point, plus the model checks that otherwise wait for evaluation (name, phase, arch)."""
    from elk_dse.models import model_builder

    point = design_point(design)
    model_builder(point.model)
    return point


def evaluate_trial(base: dict[str, Any], params: dict[str, Any], trial: int, seed: int,
                   constraints: tuple = ()) -> dict[str, Any]:
    """Result row of one trial: meta columns, ``param.<key>`` and ``metric.<name>`` columns."""
    t0 = time.perf_counter()
    row: dict[str, Any] = {"trial": trial, "seed": seed, "package_version": __version__, "error": "",
                           "infeasible_reason": ""}
    row.update({PARAM_PREFIX + k: v for k, v in params.items()})
    row.update({METRIC_PREFIX + m: math.nan for m in METRICS})
    try:
        design = apply_params(base, params)
        row["config_hash"] = config_hash(design)
        result = evaluate(design_point(design), include_ops=False)
    except ElkError as err:
        row.update(status="INFEASIBLE", feasible=False, infeasible_reason="invalid_config", error=str(err))
        row.setdefault("config_hash", "")
    except Exception as err:  # a bug must not kill the sweep: the row carries it
        row.update(status="FAIL", feasible=False, config_hash=row.get("config_hash", ""),
                   error=f"{type(err).__name__}: {err} | {traceback.format_exc(limit=3)!r}"[:2000])
    else:
        row.update({METRIC_PREFIX + m: float(result[m]) for m in METRICS})
        row["feasible"] = bool(result["feasible"])
        row["status"] = "COMPLETE" if result["feasible"] else "INFEASIBLE"
        row["infeasible_reason"] = result["infeasible_reason"]
        row["error"] = result["infeasible_detail"]
        if constraints and result["feasible"]:
            unknown = [c.metric for c in constraints if not math.isfinite(float(result[c.metric]))]
            if unknown:  # a budget on a metric this design point does not produce cannot be shown to hold
                row.update(status="INFEASIBLE", feasible=False, infeasible_reason="budget_unknown",
                           error=f"budget metric {unknown[0]} is not a finite number for this design point "
                                 f"(sim={design['sim'] if isinstance(design['sim'], str) else design['sim'].get('name')})")
            else:
                row[METRIC_PREFIX + "constraint_violation"] = max(c.violation(float(result[c.metric]))
                                                                  for c in constraints)
    row["duration_s"] = time.perf_counter() - t0
    return row
