"""The Python API: what the command line does, from a notebook or a script (docs/api.md).

    import elk_dse
    r = elk_dse.evaluate(chip="mesh64", model="llama2_7b")            # one design point
    r.latency_s, r.to_dict()                                            # typed fields; the JSON contract
    s = elk_dse.sweep(chip="mesh64", n_trials=64, workers=0)           # designs/, report, resume: as the CLI
    s.rows, s.front, s.knee, s.study                                    # the Parquet rows, Pareto front, Optuna
    s = elk_dse.load("results/<sweep folder>")                          # any sweep folder, from its files

Configuration is the CLI's: a chip, model, scheduler and simulator by name (conf/), then overrides as dotted
keys, given as a mapping (``overrides={"chip.cores.sram_kib": 2048}``) or as keyword arguments with ``__``
for the dots (``chip__cores__sram_kib=2048``). Bad input raises :class:`elk_dse.errors.ConfigError` (its
message is the CLI's one line); an infeasible design point is a Result with ``feasible=False`` and a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elk_dse.errors import ConfigError, StorageError


def _hydra_value(value: Any) -> str:
    """A Python value as Hydra override text (strings always quoted, so any text survives its grammar)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) and not math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Path):
        return _hydra_value(str(value))
    if isinstance(value, list | tuple):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError("overrides", value, "numbers, text, true/false, None, lists and mappings of them")


def _overrides(chip: str, model: str | None, scheduler: str | None, sim: str | None,
               overrides: Mapping[str, Any] | None, keys: Mapping[str, Any]) -> list[str]:
    out = [f"+chip={chip}"]
    out += [f"{group}={name}" for group, name in (("model", model), ("scheduler", scheduler), ("sim", sim))
            if name is not None]
    merged = dict(overrides or {})
    for key, value in keys.items():
        merged[key.replace("__", ".")] = value
    for key, value in merged.items():
        if not isinstance(key, str) or not key:
            raise ConfigError("overrides", key, "dotted config keys, e.g. 'chip.cores.sram_kib'")
        if key in ("chip", "model", "scheduler", "sim"):
            raise ConfigError(key, value, f"choose the {key} with the {key}= argument")
        out.append(f"{key}={_hydra_value(value)}")
    return out


def compose(chip: str = "mesh64", model: str | None = None, scheduler: str | None = None, sim: str | None = None,
            *, overrides: Mapping[str, Any] | None = None, **keys: Any) -> dict[str, Any]:
    """The composed configuration (a plain dict, as ``python -m elk_dse ... --cfg`` prints it)."""
    from elk_dse.cli import compose_config

    return compose_config(_overrides(chip, model, scheduler, sim, overrides, keys))


@dataclass(frozen=True, eq=False)
class Result:
    """One evaluated design point. The typed fields are the headline metrics (base SI units, NaN when the point
    is infeasible); ``data`` holds the whole output contract (docs/results_format.md), ``to_dict()`` the JSON
    form that ``evaluate format=json`` prints (NaN as None), and ``result["key"]`` reads any contract key."""

    feasible: bool
    infeasible_reason: str
    infeasible_detail: str
    latency_s: float
    roofline_latency_s: float
    throughput_per_s: float
    energy_j: float
    power_w: float
    area_mm2: float
    data: Mapping[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        from elk_dse.cli import _jsonable

        return _jsonable(dict(self.data))  # type: ignore[no-any-return]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @classmethod
    def from_contract(cls, data: Mapping[str, Any]) -> Result:
        def num(key: str) -> float:
            value = data.get(key)
            return float(value) if value is not None else math.nan

        return cls(feasible=bool(data["feasible"]), infeasible_reason=str(data.get("infeasible_reason") or ""),
                   infeasible_detail=str(data.get("infeasible_detail") or ""), latency_s=num("latency_s"),
                   roofline_latency_s=num("roofline_latency_s"), throughput_per_s=num("throughput_per_s"),
                   energy_j=num("energy_j"), power_w=num("power_w"), area_mm2=num("area_mm2"), data=data)


def evaluate(chip: str = "mesh64", model: str | None = None, scheduler: str | None = None, sim: str | None = None,
             *, trace: str | Path | None = None, overrides: Mapping[str, Any] | None = None, **keys: Any) -> Result:
    """Compile and simulate one design point: ``chip`` (a conf/chip name), ``model`` (default llama2_7b),
    ``scheduler`` (default elk_full), ``sim`` (default analytic), plus overrides. ``trace``: a Perfetto trace
    file (needs ``sim="event"``)."""
    from elk_dse.cli import _check_trace_path, _design
    from elk_dse.evaluate import evaluate as evaluate_point
    from elk_dse.search.trial import design_point

    cfg = compose(chip, model, scheduler, sim, overrides=overrides, **keys)
    if trace is not None:
        _check_trace_path(str(trace))
    return Result.from_contract(evaluate_point(design_point(_design(cfg)), trace=None if trace is None else str(trace)))


@dataclass(frozen=True)
class SweepOutcome:
    """What running a sweep produced: its folder, the driver's summary, the report (None if not built), the
    number of Pareto designs re-checked with the event simulator (None if not asked) and the closing lines."""

    out_dir: Path
    summary: Any  # elk_dse.search.runner.SweepSummary
    report: Path | None
    rechecked: int | None
    highlights: tuple[str, ...]


def run_configured_sweep(cfg: dict[str, Any], command: str = "") -> SweepOutcome:
    """Everything ``python -m elk_dse sweep`` does for a composed config: search (resuming the folder), the
    Pareto designs' details (designs/), the optional event re-check and the report; the folder locked and
    checked against the configuration (elk_dse/search/folder.py). Used by the CLI and by :func:`sweep`."""
    from elk_dse.cli import _bool, _design, _int, _require_chip, default_out
    from elk_dse.results.store import ResultStore
    from elk_dse.results.summary import sweep_highlights
    from elk_dse.search.designs import recheck_pareto, write_design_details
    from elk_dse.search.folder import fingerprint, sweep_lock, sweep_record
    from elk_dse.search.runner import SweepSettings, check_writable, run_sweep
    from elk_dse.search.space import load_space

    _require_chip(cfg)
    search = cfg["search"]
    for key in ("progress", "report"):
        if not isinstance(cfg.get(key), bool):
            raise ConfigError(key, cfg.get(key), "true or false")
    if search.get("recheck") not in (None, "event"):  # checked before the sweep, not after hours of it
        raise ConfigError("search.recheck", search["recheck"], "null or event")
    space = load_space(str(cfg["sweep"]))
    seed, sampler, batch_size = _int(search, "seed"), str(search["sampler"]), _int(search, "batch_size")
    storage = search.get("storage")
    out_dir = Path(cfg["out"]) if cfg.get("out") else default_out(
        cfg, fingerprint(sweep_record(_design(cfg), space, seed, sampler, batch_size, storage)))
    settings = SweepSettings(
        out_dir=out_dir, base=_design(cfg), space=space,
        n_trials=_int(search, "n_trials"), seed=seed, workers=_int(search, "workers"),
        sampler=sampler, batch_size=batch_size, storage=storage,
        ray_address=str(cfg["ray"]["address"]), progress=bool(cfg.get("progress", True)),
        retry_failed=_bool(search, "retry_failed"),
        provenance={"command": command, "composed_config": {**cfg, "command": "sweep"}},
    )
    check_writable(out_dir)
    with sweep_lock(out_dir):  # the whole sweep: search, designs, re-check and report
        summary = run_sweep(settings)
        write_design_details(settings)
        rechecked = len(recheck_pareto(settings)) if search.get("recheck") else None
        objectives = [(f"metric.{o.metric}", o.direction) for o in space.objectives]
        highlights = tuple(sweep_highlights(ResultStore(out_dir).read(), objectives))
        report = None
        if cfg.get("report", True):
            from elk_dse.results.report import build_report

            report = build_report([out_dir])
    return SweepOutcome(out_dir, summary, report, rechecked, highlights)


@dataclass(frozen=True, eq=False)
class Sweep:
    """A sweep folder read from its files: ``rows`` (one per trial, the Parquet schema of
    docs/results_format.md), ``meta`` (sweep.json), and, computed on demand, the Pareto ``front``, its ``knee``
    and the Optuna ``study``."""

    folder: Path
    rows: Any  # pandas.DataFrame
    meta: Mapping[str, Any]
    warnings: tuple[str, ...] = ()

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """(metric column, direction) per objective, from sweep.json (latency and area by default)."""
        objs = self.meta.get("objectives") or [{"name": "metric.latency_s", "direction": "minimize"},
                                               {"name": "metric.area_mm2", "direction": "minimize"}]
        return [(str(o["name"]), str(o.get("direction", "minimize"))) for o in objs]

    @property
    def front(self) -> Any:
        """Feasible, non-dominated rows under the sweep's objectives (a DataFrame)."""
        from elk_dse.results.pareto import pareto_front

        return pareto_front(self.rows, [{"name": c, "direction": d} for c, d in self.objectives])

    @property
    def knee(self) -> Any:
        """The knee row of the front (a pandas Series), or None when nothing is feasible."""
        from elk_dse.results.pareto import knee_point

        front = self.front
        if len(front) == 0:
            return None
        return front.loc[knee_point(front, [{"name": c, "direction": d} for c, d in self.objectives])]

    @property
    def study(self) -> Any:
        """The sweep's Optuna study (from its journal file, or the RDB storage recorded in sweep.json)."""
        import optuna
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        storage_url = (self.meta.get("fingerprint_record") or {}).get("search", {}).get("storage")
        journal = self.folder / "optuna.journal"
        if storage_url:
            storage: Any = storage_url
        elif journal.is_file():
            storage = JournalStorage(JournalFileBackend(str(journal)))
        else:
            raise StorageError(journal, "no Optuna journal in this sweep folder")
        return optuna.load_study(study_name="elk_dse", storage=storage)

    @property
    def report(self) -> Path | None:
        path = self.folder / "report" / "report.html"
        return path if path.is_file() else None


def load(folder: str | Path) -> Sweep:
    """Read a sweep folder (rows, provenance); ConfigError naming the folder or file when it is not one."""
    from elk_dse.results.report import load_sweep

    path = Path(folder)
    if not path.is_dir():
        raise ConfigError("folder", str(path), "not a sweep folder (no such directory)")
    data = load_sweep(path)
    return Sweep(path, data.df, data.meta, data.warnings)


def sweep(chip: str = "mesh64", model: str | None = None, scheduler: str | None = None, sim: str | None = None,
          *, space: str | Path = "default", out: str | Path | None = None, n_trials: int | None = None,
          workers: int | None = None, seed: int | None = None, sampler: str | None = None,
          batch_size: int | None = None, report: bool = True, progress: bool = False,
          overrides: Mapping[str, Any] | None = None, **keys: Any) -> Sweep:
    """Run (or resume) a sweep exactly as ``python -m elk_dse sweep`` does (designs/, report, the folder's
    configuration check and lock) and return it loaded. ``space``: a sweep name (sweeps/) or a YAML path;
    ``workers=0`` evaluates in this process (no Ray)."""
    extra: dict[str, Any] = {"sweep": str(space), "report": report, "progress": progress}
    if out is not None:
        extra["out"] = str(out)
    for key, value in (("n_trials", n_trials), ("workers", workers), ("seed", seed), ("sampler", sampler),
                       ("batch_size", batch_size)):
        if value is not None:
            extra[f"search.{key}"] = value
    cfg = compose(chip, model, scheduler, sim, overrides={**extra, **(overrides or {})}, **keys)
    outcome = run_configured_sweep(cfg, command=f"elk_dse.sweep(chip={chip!r}, ...)")
    return load(outcome.out_dir)
