"""Full evaluations (with per-operator timelines) of the sweep's Pareto designs, for the report."""

from __future__ import annotations

import json
import os
from typing import Any

from elk_dse.evaluate import evaluate
from elk_dse.results.pareto import Objective, knee_point, pareto_front
from elk_dse.results.store import ResultStore
from elk_dse.search.runner import SweepSettings, _schema
from elk_dse.search.space import apply_params
from elk_dse.search.trial import METRIC_PREFIX, design_point, params_of_row

MAX_DESIGNS = 8


def write_design_details(settings: SweepSettings) -> list[int]:
    """Re-evaluate the knee and up to MAX_DESIGNS Pareto designs with their operator timelines and write
    ``designs/trial_<n>.json``; returns the trial numbers written."""
    df = ResultStore(settings.out_dir).read()
    objectives = [Objective(METRIC_PREFIX + o.metric, o.direction) for o in settings.space.objectives]
    front = pareto_front(df, objectives)
    if front.empty:
        return []
    knee = knee_point(front, objectives)
    chosen = [front.loc[knee]] + [r for i, r in front.iterrows() if i != knee][: MAX_DESIGNS - 1]
    folder = settings.out_dir / "designs"
    folder.mkdir(exist_ok=True)
    written = []
    all_params = [params_of_row(row) for row in chosen]
    for row, params, result in zip(chosen, all_params, _evaluate_all(settings, all_params), strict=True):
        result["trial"] = int(row["trial"])
        result["params"] = params
        path = folder / f"trial_{int(row['trial'])}.json"
        tmp = folder / f".{path.name}.tmp"
        tmp.write_text(json.dumps(result, default=_plain))
        os.replace(tmp, path)
        written.append(int(row["trial"]))
    return written


def design_detail(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Full evaluation (operator timelines included) of one design: base config with ``params`` applied."""
    return evaluate(design_point(apply_params(base, params)))


def _evaluate_all(settings: SweepSettings, all_params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluate the designs on the sweep's Ray workers when it has them (in parallel), else in-process."""
    if settings.workers > 0:
        import ray

        if ray.is_initialized():
            remote = ray.remote(num_cpus=1, max_retries=0)(design_detail)
            base_ref = ray.put(settings.base)
            return ray.get([remote.remote(base_ref, params) for params in all_params])
    return [design_detail(settings.base, params) for params in all_params]


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and callable(v.item):
        return v.item()
    return v


def recheck_pareto(settings: SweepSettings, sim: str = "event") -> list[int]:
    """Multi-fidelity: re-evaluate the Pareto trials with the event simulator and store
    ``metric.event_latency_s`` in their rows (a newer row per trial; the store keeps the last)."""
    from elk_dse.search.trial import evaluate_trial

    store = ResultStore(settings.out_dir, _schema(settings.space))
    df = store.read()
    objectives = [Objective(METRIC_PREFIX + o.metric, o.direction) for o in settings.space.objectives]
    front = pareto_front(df, objectives)
    rows = []
    for _, r in front.iterrows():
        params = params_of_row(r)
        row = evaluate_trial(settings.base, params, int(r["trial"]), settings.seed, settings.space.constraints)
        event_base = {**settings.base, "sim": {"name": sim, "mode": "auto"}}
        event_row = evaluate_trial(event_base, params, int(r["trial"]), settings.seed)
        row[METRIC_PREFIX + "event_latency_s"] = event_row[METRIC_PREFIX + "latency_s"]
        rows.append(row)
    if rows:
        store.append(rows)
        store.compact()  # one row per trial in the dataset again
    return [int(r["trial"]) for r in rows]
