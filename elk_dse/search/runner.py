"""The sweep driver: Optuna ask/tell, trials evaluated on Ray workers, every finished row on disk at once.

Determinism: trials are asked in fixed-size batches (``batch_size``, one NSGA-II generation), evaluated in
parallel, and told in trial order when the whole batch is back; the sampler is re-seeded per batch from
(seed, batch index). So the same config and seed give the same rows whatever the worker count, and a resumed
sweep continues exactly as an uninterrupted one would. Nothing the sampler hears depends on timing: completion
order only changes when a row is logged, and a trial whose Ray task failed (beyond Ray's own retries of a dead
worker) is submitted again (``DRIVER_RESUBMITS``) before it may become a FAIL row (tests/test_sweep_determinism.py).

Fault tolerance: each result row is logged (``pending_rows.jsonl``, flushed) the moment it arrives, and the
batch's rows become one Parquet part before the study hears of them. A rerun of the same command first moves
logged rows into Parquet, re-evaluates the trials that were asked but never told (from their stored
parameters, skipping those whose rows exist), then continues to ``n_trials`` rows.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elk_dse import __version__
from elk_dse.errors import ConfigError, StorageError
from elk_dse.results.rowlog import RowLog
from elk_dse.results.store import DATASET_DIRNAME, ResultStore, make_schema
from elk_dse.search.folder import check_folder_config, fingerprint, sweep_lock, sweep_record
from elk_dse.search.space import SearchSpace, apply_params
from elk_dse.search.space import grid_points as space_grid_points
from elk_dse.search.trial import METRIC_PREFIX, check_design, config_hash, design_point, evaluate_trial

STUDY_NAME = "elk_dse"
SAMPLERS = ("nsga2", "tpe", "random", "grid")
MAX_SEED = 2**32 - 1
WORKER_RETRIES = 3  # Ray re-runs a trial whose worker process died this many times before it is a FAIL row
# Issue 17a: a trial whose Ray task still failed (worker died more often than WORKER_RETRIES, an object lost, a
# raylet hiccup) is submitted again by the driver this many times before it becomes a FAIL row. A FAIL row is
# told to the sampler as FAIL and so changes every later trial's parameters: a passing infrastructure failure
# must not change the sampled sequence (the same config and seed give the same rows).
DRIVER_RESUBMITS = 2


@dataclass(frozen=True)
class SweepSettings:
    """Everything a sweep needs, validated; ``base`` is the design {chip, model, scheduler, sim} as dicts."""

    out_dir: Path
    base: dict[str, Any]
    space: SearchSpace
    n_trials: int = 64
    seed: int = 0
    workers: int = 2
    sampler: str = "nsga2"
    batch_size: int = 16
    storage: str | None = None
    ray_address: str = "local"
    progress: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)
    retry_failed: bool = False  # on resume, evaluate FAIL rows again (same trial numbers)

    @property
    def journal(self) -> Path | None:
        """The Optuna journal file in the sweep folder, or None when ``storage`` names an RDB."""
        return None if self.storage else self.out_dir / "optuna.journal"

    @property
    def record(self) -> dict[str, Any]:
        """What decides this sweep's rows (elk_dse.search.folder): run-only settings excluded."""
        return sweep_record(self.base, self.space, self.seed, self.sampler, self.batch_size, self.storage)

    @property
    def storage_label(self) -> str:
        """Where the study lives, for messages: the storage URL or the journal path."""
        return self.storage or str(self.journal)

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ConfigError("search.n_trials", self.n_trials, "must be >= 1")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError("search.seed", self.seed, f"an integer in [0, {MAX_SEED}] (numpy's seed range)")
        if self.workers < 0:
            raise ConfigError("search.workers", self.workers, "must be >= 0 (0 = evaluate in-process, no Ray)")
        if self.batch_size < 1:
            raise ConfigError("search.batch_size", self.batch_size, "must be >= 1")
        if self.sampler not in SAMPLERS:
            raise ConfigError("search.sampler", self.sampler, "one of " + ", ".join(SAMPLERS))
        if self.sampler == "grid":
            ranged = [k for k, spec in self.space.params if spec.choices is None]
            if ranged:
                raise ConfigError(f"sweep.params.{ranged[0]}", "low/high", "the grid sampler needs choices: [...]")
        # Reject a space that does not fit the base design now, not in the middle of the sweep: every choice
        # (every end of a range), set alone on the base design (with the conditions it needs), must give a
        # valid design. A value that is only invalid in combination with others becomes an invalid_config row.
        design_point(self.base)
        for key, spec in self.space.params:
            context = {cond_key: allowed[0] for cond_key, allowed in spec.when}
            for probe in spec.choices if spec.choices is not None else (spec.low, spec.high):
                if spec.choices is None and spec.type == "int":
                    probe = int(probe)  # type: ignore[arg-type]
                try:
                    check_design(apply_params(self.base, {**context, key: probe}))
                except ConfigError as err:
                    if err.field.startswith("params."):
                        raise
                    raise ConfigError(f"sweep.params.{key}", probe, f"makes the base design invalid: {err}"
                                      ) from None


@dataclass(frozen=True)
class SweepSummary:
    """Where a sweep's outputs landed and how its trials ended."""

    out_dir: Path
    results_path: Path
    storage: str
    counts: dict[str, int]
    new_trials: int
    duration_s: float
    loop_s: float  # seconds in the ask / evaluate / tell loop: the sweep less start-up and compaction
    reused_trials: int = 0  # trials whose design was evaluated before in this sweep: its row, not a new run


def grid_size(space: SearchSpace) -> int:
    """Number of distinct points of a grid over the space's choices (conditional parameters respected)."""
    return len(space_grid_points(space))


def check_writable(out_dir: Path) -> None:
    """ConfigError naming ``out`` unless the sweep folder can be created and written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise ConfigError("out", str(out_dir), f"the sweep folder must be writable ({err.strerror})") from None


def _make_sampler(settings: SweepSettings, batch_index: int):
    import optuna

    seed = (settings.seed * 1_000_003 + batch_index) % (MAX_SEED + 1)  # unchanged below seed 4,294
    if settings.sampler == "grid":  # points come from grid_points via enqueue_trial; nothing left to sample
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(settings.batch_size, 2), seed=seed)
    if settings.sampler == "tpe":
        if batch_index == 0 and not any(spec.when for _, spec in settings.space.params):  # QMC needs a fixed space
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            # TPE's start-up batch is sampled independently anyway; a scrambled Sobol batch covers the space
            # more evenly than random points (0.962 -> 0.974 mean hypervolume at 10% of the grid, 16 seeds).
            return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=settings.seed,
                                              independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                                              warn_independent_sampling=False, warn_asynchronous_seeding=False)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=settings.batch_size)
    return optuna.samplers.RandomSampler(seed=seed)


def grid_points(settings: SweepSettings) -> list[dict[str, Any]]:
    """Every point of the grid over the space's choices, in a seeded shuffled order (so that a partial grid
    still spreads over the space)."""
    import random

    points = space_grid_points(settings.space)
    random.Random(settings.seed).shuffle(points)
    return points


def drop_stale_journal_lock(journal: Path) -> bool:
    """Remove ``<journal>.lock`` (Optuna's symlink lock) if it exists; True if it did. Call only under the folder's
    ``sweep_lock``: only the sweep holding it writes the journal, so a lock found then was left by a driver killed
    while appending; Optuna would wait out its 30 s grace period before breaking it, on every resume after a
    kill (ninth session)."""
    lock = journal.with_name(journal.name + ".lock")
    if not os.path.lexists(lock):
        return False
    with contextlib.suppress(FileNotFoundError):
        lock.unlink()
    return True


def open_study(settings: SweepSettings):
    """Create or load the sweep's Optuna study (journal file in the sweep folder unless a URL is given)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if settings.storage:
        storage: Any = settings.storage
    else:
        journal = settings.journal
        if journal is None:
            raise RuntimeError("sweep settings name neither a storage nor a journal file")
        cut = repair_journal_tail(journal)
        if cut:
            print(f"warning: {journal}: dropped a partial last record ({cut} bytes, kept in {journal.name}.torn) "
                  "left by an interrupted write", file=sys.stderr)
        rolled_back = roll_back_interrupted_ask(settings.out_dir, journal)
        if rolled_back:
            print(f"note: {journal}: rolled back a batch whose asking was interrupted ({rolled_back} bytes); it is "
                  "asked again exactly as before", file=sys.stderr)
        if drop_stale_journal_lock(journal):
            print(f"note: {journal}: removed the journal lock a killed sweep left behind", file=sys.stderr)
        storage = JournalStorage(JournalFileBackend(str(journal)))
    directions = [o.direction for o in settings.space.objectives]
    try:
        study = optuna.create_study(storage=storage, study_name=STUDY_NAME, directions=directions,
                                    load_if_exists=True, sampler=_make_sampler(settings, 0))
    except Exception as err:  # bad URL, unreachable server, corrupt journal: one line, the field named
        raise ConfigError("search.storage", settings.storage_label,
                          f"cannot open the Optuna storage ({type(err).__name__}: {str(err).splitlines()[0]})"
                          ) from None
    names = [o.metric for o in settings.space.objectives]
    if study.metric_names is None:  # optuna-dashboard shows these instead of "Objective 0"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError("sweep", settings.space.name, "this sweep folder holds a study with other objectives; "
                          "choose another out= folder")
    return study


ASK_CHECKPOINT = "ask_checkpoint.json"


def _write_ask_checkpoint(out_dir: Path, journal_bytes: int, complete: bool) -> None:
    path = out_dir / ASK_CHECKPOINT
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps({"journal_bytes": journal_bytes, "complete": complete}))
    os.replace(tmp, path)


def roll_back_interrupted_ask(out_dir: Path, journal: Path) -> int:
    """Undo a batch whose asking a kill interrupted: cut the journal back to where the batch began.

    Asking a batch (create trials, sample their parameters) writes many journal records; a kill in between
    leaves some trials without all their parameters, which can neither be evaluated faithfully nor asked again
    the same way. The driver records the journal size before asking and marks the checkpoint complete
    after, before any evaluation starts, so the records cut here never have a result. The rerun then asks
    the batch again with the same seed and storage state: the same trials. Returns the bytes cut (kept in
    ``<journal>.rolled_back``)."""
    path = out_dir / ASK_CHECKPOINT
    if not path.exists() or not journal.exists():
        return 0
    try:
        checkpoint = json.loads(path.read_text())
        keep, complete = int(checkpoint["journal_bytes"]), bool(checkpoint["complete"])
    except (ValueError, KeyError, TypeError):
        return 0  # a checkpoint cut short by a kill was written before any ask of its batch: nothing to undo
    size = journal.stat().st_size
    if complete or size <= keep:
        return 0
    _cut_keeping_tail(journal, keep, ".rolled_back")
    _write_ask_checkpoint(out_dir, keep, complete=True)
    return size - keep


def _schema(space: SearchSpace):
    from elk_dse.evaluate import METRICS

    return make_schema({k: spec.value_type for k, spec in space.params}, list(METRICS))


class _Evaluator:
    """Runs trial evaluations in-process (workers=0) or as Ray tasks, keeping ``workers`` in flight."""

    def __init__(self, settings: SweepSettings):
        self.settings = settings
        self.ray = None
        if settings.workers > 0:
            self.ray = _init_ray(settings)
            # A worker process that dies (OOM killer, a node lost) is retried by Ray; an exception inside the
            # evaluation never reaches Ray (evaluate_trial turns it into a row), so only crashes are retried.
            self._remote = self.ray.remote(num_cpus=1, max_retries=WORKER_RETRIES)(evaluate_trial)
            self._base_ref = self.ray.put(settings.base)
            # Where Ray cannot run more than ``workers`` trials at once (a local Ray started with that many
            # CPUs), keep twice as many in flight: a worker finishing a trial finds the next one queued instead
            # of idling while the driver logs the row and submits another. On a larger cluster ``workers``
            # caps concurrency.
            depth = 2 if self.ray.cluster_resources().get("CPU", 0) <= settings.workers else 1
            self._in_flight_limit = depth * settings.workers

    def run(self, jobs: list[tuple[int, dict[str, Any]]], on_row: Callable[[dict[str, Any]], None]) -> None:
        seed = self.settings.seed
        if self.ray is None:
            for number, params in jobs:
                on_row(evaluate_trial(self.settings.base, params, number, seed, self.settings.space.constraints))
            return
        ray = self.ray
        queue = collections.deque(jobs)
        in_flight: dict[Any, tuple[int, dict[str, Any]]] = {}
        failures: dict[int, int] = {}  # trial -> Ray failures so far
        while queue or in_flight:
            while queue and len(in_flight) < self._in_flight_limit:
                number, params = queue.popleft()
                in_flight[self._remote.remote(self._base_ref, params, number, seed,
                                              self.settings.space.constraints)] = (number, params)
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                number, params = in_flight.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as err:  # the task failed in Ray (evaluate_trial itself never raises)
                    failures[number] = failures.get(number, 0) + 1
                    if failures[number] <= DRIVER_RESUBMITS:  # again, at the end of the queue
                        queue.append((number, params))
                        continue
                    row = _failed_row(number, params, seed, f"worker failure: {type(err).__name__}: "
                                      f"{str(err).splitlines()[0] if str(err) else ''}")
                on_row(row)


def _failed_row(number: int, params: dict[str, Any], seed: int, error: str) -> dict[str, Any]:
    from elk_dse.search.trial import PARAM_PREFIX

    row = {"trial": number, "status": "FAIL", "feasible": False, "infeasible_reason": "", "error": error[:2000],
           "seed": seed, "config_hash": "", "package_version": __version__, "duration_s": float("nan")}
    row.update({PARAM_PREFIX + k: v for k, v in params.items()})
    return row


def _init_ray(settings: SweepSettings):
    import ray

    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    address = settings.ray_address
    if address == "local" and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": logging.ERROR, "configure_logging": True}
    try:
        if address == "local":
            ray.init(address="local", num_cpus=settings.workers, **kwargs)
            _start_reaper(ray)
        else:
            _probe_address(address)
            ray.init(address=address, **kwargs)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError("ray.address", address, f"cannot start or reach Ray ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''})") from None
    return ray


PROBE_TIMEOUT_S = 10.0  # connecting to a cluster's GCS port; Ray itself retries for minutes
REFUSED_RETRY_S = 2.0  # how long "connection refused" is retried (a head node still starting)


def _probe_address(address: str) -> None:
    """ConfigError within PROBE_TIMEOUT_S unless something accepts TCP connections at ``host:port`` (Ray's own
    connection attempts retry for minutes against an address nobody listens on). ``auto`` is left to Ray."""
    import socket

    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep:
        return
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("ray.address", address, "host:port (e.g. 10.0.0.5:6379), ray://host:port, auto or local")
    start = time.monotonic()
    last = ""
    while True:
        left = PROBE_TIMEOUT_S - (time.monotonic() - start)
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=max(left, 0.1)):
                return
        except ConnectionRefusedError:
            last = "connection refused"  # definite, but a head that is just starting may refuse for a moment
            if time.monotonic() - start > REFUSED_RETRY_S:
                break
        except OSError as err:
            last = err.strerror or type(err).__name__
        if time.monotonic() - start >= PROBE_TIMEOUT_S:
            break
        time.sleep(0.25)
    raise ConfigError("ray.address", address, f"no Ray cluster answers there ({last}, tried for "
                      f"{time.monotonic() - start:.0f} s); start one with `ray start --head`, or use ray.address=local")


_REAPER: list[Any] = []  # the watchdog's Popen: its pipe must stay open as long as this driver lives


def _start_reaper(ray: Any) -> None:
    """Make the local Ray cluster die with this driver (elk_dse/search/reaper.py)."""
    from elk_dse.search import reaper

    try:
        node = ray._private.worker._global_node
        roots = [info.process.pid for infos in node.all_processes.values() for info in infos]
    except AttributeError:  # another Ray version's internals: Ray's own (slower) clean-up remains
        return
    proc = reaper.start(roots)
    if proc is not None:
        _REAPER.append(proc)


def _tell(study, number: int, row: dict[str, Any], space: SearchSpace) -> None:
    import optuna
    from optuna.trial import TrialState

    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    trial = optuna.trial.Trial(study, trial_id)
    trial.set_user_attr("status", row["status"])
    if row.get("infeasible_reason"):
        trial.set_user_attr("infeasible_reason", row["infeasible_reason"])
    if space.constraints and row["status"] == "COMPLETE":
        # Optuna 5: constraints go with the trial (<= 0 is feasible); samplers read them.
        for c in space.constraints:
            trial.set_constraint(c.metric, c.violation(float(row[METRIC_PREFIX + c.metric])))
    if row["status"] == "COMPLETE":
        values = [float(row[METRIC_PREFIX + o.metric]) for o in space.objectives]
        study.tell(number, values, skip_if_finished=True)
    else:
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)


def has_results(out_dir: Path) -> bool:
    """Whether a sweep folder already holds anything of a sweep: Parquet parts, logged rows or a journal."""
    dataset = out_dir / DATASET_DIRNAME
    if dataset.exists() and (not dataset.is_dir() or any(dataset.iterdir())):
        return True
    return any((out_dir / name).is_file() and (out_dir / name).stat().st_size > 0
               for name in ("pending_rows.jsonl", "optuna.journal"))


def run_sweep(settings: SweepSettings) -> SweepSummary:
    """Run (or resume) the sweep to ``n_trials`` finished rows; returns where everything landed.

    The folder is locked for the run, and refused (ConfigError naming the differing keys) if it holds a sweep
    of another configuration."""
    check_writable(settings.out_dir)
    if settings.workers > 0 and settings.ray_address not in ("local", "auto"):
        _probe_address(settings.ray_address)  # before the study is opened: a typo fails in seconds
    with sweep_lock(settings.out_dir):
        check_folder_config(settings.out_dir, settings.record, has_results(settings.out_dir))
        return _run_sweep(settings)


def _run_sweep(settings: SweepSettings) -> SweepSummary:
    from optuna.trial import TrialState
    from tqdm import tqdm

    t0 = time.perf_counter()
    store = ResultStore(settings.out_dir / DATASET_DIRNAME, _schema(settings.space))
    row_log = RowLog(settings.out_dir)
    recovered = row_log.rows()
    if recovered:  # rows finished by a driver that was killed mid-batch: into Parquet before anything else
        _write_batch(store, row_log, list({r["trial"]: r for r in recovered}.values()))
    study = open_study(settings)
    _write_provenance(settings, started=True)
    finished = store.trials()
    target = min(settings.n_trials, grid_size(settings.space)) if settings.sampler == "grid" else settings.n_trials
    new_trials = 0
    bar = tqdm(total=target, initial=min(len(finished), target), unit="trial",
               desc="sweep", disable=not settings.progress, file=sys.stderr, dynamic_ncols=True)
    evaluator: _Evaluator | None = None
    journal = settings.journal
    grid = grid_points(settings) if settings.sampler == "grid" else None

    def log_row(row: dict[str, Any]) -> None:
        try:
            row_log.append(row)
        except OSError as err:
            raise StorageError(row_log.path, f"cannot write ({err.strerror or err})",
                               "the rows of this batch were not saved and will be evaluated again; "
                               "free space and rerun the same command to resume") from None
        finished.add(row["trial"])

    def get_evaluator() -> _Evaluator:  # one per sweep: Ray is started only if something is evaluated
        nonlocal evaluator
        evaluator = evaluator or _Evaluator(settings)
        return evaluator

    stored_rows = store.read()
    if settings.retry_failed:
        retried = _retry_failed(stored_rows, store, row_log, get_evaluator, log_row)
        new_trials += retried
        stored_rows = store.read() if retried else stored_rows
    known = _KnownDesigns(stored_rows)
    first_of: dict[str, int] = {}
    twins: list[tuple[int, dict[str, Any], str]] = []
    reused = 0
    loop_start = time.perf_counter()
    try:
        while True:
            # Asked but never told: an interrupted batch. Finish it from the stored parameters first.
            pending = sorted(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)), key=lambda t: t.number)
            if not pending:
                remaining = target - len(finished)
                if remaining <= 0:
                    break
                # get_trials(deepcopy=False), never study.trials: that deep-copies every trial, and at 10,000
                # trials it was half of the driver's time (py-spy on the soak).
                n_asked = len(study.get_trials(deepcopy=False))
                study.sampler = _make_sampler(settings, n_asked // settings.batch_size)
                if journal is not None:
                    _write_ask_checkpoint(settings.out_dir, journal.stat().st_size if journal.exists() else 0,
                                          complete=False)
                asked: list[int] = []
                for _ in range(min(settings.batch_size, remaining)):
                    if grid is not None:  # the next grid point, by trial number: no duplicates, resumable
                        study.enqueue_trial(settings.space.encode(grid[(n_asked + len(asked)) % len(grid)]))
                    trial = study.ask()
                    values = settings.space.suggest(trial)
                    for key, spec in settings.space.params:  # a rank's hardware value, for optuna-dashboard
                        if key in values and spec.ordered:
                            trial.set_user_attr(key, values[key])
                    asked.append(trial.number)
                if journal is not None:
                    _write_ask_checkpoint(settings.out_dir, journal.stat().st_size, complete=True)
                pending = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                           if t.number in asked]
            rows: dict[int, dict[str, Any]] = {}
            jobs = []
            for t in pending:
                params = settings.space.decode(t.params)
                if t.number in finished:
                    continue
                if settings.space.missing(params):  # killed while asking (RDB storage: no roll-back)
                    rows[t.number] = _failed_row(t.number, params, settings.seed, "the driver was interrupted "
                                                 "while this trial's parameters were asked; not evaluated")
                    log_row(rows[t.number])
                    continue
                design_key = _design_key(settings.base, params)
                if design_key is not None and design_key in known:  # evaluated before in this sweep: the same row again
                    rows[t.number] = known.reuse(design_key, t.number, params)
                    log_row(rows[t.number])
                    bar.update(1)
                    reused += 1
                elif design_key is not None and design_key in first_of:  # a twin in this batch: copy it once it is back
                    twins.append((t.number, params, design_key))
                else:
                    if design_key is not None:
                        first_of[design_key] = t.number
                    jobs.append((t.number, params))

            def on_row(row: dict[str, Any], rows: dict[int, dict[str, Any]] = rows) -> None:
                log_row(row)
                rows[row["trial"]] = row
                known.add(row)
                bar.update(1)

            if jobs:
                get_evaluator().run(jobs, on_row)
                new_trials += len(jobs)
            for number, params, key in twins:
                if key in known:
                    rows[number] = known.reuse(key, number, params)
                    reused += 1
                else:  # its twin failed (a worker died): evaluate this one itself
                    get_evaluator().run([(number, params)], on_row)
                    new_trials += 1
                    continue
                log_row(rows[number])
                bar.update(1)
            twins.clear()
            first_of.clear()
            if rows:
                _write_batch(store, row_log, [rows[n] for n in sorted(rows)])
            stored = None
            for t in pending:
                row = rows.get(t.number)
                if row is None:  # evaluated before an interruption: its row is on disk
                    stored = store.read() if stored is None else stored
                    row = stored[stored["trial"] == t.number].iloc[0].to_dict()
                _tell(study, t.number, row, settings.space)
    finally:
        bar.close()
        row_log.close()
    loop_s = time.perf_counter() - loop_start
    store.compact()
    counts = store.read()["status"].value_counts().to_dict()
    duration = time.perf_counter() - t0
    _write_provenance(settings, started=False, duration_s=duration, loop_s=loop_s, new_trials=new_trials,
                      reused_trials=reused, counts=counts)
    return SweepSummary(settings.out_dir, settings.out_dir / DATASET_DIRNAME,
                        settings.storage_label,
                        {str(k): int(v) for k, v in counts.items()}, new_trials, duration, loop_s, reused)


def _retry_failed(df: Any, store: ResultStore, row_log: RowLog, get_evaluator: Callable[[], _Evaluator],
                  log_row: Callable[[dict[str, Any]], None]) -> int:
    """search.retry_failed: evaluate the FAIL rows of ``df`` (the stored rows) again under their own trial
    numbers; the new rows replace them in Parquet (the newest row of a trial wins). The Optuna study keeps those
    trials as FAIL (a finished trial cannot be told twice), so samplers simply never learned from them.
    Returns the trials re-run."""
    from elk_dse.search.trial import params_of_row

    failed = df[df["status"] == "FAIL"]
    if failed.empty:
        return 0
    jobs = [(int(row["trial"]), params_of_row(row)) for _, row in failed.iterrows()]
    rows: list[dict[str, Any]] = []

    def on_row(row: dict[str, Any]) -> None:
        log_row(row)
        rows.append(row)

    get_evaluator().run(jobs, on_row)
    _write_batch(store, row_log, sorted(rows, key=lambda r: r["trial"]))
    return len(jobs)


def _design_key(base: dict[str, Any], params: dict[str, Any]) -> str | None:
    """config_hash of the design a trial evaluates (None if the parameters do not even apply: that trial is
    evaluated, and becomes an invalid_config row)."""
    try:
        return config_hash(apply_params(base, params))
    except ConfigError:
        return None


class _KnownDesigns:
    """Rows of the designs this sweep has evaluated, by config_hash: a trial that samples a design again gets
    that row (with its own trial number and parameters, ``duration_s`` 0) instead of a second evaluation.
    FAIL rows are not reused (a worker failure may not repeat). Rows are kept as value tuples (~1 KiB)."""

    def __init__(self, df: Any):
        self._columns: tuple[str, ...] = tuple(df.columns)
        self._rows: dict[str, tuple[Any, ...]] = {}
        if len(df):
            ok = df[(df["status"] != "FAIL") & (df["config_hash"] != "")]
            for values in ok.itertuples(index=False, name=None):
                self._rows.setdefault(values[self._columns.index("config_hash")], values)

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def add(self, row: dict[str, Any]) -> None:
        key = row.get("config_hash") or ""
        if row.get("status") == "FAIL" or not key or key in self._rows:
            return
        if not self._columns:
            self._columns = tuple(row)
        self._rows[key] = tuple(row.get(c) for c in self._columns)

    def reuse(self, key: str, number: int, params: dict[str, Any]) -> dict[str, Any]:
        import math as _math

        from elk_dse.search.trial import PARAM_PREFIX

        row = {c: v for c, v in zip(self._columns, self._rows[key], strict=True)
               if not c.startswith(PARAM_PREFIX) and not (isinstance(v, float) and _math.isnan(v)
                                                          and not c.startswith(METRIC_PREFIX))}
        row.update({PARAM_PREFIX + k: v for k, v in params.items()})
        row.update(trial=number, duration_s=0.0)
        return row


def _write_batch(store: ResultStore, row_log: RowLog, rows: list[dict[str, Any]]) -> None:
    """One Parquet part for the batch's rows, then forget the row log (only once the part is safely there)."""
    try:
        store.append(rows)
    except OSError as err:
        row_log.close()
        raise StorageError(store.path, f"cannot write a Parquet part ({err.strerror or err})",
                           f"the batch's finished rows are kept in {row_log.path.name}; free space and rerun the "
                           "same command to resume") from None
    row_log.clear()


def repair_journal_tail(path: Path) -> int:
    """Cut a partial last record (a write interrupted by a kill or a full disk) off an Optuna journal file,
    keeping the cut bytes in ``<journal>.torn`` for inspection; returns the number of bytes cut.
    A corrupt record before the last one is a StorageError naming the file and line."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1]
    for number, line in enumerate(lines, 1):
        try:
            json.loads(line)
        except ValueError:
            raise StorageError(path, f"line {number} of {len(lines)} is not a journal record",
                               "the results in results.parquet are intact; move the journal away to start a new "
                               "study") from None
    if end == len(data):
        return 0
    _cut_keeping_tail(path, end, ".torn")
    return len(data) - end


def _cut_keeping_tail(path: Path, keep: int, suffix: str) -> None:
    """Truncate ``path`` to its first ``keep`` bytes (fsynced); the bytes cut go to ``<path><suffix>``."""
    with open(path, "r+b") as fh:
        fh.seek(keep)
        path.with_name(path.name + suffix).write_bytes(fh.read())
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())


def _write_provenance(settings: SweepSettings, started: bool, **extra: Any) -> None:
    path = settings.out_dir / "sweep.json"
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {}
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data.update(settings.provenance)
    data.update({
        "package_version": __version__, "seed": settings.seed, "sweep": settings.space.name,
        "sweep_description": settings.space.description, "n_trials": settings.n_trials,
        "sampler": settings.sampler, "batch_size": settings.batch_size, "workers": settings.workers,
        "objectives": [{"name": METRIC_PREFIX + o.metric, "direction": o.direction}
                       for o in settings.space.objectives],
        "params": [k for k, _ in settings.space.params],
        "chip": settings.base["chip"].get("name", ""), "model": settings.base["model"].get("name", ""),
        "stack": (settings.base.get("stack") or {}).get("name", ""),  # issue 17: the software stack
        "fingerprint": fingerprint(settings.record), "fingerprint_record": settings.record,
    })
    if started:
        data.setdefault("started_at", now)
        from elk_dse.results.provenance import environment

        data["environment"] = environment()  # git commit, package versions, host: shown in the report
    else:
        data["finished_at"] = now
        data.update(extra)
    tmp = path.with_name(".sweep.json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
