"""The validation suite: published measurements of shipping chips, the declared calibration, and predictions.

``points.yaml`` (this package) lists every point with its chip, workload, schedule, software stack, measured
value and source. Calibration is per software stack (issue 17, docs/stacks.md): a stack profile
(``conf/stack/<name>.yaml``) names its calibration points and the parameters fitted on them (per-operator
dispatch, the achievable DRAM fraction); each stack's parameters are fitted on the points whose role is
``calibration`` and whose ``stack`` is that stack, and on nothing else. Stacks without calibration points keep
their profile's shipped values. Held-out points never influence a parameter: :func:`fit` only ever sees one
stack's calibration points.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.resources
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import ARCH_DISPATCH, NONE, StackProfile, check_stack_name, load_stack, stack_names
from elk_dse.models import model_config_from_dict

METRICS = ("tokens_per_s_per_user", "latency_ms")
ROLES = ("calibration", "held-out", "check")  # check (issue 17b3): predicted, never fitted, not held out
# eighth session: what a point may override of its stack (the host loop the measured program ran: issue 17g2)
STACK_OVERRIDES = ("host_batch_io",)
EFFICIENCY_RANGE = (0.5, 1.0)  # physically: a DRAM interface never exceeds its peak; below half is a bug
DISPATCH_RANGE_US = (0.0, 200.0)
# The fitted fixed costs and their ranges (microseconds; issue 17n): per operator, per collective, per step.
TIME_RANGES_US = {"dispatch_us_per_op": DISPATCH_RANGE_US, "collective_startup_us": (0.0, 500.0),
                  "launch_us_per_step": (0.0, 5000.0),
                  "sdpa_ns_per_score_tile": (0.0, 20000.0),  # issue 17s: nanoseconds (not us) per score tile
                  # issue 17b (seventh session): one architecture's own dispatch (dispatch_us_per_op_by_arch)
                  **{name: DISPATCH_RANGE_US for name in ARCH_DISPATCH}}
COORDINATE_ROUNDS = 3  # rounds of one golden-section search per fitted time when more than one is fitted
# issue 17k: then at most this many Gauss-Newton steps on the log residuals (finite differences), each kept only
# if it lowers the loss: coordinate descent stops short when two fitted times trade off (tt_galaxy's dispatch
# and decode-attention tile time: 3 rounds left its residuals at +6.8% / -1.4%).
POLISH_STEPS = 8


@dataclass(frozen=True)
class Point:
    """One published measurement: where it ran (chip and software stack), what ran, the value and where it
    was published. ``stack``: the point's ``stack:`` in points.yaml, else the chip's ``default_stack``."""

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
    stack: str = NONE
    # eighth session: how the measured program's host loop differs from its stack's (STACK_OVERRIDES only)
    stack_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Calibration:
    """One stack's fitted parameters (physical units) and its calibration points' residual errors (fractions).
    A parameter the stack does not fit keeps its shipped value here."""

    stack: str
    dispatch_us_per_op: float
    hbm_efficiency: float
    errors: tuple[float, ...]
    fitted: tuple[str, ...] = ()
    points: tuple[str, ...] = ()
    times_us: tuple[tuple[str, float], ...] = ()  # every fitted fixed cost (name, us; ns for sdpa_ns_per_score_tile)

    def profile(self) -> StackProfile:
        """The stack's shipped profile with the fitted values."""
        return load_stack(self.stack).with_values(**{"dispatch_us_per_op": self.dispatch_us_per_op,
                                                     **dict(self.times_us), "dram_efficiency": self.hbm_efficiency})


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
        stack = str(raw.get("stack") or chip_data(raw["chip"]).get("default_stack") or NONE)
        p = Point(raw["id"], raw["role"], raw["chip"], dict(raw["model"]), raw.get("scheduler", "elk_full"),
                  raw["metric"], float(raw["measured"]), raw["source"], " ".join(str(raw["conditions"]).split()),
                  dict(raw.get("chip_overrides", {})), stack, dict(raw.get("stack_overrides", {})))
        odd = sorted(set(p.stack_overrides) - set(STACK_OVERRIDES))
        if odd:
            raise ConfigError(f"validation point {p.id}: stack_overrides.{odd[0]}", p.stack_overrides[odd[0]],
                              f"a point may override only {', '.join(STACK_OVERRIDES)} of its stack")
        if p.stack_overrides:  # checked at load: an unknown rule is refused here, not at prediction
            dataclasses.replace(load_stack(p.stack), **p.stack_overrides)
        if p.role not in ROLES or p.metric not in METRICS or p.source not in suite["sources"]:
            raise ConfigError(f"validation point {p.id}", raw, "role, metric and source must be known")
        check_stack_name(p.stack, f"validation point {p.id}: stack")
        out.append(p)
    return out


def calibration_sets(all_points: Sequence[Point]) -> dict[str, list[Point]]:
    """{stack: its calibration points} for every shipped stack that fits parameters. The stack profile's
    declared points (``calibration.points``) must be exactly the points.yaml points of role calibration that
    name the stack (ConfigError otherwise), so neither file can add a calibration point behind the other."""
    by_id = {p.id: p for p in all_points}
    out: dict[str, list[Point]] = {}
    for name in stack_names():
        profile = load_stack(name)
        declared = set(profile.calibration.points)
        marked = {p.id for p in all_points if p.role == "calibration" and p.stack == name}
        if declared != marked:
            odd = sorted(declared ^ marked)[0]
            raise ConfigError(f"stack {name}: calibration.points", odd, "a stack's calibration points are the "
                              "points.yaml points with role calibration and that stack, and only those")
        if profile.calibration.fit:
            out[name] = [by_id[i] for i in profile.calibration.points]
    return out


def chip_data(name: str) -> dict[str, Any]:
    """The shipped description ``conf/chip/<name>.yaml`` as a mapping."""
    return yaml.safe_load((importlib.resources.files("elk_dse.conf") / "chip" / f"{name}.yaml").read_text())


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def predict(point: Point, stack: StackProfile | None = None) -> float:
    """The predicted value of ``point``'s metric on its chip running ``stack`` (None: the point's stack as
    shipped). NaN when the design is infeasible."""
    data = _merge(chip_data(point.chip), point.chip_overrides)
    stack = stack if stack is not None else load_stack(point.stack)
    if point.stack_overrides:  # the point's own host loop (validated by StackProfile.__post_init__)
        stack = dataclasses.replace(stack, **point.stack_overrides)
    cfg = model_config_from_dict({"phase": "decode", **point.model})
    result = evaluate(DesignPoint(chip_from_dict(data), cfg, SchedulerConfig(name=point.scheduler), stack=stack),
                      include_ops=False)
    if not result["feasible"]:
        return math.nan
    latency = result["latency_s"]
    # Physics first: a prediction below the roofline would be a bug in the models, never a result.
    if latency < result["roofline_latency_s"] * (1 - 1e-9):
        raise RuntimeError(f"{point.id}: latency {latency} below the roofline {result['roofline_latency_s']}")
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


def _polish(residuals: Callable[[dict[str, float]], list[float]], values: dict[str, float]) -> dict[str, float]:
    """Gauss-Newton steps (forward differences, 0.1% of each value) from ``values`` on ``residuals`` (log
    errors), each clipped to TIME_RANGES_US, halved up to 4 times until it lowers the sum of squares, and kept
    only then; stops after POLISH_STEPS or when a step changes no value by 1e-5 of itself (issue 17k)."""
    import numpy as np

    names = list(values)
    r = np.array(residuals(values))
    for _ in range(POLISH_STEPS):
        jac = np.empty((len(r), len(names)))
        for j, name in enumerate(names):
            h = max(abs(values[name]) * 1e-3, 1e-3)
            jac[:, j] = (np.array(residuals({**values, name: values[name] + h})) - r) / h
        step = np.linalg.lstsq(jac, -r, rcond=None)[0]
        for _ in range(5):
            trial = {name: min(max(values[name] + float(d), TIME_RANGES_US[name][0]), TIME_RANGES_US[name][1])
                     for name, d in zip(names, step, strict=True)}
            r_trial = np.array(residuals(trial))
            if float(r_trial @ r_trial) < float(r @ r):
                break
            step = step / 2
        else:
            return values
        moved = max(abs(trial[n] - values[n]) / max(abs(values[n]), 1e-9) for n in names)
        values, r = trial, r_trial
        if moved < 1e-5:
            break
    return values


def fit(calibration_points: Sequence[Point], profile: StackProfile) -> Calibration:
    """Fit ``profile``'s parameters named in ``calibration.fit`` to minimise the squared log errors of its
    calibration points: a grid over the DRAM efficiency (step 0.01 in EFFICIENCY_RANGE) if it is fitted, and
    for each efficiency golden-section over each fitted fixed cost in its TIME_RANGES_US (one search if one is
    fitted, COORDINATE_ROUNDS rounds of coordinate descent if more, then :func:`_polish`); the others keep their
    values.

    Only ``calibration_points`` are evaluated; raises ValueError if any is not a calibration point of this
    stack."""
    if not calibration_points or any(p.role != "calibration" or p.stack != profile.name
                                      for p in calibration_points):
        raise ValueError(f"fit() takes calibration points of stack {profile.name} only")
    fitted = profile.calibration.fit
    for name in fitted:  # issue 17b: an architecture's dispatch needs a calibration point of that architecture
        arch = name.split(".", 1)[1] if name in ARCH_DISPATCH else ""
        if arch and not any(chip_data(p.chip).get("architecture") == arch for p in calibration_points):
            raise ConfigError(f"stack {profile.name}: calibration.fit", name, f"needs a calibration point on a "
                              f"chip of architecture {arch} (none of {', '.join(p.id for p in calibration_points)})")
    times = [name for name in TIME_RANGES_US if name in fitted]

    def loss(values: dict[str, float], e: float) -> float:
        stack = profile.with_values(**values, dram_efficiency=e)
        return sum(math.log(predict(p, stack) / p.measured) ** 2 for p in calibration_points)

    def best_times(e: float) -> dict[str, float]:
        values: dict[str, float] = {name: profile.value(name) for name in times}

        def one(v: float, name: str) -> float:
            return loss({**values, name: v}, e)

        for _ in range(COORDINATE_ROUNDS if len(times) > 1 else 1):
            for name in times:
                values[name] = _golden(functools.partial(one, name=name), *TIME_RANGES_US[name])
        if len(times) > 1:
            values = _polish(lambda v: [math.log(predict(p, profile.with_values(**v, dram_efficiency=e))
                                                 / p.measured) for p in calibration_points], values)
        return values

    lo, hi = EFFICIENCY_RANGE
    grid = ([round(lo + 0.01 * i, 2) for i in range(round((hi - lo) / 0.01) + 1)]
            if "dram_efficiency" in fitted else [profile.dram_efficiency])
    best: tuple[float, dict[str, float], float] = (math.inf, {}, profile.dram_efficiency)
    for e in grid:
        values = best_times(e)
        value = loss(values, e)
        if value < best[0]:
            best = (value, values, e)
    _, values, e = best
    values = {name: round(v, 2) for name, v in values.items()}
    stack = profile.with_values(**values, dram_efficiency=e)
    errors = tuple(predict(p, stack) / p.measured - 1 for p in calibration_points)
    return Calibration(profile.name, stack.dispatch_us_per_op, e, errors, tuple(fitted),
                       tuple(p.id for p in calibration_points), tuple(values.items()))


def _fit_task(name: str, pts: list[Point]) -> Calibration:
    return fit(pts, load_stack(name))


def run(selected: Sequence[str] = (), calibrate: bool = True, workers: int = 1,
        progress: Callable[[str], None] | None = None) -> tuple[list[Row], list[Calibration]]:
    """Predict every point (or those whose id is in ``selected``). With ``calibrate`` each stack that declares
    calibration points (and that a selected point runs) is first fitted on its own calibration points; without, every stack's profile is used
    as shipped. ``workers`` > 1 runs the fits and predictions in that many processes (a stack's points start as
    soon as its fit ends); the rows are the same, in points.yaml's order. ``progress`` gets one line per
    finished fit or point."""
    suite = load_suite()
    all_points = points(suite)
    unknown = set(selected) - {p.id for p in all_points}
    if unknown:
        raise ConfigError("points", sorted(unknown)[0], "one of " + ", ".join(p.id for p in all_points))
    if workers < 1:
        raise ConfigError("workers", str(workers), "an integer >= 1")
    sets = calibration_sets(all_points) if calibrate else {}
    todo = [p for p in all_points if not selected or p.id in selected]
    if selected:  # fit only the stacks the selected points run (a subset's run need not fit every stack)
        sets = {name: pts for name, pts in sets.items() if any(p.stack == name for p in todo)}
    values: dict[str, float] = {}
    cal_of: dict[str, Calibration] = {}
    say = progress or (lambda line: None)
    if workers == 1:
        for name, pts in sets.items():
            cal_of[name] = _fit_task(name, pts)
            say(f"fitted {name}")
        for p in todo:
            values[p.id] = predict(p, cal_of[p.stack].profile() if p.stack in cal_of else None)
            say(f"predicted {p.id}")
    else:
        import concurrent.futures as cf
        import multiprocessing

        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending: dict[cf.Future, tuple[str, str]] = {}

            def submit_points(stack: str | None, profile: StackProfile | None) -> None:
                for p in todo:
                    if (p.stack == stack) if stack is not None else (p.stack not in sets):
                        pending[pool.submit(predict, p, profile)] = ("point", p.id)

            for name, pts in sets.items():
                pending[pool.submit(_fit_task, name, pts)] = ("fit", name)
            submit_points(None, None)
            while pending:
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    kind, key = pending.pop(fut)
                    if kind == "fit":
                        cal_of[key] = fut.result()
                        submit_points(key, cal_of[key].profile())
                        say(f"fitted {key}")
                    else:
                        values[key] = fut.result()
                        say(f"predicted {key}")
    rows = []
    for p in todo:
        value = values[p.id]
        note = "" if math.isfinite(value) else "infeasible on the modelled chip"
        rows.append(Row(p, value, value / p.measured - 1 if math.isfinite(value) else math.nan, note))
    return rows, [cal_of[name] for name in sets]
