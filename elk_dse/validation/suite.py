"""The validation suite: published measurements of shipping chips, the declared calibration, and predictions.

``points.yaml`` (this package) lists every point with its chip, workload, schedule, measured value and
source. Calibration fits the parameters named there (per-operator dispatch and the achievable DRAM fraction)
on the points whose role is ``calibration`` and on nothing else; the fitted values are then applied to every
chip that shares the software stack (``calibration.shared_by``) and every point is predicted. Held-out points
never influence a parameter: :func:`fit` only ever sees the calibration points.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import model_config_from_dict

METRICS = ("tokens_per_s_per_user", "latency_ms")
ROLES = ("calibration", "held-out")
EFFICIENCY_RANGE = (0.5, 1.0)  # physically: a DRAM interface never exceeds its peak; below half is a bug
DISPATCH_RANGE_US = (0.0, 200.0)


@dataclass(frozen=True)
class Point:
    """One published measurement: where it ran, what ran, the value and where it was published."""

    id: str
    role: str
    chip: str
    model: dict[str, Any]
    scheduler: str
    metric: str
    measured: float
    source: str
    conditions: str
    chip_overrides: dict[str, Any]


@dataclass(frozen=True)
class Calibration:
    """The fitted parameters (physical units) and the calibration points' residual errors (fractions)."""

    dispatch_us_per_op: float
    hbm_efficiency: float
    errors: tuple[float, ...]


@dataclass(frozen=True)
class Row:
    """One line of the validation table; ``error`` = predicted / measured - 1 (NaN when infeasible)."""

    point: Point
    predicted: float
    error: float
    note: str = ""


def load_suite() -> dict[str, Any]:
    """The parsed ``points.yaml`` of this package."""
    text = (importlib.resources.files("elk_dse.validation") / "points.yaml").read_text()
    return yaml.safe_load(text)


def points(suite: dict[str, Any] | None = None) -> list[Point]:
    """Every point of the suite, validated (role, metric and source must be known)."""
    suite = suite or load_suite()
    out = []
    for raw in suite["points"]:
        p = Point(raw["id"], raw["role"], raw["chip"], dict(raw["model"]), raw.get("scheduler", "elk_full"),
                  raw["metric"], float(raw["measured"]), raw["source"], " ".join(str(raw["conditions"]).split()),
                  dict(raw.get("chip_overrides", {})))
        if p.role not in ROLES or p.metric not in METRICS or p.source not in suite["sources"]:
            raise ConfigError(f"validation point {p.id}", raw, "role, metric and source must be known")
        out.append(p)
    return out


def chip_data(name: str) -> dict[str, Any]:
    """The shipped description ``conf/chip/<name>.yaml`` as a mapping."""
    return yaml.safe_load((importlib.resources.files("elk_dse.conf") / "chip" / f"{name}.yaml").read_text())


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def predict(point: Point, dispatch_us: float | None = None, efficiency: float | None = None,
            shared_by: Sequence[str] = ()) -> float:
    """The predicted value of ``point``'s metric; ``dispatch_us`` / ``efficiency`` replace the chip's values
    when the chip is in ``shared_by`` (None: keep the description's). NaN when the design is infeasible."""
    data = _merge(chip_data(point.chip), point.chip_overrides)
    if point.chip in shared_by:
        if dispatch_us is not None:
            data["overheads"] = {**data.get("overheads", {}), "dispatch_us_per_op": dispatch_us}
        if efficiency is not None:
            data["hbm"] = {**data["hbm"], "efficiency": efficiency}
    cfg = model_config_from_dict({"phase": "decode", **point.model})
    result = evaluate(DesignPoint(chip_from_dict(data), cfg, SchedulerConfig(name=point.scheduler)),
                      include_ops=False)
    if not result["feasible"]:
        return math.nan
    latency = result["latency_s"]
    # Physics first: a prediction below the roofline would be a bug in the models, never a result.
    assert latency >= result["roofline_latency_s"] * (1 - 1e-9), f"{point.id}: latency below the roofline"
    # One decode step produces one token for every user: tokens/s/user = 1 / step latency.
    return 1.0 / latency if point.metric == "tokens_per_s_per_user" else latency * 1e3


def _golden(f: Callable[[float], float], lo: float, hi: float, iters: int = 18) -> float:
    """Minimum of a unimodal ``f`` on [lo, hi] by golden-section search."""
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2


def fit(calibration_points: Sequence[Point], shared_by: Sequence[str]) -> Calibration:
    """Fit dispatch (us per operator) and DRAM efficiency to minimise the squared log errors of the
    calibration points: a grid over efficiency (step 0.01 in EFFICIENCY_RANGE), golden-section over dispatch.

    Only ``calibration_points`` are evaluated; raises ValueError if any is not a calibration point."""
    if not calibration_points or any(p.role != "calibration" for p in calibration_points):
        raise ValueError("fit() takes calibration points only")

    def loss(d: float, e: float) -> float:
        return sum(math.log(predict(p, d, e, shared_by) / p.measured) ** 2 for p in calibration_points)

    best = (math.inf, 0.0, 1.0)
    lo, hi = EFFICIENCY_RANGE
    for i in range(round((hi - lo) / 0.01) + 1):
        e = round(lo + 0.01 * i, 2)
        d = _golden(functools.partial(loss, e=e), *DISPATCH_RANGE_US)
        value = loss(d, e)
        if value < best[0]:
            best = (value, d, e)
    _, d, e = best
    errors = tuple(predict(p, d, e, shared_by) / p.measured - 1 for p in calibration_points)
    return Calibration(round(d, 2), e, errors)


def run(selected: Sequence[str] = (), calibrate: bool = True) -> tuple[list[Row], Calibration | None]:
    """Predict every point (or those whose id is in ``selected``). With ``calibrate`` the overheads are
    first fitted on the calibration points; without, the chip descriptions' values are used as shipped."""
    suite = load_suite()
    shared = tuple(suite["calibration"]["shared_by"])
    all_points = points(suite)
    unknown = set(selected) - {p.id for p in all_points}
    if unknown:
        raise ConfigError("points", sorted(unknown)[0], "one of " + ", ".join(p.id for p in all_points))
    cal = fit([p for p in all_points if p.role == "calibration"], shared) if calibrate else None
    rows = []
    for p in all_points:
        if selected and p.id not in selected:
            continue
        value = predict(p, cal.dispatch_us_per_op if cal else None, cal.hbm_efficiency if cal else None, shared)
        note = "" if math.isfinite(value) else "infeasible on the modelled chip"
        rows.append(Row(p, value, value / p.measured - 1 if math.isfinite(value) else math.nan, note))
    return rows, cal
