"""A sweep folder belongs to one configuration, and to one running sweep at a time.

**Fingerprint.** Everything that decides which rows a sweep writes is fingerprinted: the base design (chip,
model, scheduler, simulator), the search space's content (parameters, objectives, constraints), the seed, the
sampler, the batch size and the storage. Run-only keys (``search.n_trials``, ``search.workers``, ``progress``,
``report``, ``ray.address``, ``format``) are not: raising ``n_trials`` extends the same sweep, and a different
worker count gives the same rows. ``sweep.json`` records the fingerprint and the fingerprinted record; a rerun
into a folder of another fingerprint is refused with one line naming the differing keys, so rows of two
configurations never share a folder. The default folder name carries the fingerprint, so "change an override,
rerun" lands in a new folder by itself.

**Lock.** ``sweep_lock`` holds an exclusive OS lock (``fcntl.flock``) on ``<folder>/.lock`` for the whole sweep
(search, designs, re-check, report). The OS releases it when the process dies, so a killed sweep never leaves
a stale lock; a second sweep into the same folder meanwhile exits at once with one line naming the holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from elk_dse.errors import ConfigError

FINGERPRINT_LEN = 10  # hex digits kept of the SHA-256 (40 bits: a collision needs ~10^6 folders side by side)
LOCK_NAME = ".lock"
_held: dict[Path, int] = {}  # folder -> depth of nested sweep_lock calls in this process


def canonical(obj: Any) -> Any:
    """A JSON-able copy with tuples as lists and dataclasses as dicts (the form the fingerprint hashes)."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): canonical(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


FILE_KEYS = ("path", "graph")  # design keys naming input files (model.path: ONNX / config.json; a graph file)


def input_files(design: Any, prefix: str = "") -> dict[str, str]:
    """{dotted key: SHA-256 of the file's bytes} for the input files a design names: a sweep over a model file
    that changed since is another configuration, although its path is the same."""
    out: dict[str, str] = {}
    if isinstance(design, dict):
        for key, value in design.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if key in FILE_KEYS and isinstance(value, str) and value:
                path = Path(value)
                if path.is_file():
                    digest = hashlib.sha256()
                    with open(path, "rb") as fh:
                        for block in iter(lambda: fh.read(1 << 20), b""):
                            digest.update(block)
                    out[dotted] = digest.hexdigest()
            else:
                out.update(input_files(value, dotted))
    return out


def sweep_record(base: dict[str, Any], space: Any, seed: int, sampler: str, batch_size: int,
                 storage: str | None) -> dict[str, Any]:
    """What decides a sweep's rows (see the module docstring); the space by content, not by name; input files
    (model.path, a graph file) by content as well as by path."""
    return {"design": canonical(base), "files": input_files(base),
            "space": {"params": {k: canonical(spec) for k, spec in space.params},
                      "param_order": [k for k, _ in space.params], "objectives": canonical(space.objectives),
                      "constraints": canonical(space.constraints)},
            "search": {"seed": seed, "sampler": sampler, "batch_size": batch_size, "storage": storage}}


def fingerprint(record: dict[str, Any]) -> str:
    """Short SHA-256 of the record's canonical JSON (sorted keys): equal configurations, equal fingerprints."""
    text = json.dumps(canonical(record), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_LEN]


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: leaf value} of nested dicts (lists are leaves)."""
    if isinstance(obj, dict) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 4) -> str:
    """'model.batch: 1 -> 64, search.seed: 0 -> 3' for the keys whose values differ (first ``limit``)."""
    a, b = flatten(canonical(old)), flatten(canonical(new))
    # a changed chip or model name says more than the dozen fields that change with it: names first
    keys = sorted((k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>")),
                  key=lambda k: (not k.endswith(".name"), k))
    parts = [f"{k}: {_short(a.get(k, '<absent>'))} -> {_short(b.get(k, '<absent>'))}" for k in keys[:limit]]
    if len(keys) > limit:
        parts.append(f"and {len(keys) - limit} more")
    return ", ".join(parts) if parts else "the fingerprints differ"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def check_folder_config(out_dir: Path, record: dict[str, Any], has_rows: bool) -> None:
    """ConfigError (one line, naming the differing keys) when ``out_dir`` holds a sweep of another
    configuration; silent for a new folder or a rerun of the same configuration."""
    path = out_dir / "sweep.json"
    stored: dict[str, Any] | None = None
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            if has_rows:
                raise ConfigError("out", str(out_dir), "its sweep.json is unreadable, so the configuration of its "
                                  "rows cannot be checked; choose another out= folder")
            return
        stored = data.get("fingerprint_record")
        if stored is None and has_rows:
            raise ConfigError("out", str(out_dir), "holds rows of a sweep written before configurations were "
                              "fingerprinted; its configuration cannot be checked, choose another out= folder")
    elif has_rows:
        raise ConfigError("out", str(out_dir), "holds results but no sweep.json, so the configuration of its rows "
                          "cannot be checked; choose another out= folder")
    if stored is not None and fingerprint(stored) != fingerprint(record):
        raise ConfigError("out", str(out_dir), "holds a sweep of another configuration ("
                          + differences(stored, record) + "); choose another out= folder, or leave out= unset "
                          "for a folder named after the configuration")


@contextlib.contextmanager
def sweep_lock(out_dir: Path) -> Iterator[None]:
    """Hold the folder's exclusive lock (re-entrant within a process); ConfigError at once if another process
    holds it. The lock file keeps the holder's pid for the message."""
    import fcntl

    key = out_dir.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise ConfigError("out", str(out_dir), f"another sweep (pid {holder}) is running in this folder; wait "
                              "for it to end or choose another out= folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
