"""Command line: ``python -m elk_dse <evaluate|sweep|report|validate> [key=value ...]``.

Hydra composes the config (groups chip, model, scheduler, sim from conf/; ``+chip=<name>`` or ``chip=<name>``
(or ``+chip=<file.yaml>``, a chip file of the user's)
picks a chip); this is the only module that sees DictConfig. Every user error is one line on stderr and exit
status 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from elk_dse import __version__
from elk_dse.errors import ConfigError, ElkError, StorageError, UnknownKeyError, nearest

COMMANDS = ("evaluate", "sweep", "report", "validate")
GROUPS = ("chip", "model", "scheduler", "sim", "stack")
EXIT_USAGE = 2
EXIT_IO = 74  # sysexits.h EX_IOERR: a sweep file cannot be written or read
EXIT_PIPE = 141  # 128 + SIGPIPE: the status a shell shows for a Unix tool whose reader left (`seq 9999 | head -1`)


def group_choices(group: str) -> list[str]:
    """Option names of a config group in conf/."""
    root = importlib.resources.files("elk_dse.conf") / group
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def help_text() -> str:
    from elk_dse.search.space import available_spaces

    lines = [
        f"elk_dse {__version__}: design-space exploration for inter-core connected AI chips",
        "",
        "usage: python -m elk_dse evaluate +chip=<chip> [model=<model>] [key=value ...] [format=json]",
        "       python -m elk_dse sweep +chip=<chip> [sweep=<space>] [search.n_trials=N] [out=<folder>] ...",
        "       python -m elk_dse report <sweep folder> [<sweep folder> ...]",
        "       python -m elk_dse validate [fit=true|false] [points=<id>,<id>] [workers=1] [out=docs/validation.md]",
        "",
        "config groups (choose with group=<option>; the chip with +chip=<option> or +chip=<your chip.yaml>;",
        "               stack: default the chip's):",
    ]
    lines += [f"  {g:<10} {', '.join(group_choices(g))}" for g in GROUPS]
    lines += [
        f"  {'sweep':<10} {', '.join(available_spaces())}  (or a path to a YAML search space)",
        "",
        "common keys: model.phase=decode|prefill|train model.batch= model.seq_len= model.kv_len= model.dtype=",
        "             search.n_trials= search.seed= search.workers= search.sampler=nsga2|tpe|random",
        "             ray.address=local|host:port  out=<sweep folder>  format=text|json  progress=false",
        "             sim=event trace=<file.json> (Perfetto trace)  search.recheck=event (re-check Pareto points)",
        "             chip.<key>=<value> overrides any chip field, e.g. chip.cores.sram_kib=2048",
        "             conventions=default|paper (the Elk artifact's modelling conventions, docs/elk_reconciliation.md)",
        "flags: --help, --cfg (print the composed config and exit), --debug (tracebacks)",
    ]
    return "\n".join(lines)


def _split_argv(argv: list[str]) -> tuple[str, list[str], list[str], set[str]]:
    flags = {a for a in argv if a.startswith("--")}
    words = [a for a in argv if not a.startswith("--")]
    command = "evaluate"
    if words and "=" not in words[0]:
        command = words.pop(0)
        if command not in COMMANDS:
            raise ConfigError("command", command, "one of " + ", ".join(COMMANDS) + nearest(command, COMMANDS))
    positional = [w for w in words if "=" not in w]
    overrides = [w for w in words if "=" in w]
    if positional and command != "report":
        raise ConfigError("argument", positional[0], "overrides look like key=value")
    # `chip=x` is friendlier than Hydra's `+chip=x` (chip is not in the defaults list): accept both.
    overrides = ["+" + o if o.startswith("chip=") else o for o in overrides]
    return command, positional, overrides, flags


def _check_choice(group: str, value: str) -> None:
    choices = group_choices(group)
    if value not in choices:
        hint = " or a chip file (+chip=path/to/chip.yaml)" if group == "chip" else ""
        raise ConfigError(group, value, "one of " + ", ".join(choices) + hint + nearest(value, choices))


# A chip described in a file of the user's (issue 17, ninth session, 17u): ``+chip=path/to/chip.yaml``. Hydra
# composes it as the option USER_CHIP of a config directory made for this one composition.
USER_CHIP = "user_chip_file"


def is_chip_file(value: str) -> bool:
    """Whether a ``chip=`` value names a file rather than a packaged chip: it ends in .yaml / .yml."""
    return value.endswith((".yaml", ".yml"))


def read_chip_file(value: str) -> dict[str, Any]:
    """The mapping in a user's chip file; one line naming ``chip`` and the file when it is missing, empty, not
    UTF-8, not YAML (or a YAML bomb, a duplicated key) or not a mapping."""
    from elk_dse.files import load_yaml, read_text

    text = read_text(Path(value), "chip")
    data = load_yaml(text, "chip", value)
    if not isinstance(data, dict) or not data:
        raise ConfigError("chip", value, "a chip file holds a YAML mapping of chip fields (name, cores, interconnect, "
                          "hbm, ...), e.g. a copy of conf/chip/mesh64.yaml")
    return data


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """Compose conf/config.yaml with the overrides into a plain dict; ConfigError (one line) when they are bad."""
    import yaml
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    overrides = _with_stack(overrides)
    group_ovr, key_ovr = [], []
    chip_file: dict[str, Any] | None = None
    for o in overrides:
        key, _, value = o.partition("=")
        bare = key.lstrip("+~")
        if not o.isprintable():
            raise ConfigError(bare, value, "printable text (no control characters)")
        if not o.isascii() and not value.startswith(("'", '"')):  # Hydra's lexer reads such text only quoted
            raise ConfigError(bare, value, f"text beyond ASCII must be quoted on the command line: {key}='{value}'")
        if bare == "chip" and is_chip_file(value):
            chip_file = read_chip_file(value)
            o = f"{key}={USER_CHIP}"
            overrides = [o if x.partition("=")[0].lstrip("+~") == "chip" else x for x in overrides]
            group_ovr.append(o)
        elif bare in GROUPS:
            _check_choice(bare, value)
            group_ovr.append(o)
        else:
            key_ovr.append((bare, o))
    tmp = None
    if chip_file is not None:  # a config directory holding only the user's chip, on Hydra's search path
        import tempfile

        tmp = tempfile.TemporaryDirectory(prefix="elk_dse_chip_")
        (Path(tmp.name) / "chip").mkdir()
        (Path(tmp.name) / "chip" / f"{USER_CHIP}.yaml").write_text(yaml.safe_dump(chip_file), encoding="utf-8")
        search = f"hydra.searchpath=[file://{tmp.name}]"
        group_ovr.append(search)
        overrides = [*overrides, search]
    try:
        with initialize_config_module(config_module="elk_dse.conf", version_base=None):
            base = compose(config_name="config", overrides=group_ovr)
            for bare, o in key_ovr:
                if o.startswith("~") or (o.startswith("+") and not _schema_key(bare)):
                    raise ConfigError(bare, o, "only groups and documented fields a config lacks may be added "
                                      "(+key=value); set existing keys as key=value")
                if o.startswith("+"):
                    if _has_key(base, bare):
                        raise ConfigError(bare, o, f"this config already has it; set it with {bare}=...")
                    continue
                if _schema_only_key(base, bare):  # e.g. chip.energy.*: in the schema, absent from the YAML
                    overrides = [("++" + x) if x == o else x for x in overrides]
                    continue
                _check_key(base, bare)
            # Nothing but groups: the second composition would repeat the first (Hydra composes from scratch).
            cfg = base if overrides == group_ovr else compose(config_name="config", overrides=overrides)
        out: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
        if isinstance(out.get("model"), dict) and "model" in base:
            from elk_dse.models.zoo import renamed_model  # model.name=X keeps the group file's arch otherwise

            explicit = [b.split(".", 2)[2] for b, _ in key_ovr if b.startswith("model.arch.") and b.count(".") >= 2]
            out["model"] = renamed_model(OmegaConf.to_container(base["model"], resolve=True),  # type: ignore[arg-type]
                                         out["model"], explicit)
        return out
    except (HydraException, OmegaConfBaseException) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError("overrides", " ".join(overrides), first) from None
    except yaml.YAMLError as err:  # a config file of conf/ (a chip, model, ...) that is not valid YAML
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{mark.name}, line {mark.line + 1}" if mark is not None else "a config file"
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError("config file", where, f"not valid YAML ({problem})") from None
    finally:
        if tmp is not None:
            tmp.cleanup()


_SCHEMA_ROOTS = {"chip": "elk_dse.hw.chip:Chip", "model": "elk_dse.models.config:ModelConfig",
                 "scheduler": "elk_dse.compiler.schedulers:SchedulerConfig", "sim": "elk_dse.sim:SimConfig",
                 "stack": "elk_dse.hw.stack:StackProfile"}


def _with_stack(overrides: list[str]) -> list[str]:
    """The software stack (issue 17, docs/stacks.md): ``stack=<name>`` is accepted without Hydra's ``+`` (it is
    not in the defaults list, like the chip); without one, the chosen chip's ``default_stack`` (its YAML, or a
    ``chip.default_stack=`` override), else ``none``, so the composed config always names the stack it runs."""
    import yaml

    # stack.name=<name> chooses the profile like stack=<name> (a field override would keep the chip's default
    # stack's values under another name).
    out = ["+stack=" + o.split("=", 1)[1] if o.startswith(("stack.name=", "+stack.name="))
           else "+" + o if o.startswith("stack=") else o for o in overrides]
    chosen = {o.split("=", 1)[1] for o in out if o.startswith("+stack=")}
    if len(chosen) > 1:
        raise ConfigError("stack", ", ".join(sorted(chosen)), "choose one stack (stack=<name> or stack.name=<name>)")
    if chosen:
        return list(dict.fromkeys(out))
    chip = next((o.split("=", 1)[1] for o in out if o.startswith("+chip=")), None)
    if chip is None or (chip not in group_choices("chip") and not is_chip_file(chip)):
        return out  # no chip (the command says so) or an unknown one (the group check says so)
    name = next((o.split("=", 1)[1] for o in out if o.startswith("chip.default_stack=")), None)
    if name is None and is_chip_file(chip):
        name = read_chip_file(chip).get("default_stack", "")
    if name is None:
        path = importlib.resources.files("elk_dse.conf") / "chip" / f"{chip}.yaml"
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            return out  # composing reports the broken file
        name = data.get("default_stack", "") if isinstance(data, dict) else ""
    name = str(name or "none")
    stacks = group_choices("stack")
    if name not in stacks:
        raise ConfigError("chip.default_stack", name, "one of " + ", ".join(stacks) + nearest(name, stacks))
    return [*out, f"+stack={name}"]


def _schema_key(dotted: str) -> bool:
    """Whether ``dotted`` names a field of the typed config (a chip, model, scheduler or sim field), whether or
    not the chosen config file spells it out (e.g. chip.chips.count on a single-chip config)."""
    import importlib

    from elk_dse.schema import schema_field_exists

    root, _, rest = dotted.partition(".")
    if root not in _SCHEMA_ROOTS or not rest:
        return False
    module, _, name = _SCHEMA_ROOTS[root].partition(":")
    return schema_field_exists(getattr(importlib.import_module(module), name), rest.split("."))


def _has_key(cfg: Any, dotted: str) -> bool:
    from omegaconf import DictConfig

    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node[part]
    return True


def _schema_only_key(cfg: Any, dotted: str) -> bool:
    """A chip or stack key the schema defines (issue 20: ``chip.energy.<action>``; a stack field such as
    ``stack.kv_head_sharding`` that the chosen stack's YAML leaves at its default) that the YAML omits."""
    from omegaconf import OmegaConf

    from elk_dse.hw.chip import Chip
    from elk_dse.hw.stack import StackProfile
    from elk_dse.schema import schema_has_key, schema_section

    parts = dotted.split(".")
    roots: dict[str, type] = {"chip": Chip, "stack": StackProfile}
    if parts[0] not in roots or len(parts) < 2 or not cfg.get(parts[0]) or OmegaConf.select(cfg, dotted) is not None:
        return False
    cls = roots[parts[0]]
    if schema_has_key(cls, parts[1:]):
        return True
    section = schema_section(cls, parts[1:-1])
    if section is not None and OmegaConf.select(cfg, ".".join(parts[:-1])) is None:
        raise UnknownKeyError(dotted, section)  # a typo inside a section the YAML leaves out
    return False


def _check_key(cfg: Any, dotted: str) -> None:
    from omegaconf import DictConfig

    node = cfg
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node:
            here = ".".join(parts[:i])
            valid = list(node.keys()) if isinstance(node, DictConfig) else []
            if i == 0 and part == "chip":
                raise ConfigError("chip", None, "choose a chip first with +chip=<name>: " + ", ".join(
                    group_choices("chip")))
            if _schema_key(dotted):
                raise ConfigError(dotted, None, f"this {parts[0]} config does not spell this field out; add it "
                                  f"with +{dotted}=<value>")
            raise UnknownKeyError(dotted if not here else f"{here}.{part}", [str(k) for k in valid])
        node = node[part]


def _require_chip(cfg: dict[str, Any]) -> None:
    if not cfg.get("chip"):
        raise ConfigError("chip", None, "no chip chosen; add +chip=<name>, one of: " + ", ".join(group_choices("chip")))


def _design(cfg: dict[str, Any]) -> dict[str, Any]:
    design = {"chip": cfg["chip"], "model": cfg["model"], "scheduler": cfg["scheduler"], "sim": cfg["sim"]}
    # issue 18: the modelling conventions; only when not the default, so default designs hash as before.
    if cfg.get("conventions", "default") != "default":
        design["conventions"] = cfg["conventions"]
    if cfg.get("stack") is not None:  # the software stack (hw/stack.py): part of the design and its fingerprint
        design["stack"] = cfg["stack"]
    return design


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def cmd_evaluate(cfg: dict[str, Any]) -> int:
    from elk_dse.evaluate import evaluate
    from elk_dse.search.trial import design_point

    _require_chip(cfg)
    if cfg.get("format") not in ("text", "json"):
        raise ConfigError("format", cfg.get("format"), "text or json")
    point = design_point(_design(cfg))
    trace = cfg.get("trace")
    if trace is not None:
        _check_trace_path(str(trace))
    result = evaluate(point, trace=trace)
    if cfg["format"] == "json":
        sys.stdout.write(json.dumps(_jsonable(result), allow_nan=False) + "\n")
    else:
        from elk_dse.results.summary import summary

        sys.stdout.write(summary(result) + "\n")
    if trace is not None:  # issue 19: say where the trace went (stderr: stdout stays the JSON contract)
        sys.stderr.write(f"trace: wrote {Path(str(trace)).resolve()} (open it in https://ui.perfetto.dev)\n")
    return 0


def _check_trace_path(trace: str) -> None:
    """ConfigError naming ``trace`` unless a JSON file can be written there (checked before simulating)."""
    path = Path(trace)
    if path.is_dir():
        raise ConfigError("trace", trace, "is a directory; give a file name, e.g. trace=trace.json")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ConfigError("trace", trace, f"{parent} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError("trace", trace, f"its folder cannot be created ({err.strerror})") from None
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError("trace", trace, "cannot be written here (permissions); choose another path")


def default_out(cfg: dict[str, Any], fingerprint: str) -> Path:
    """results/<chip>__<model>-<phase>__<sweep>-<fingerprint>: the same command resumes the same folder, and a
    changed override (anything but run-only keys such as search.n_trials) lands in a new one."""
    sweep = Path(str(cfg["sweep"])).stem
    model = cfg["model"]
    return Path("results") / (f"{cfg['chip'].get('name', 'chip')}__{model.get('name')}-{model.get('phase')}"
                              f"__{sweep}-{fingerprint}")


def cmd_sweep(cfg: dict[str, Any]) -> int:
    from elk_dse.api import run_configured_sweep

    outcome = run_configured_sweep(cfg, command="python -m elk_dse " + " ".join(sys.argv[1:]))
    summary = outcome.summary
    if outcome.rechecked is not None:
        print(f"re-checked {outcome.rechecked} Pareto designs with the event simulator (metric.event_latency_s)")
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(summary.counts.items()))
    rate = f", {summary.new_trials / summary.loop_s * 60:.0f} trials/min while searching" if summary.loop_s > 0 \
        and summary.new_trials else ""
    reused = f"; {summary.reused_trials} more sampled a design evaluated before and reused its row" \
        if summary.reused_trials else ""
    print(f"sweep: {summary.new_trials} new trials in {summary.duration_s:.1f} s{rate} ({counts}){reused}")
    print(f"results: {summary.results_path}")
    print(f"optuna storage: {summary.storage}")
    for line in outcome.highlights:
        print(line)
    if outcome.report is not None:
        print(f"report: {outcome.report}")
    return 0


def _bool(section: dict[str, Any], key: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"search.{key}", value, "true or false")
    return value


def _int(section: dict[str, Any], key: str) -> int:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"search.{key}", value, "expected an integer")
    return value


def cmd_report(folders: list[str]) -> int:
    from elk_dse.results.report import build_report

    if not folders:
        raise ConfigError("report", None, "give at least one sweep folder: python -m elk_dse report <folder>")
    for f in folders:
        # A sweep that has only just started may have sweep.json and no rows yet: it still gets a report.
        if not any((Path(f) / name).exists() for name in ("results.parquet", "sweep.json", "pending_rows.jsonl")):
            raise ConfigError("report", f, "not a sweep folder (it has no results.parquet/ nor sweep.json)")
    print(f"report: {build_report([Path(f) for f in folders])}")
    return 0


def cmd_validate(overrides: list[str]) -> int:
    """Predict the published measurements of docs/validation.md: fit each software stack's overheads on its
    calibration points (``fit=false``: use the stack profiles as shipped), print the table and write it to
    ``out``."""
    from elk_dse.validation import load_suite, markdown, run, write
    from elk_dse.validation.plot import error_chart

    opts = dict(o.split("=", 1) for o in overrides)
    for key in opts:
        if key not in ("fit", "points", "out", "workers"):
            raise ConfigError(key, opts[key],
                              "validate takes fit=true|false, points=<id>,<id>, workers=<n>, out=<file.md>")
    if opts.get("fit", "true") not in ("true", "false"):
        raise ConfigError("fit", opts["fit"], "true or false")
    workers_text = opts.get("workers", "1")
    if not workers_text.isdigit() or not 1 <= int(workers_text) <= 64:
        raise ConfigError("workers", workers_text, "an integer from 1 to 64 (processes for fits and points)")
    selected = [p for p in opts.get("points", "").split(",") if p]
    rows, cals = run(selected, calibrate=opts.get("fit", "true") == "true", workers=int(workers_text),
                     progress=lambda line: print(f"validate: {line}", file=sys.stderr, flush=True))
    out = Path(opts.get("out", "docs/validation.md"))
    figure = Path("img") / f"{out.stem}.png"  # beside the document, as docs/img/ holds the other pictures
    table = markdown(rows, load_suite()["sources"], cals, figure=figure.as_posix())
    print(table)
    print(f"written: {write(out, table)}, {error_chart(rows, out.parent / figure)}")
    return 0


def _run(argv: list[str]) -> int:
    """The command ``argv`` names; its exit status (exceptions are main's)."""
    if not argv or {"-h", "--help", "help"} & set(argv):
        print(help_text())
        return 0
    command, positional, overrides, flags = _split_argv(argv)
    unknown = flags - {"--cfg", "--debug", "--help"}
    if unknown:
        raise ConfigError("flag", sorted(unknown)[0], "one of --help, --cfg, --debug")
    if command == "report":
        return cmd_report(positional)
    if command == "validate":
        return cmd_validate(overrides)
    cfg = compose_config(overrides)
    if "--cfg" in flags:
        import yaml

        print(yaml.safe_dump(cfg, sort_keys=False))
        return 0
    return cmd_evaluate(cfg) if command == "evaluate" else cmd_sweep(cfg)


def _reader_gone() -> bool:
    """Whether the reader of stdout or stderr has left (a pipe whose read end is closed: ``| head``). Each such
    stream is pointed at os.devnull, so what is still written or buffered (the interpreter's last flush
    included) goes nowhere, quietly. False where it cannot be told (no poll(), a stream without a descriptor)."""
    import select

    gone = False
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            events = poller.poll(0)
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
            continue
        if any(ev & select.POLLERR for _, ev in events):  # Linux, BSD: a pipe without readers polls POLLERR
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
            gone = True
    return gone


def _say(line: str) -> None:
    """One line on stderr; nothing if its reader has left."""
    try:
        print(line, file=sys.stderr)
    except BrokenPipeError:
        _reader_gone()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 74 a file cannot be written or read,
    1 internal error, 130 interrupted, 141 the reader of stdout left: quietly, as a Unix tool under ``| head``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("ELK_DSE_DEBUG"))
    try:
        status = _run(argv)
        sys.stdout.flush()  # a reader that left shows here, not in the interpreter's last flush (a traceback)
        return status
    except BrokenPipeError as err:
        if _reader_gone():  # the reader's choice (`| head`), not a failure: no message (docs/reliability.md)
            return EXIT_PIPE
        return _io_error(err, debug)  # a pipe that is not ours (a subprocess, a socket): as any I/O error
    except StorageError as err:
        if debug:
            traceback.print_exc()
        _say(f"error: {err}")
        return EXIT_IO
    except ElkError as err:
        if debug:
            traceback.print_exc()
        _say(f"error: {err}")
        return EXIT_USAGE
    except OSError as err:  # the machine, not the input: a full disk, a read-only folder, a vanished file
        return _io_error(err, debug)
    except KeyboardInterrupt:
        _say("interrupted: finished trials are saved; rerun the same command to resume")
        return 130
    except Exception as err:  # a bug: say so in one line, keep the traceback behind --debug
        if debug:
            traceback.print_exc()
        _say(f"internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)")
        return 1


def _io_error(err: OSError, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    where = err.filename or "a file"
    _say(f"error: {where}: cannot write or read ({err.strerror or type(err).__name__}); free space or fix "
         "permissions, then rerun the same command (a sweep keeps its finished rows and resumes)")
    return EXIT_IO
