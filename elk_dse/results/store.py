"""Append-only Parquet storage of trial results: one file per batch, one explicit schema.

Layout (the data contract shared with the search driver and the report)::

    <sweep>/results.parquet/part-<first trial>-<last trial>.parquet   one file per ``append`` call

Why one explicit schema: a Parquet directory dataset silently takes the first file's schema, so a column
that appears later is dropped and a float column whose first batch held only integers comes back as int64.
Every part is therefore written with exactly the schema given to :class:`ResultStore`.

Why a dot-prefixed temporary name: ``pd.read_parquet(dir)`` fails on any file that is not Parquet unless
its name starts with ``.`` or ``_``, so a half-written part must never carry its final name. Parts are
written to ``.part-...tmp``, fsynced and renamed with ``os.replace`` (atomic on POSIX), and the directory
is fsynced so the rename survives a power cut.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PARAM_PREFIX = "param."
METRIC_PREFIX = "metric."
DATASET_DIRNAME = "results.parquet"

#: Meta columns of every results table, in column order, with their Arrow types.
META_FIELDS: tuple[pa.Field, ...] = (
    pa.field("trial", pa.int64(), nullable=False),
    pa.field("status", pa.string()),  # COMPLETE | INFEASIBLE | FAIL
    pa.field("feasible", pa.bool_()),
    pa.field("infeasible_reason", pa.string()),  # "" when feasible
    pa.field("error", pa.string()),
    pa.field("seed", pa.int64()),
    pa.field("config_hash", pa.string()),
    pa.field("package_version", pa.string()),
    pa.field("duration_s", pa.float64()),  # wall time of the evaluation, seconds
)
META_COLUMNS: tuple[str, ...] = tuple(f.name for f in META_FIELDS)

STATUSES: tuple[str, ...] = ("COMPLETE", "INFEASIBLE", "FAIL")

#: Metrics every sweep carries (NaN when not available); ``make_schema`` always includes them.
REQUIRED_METRICS: tuple[str, ...] = (
    "latency_s",
    "roofline_latency_s",
    "flops",
    "hbm_bytes",
    "noc_bytes",
    "weight_bytes",
    "kv_cache_bytes",
    "peak_flops_per_s",
    "hbm_bytes_per_s",
    "noc_bytes_per_s",
    "area_proxy_mm2",
    "throughput_per_s",
)

_PARAM_TYPES: dict[str, pa.DataType] = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(),
                                         "bool": pa.bool_()}

# Key of the Parquet key-value metadata recording the write order of a part (see ResultStore.read).
_WRITE_SEQ_KEY = b"elk_dse.write_seq"
_PART_GLOB = "part-*.parquet"


class UnreadableFileError(ValueError):
    """A file of a sweep folder exists but cannot be read (truncated, not Parquet / JSON); ``path`` names it."""

    def __init__(self, path: Path | str, err: BaseException):
        self.path = Path(path)
        detail = (str(err).strip().splitlines() or [""])[0][:200]
        super().__init__(f"{self.path}: cannot be read ({type(err).__name__}: {detail})")


def _guarded(path: Path, read: Any) -> Any:
    """``read(path)``, with any failure of a corrupt file turned into UnreadableFileError naming it."""
    try:
        return read(path)
    except (OSError, pa.ArrowException, ValueError) as err:
        raise UnreadableFileError(path, err) from err


def make_schema(param_types: Mapping[str, str], metric_names: Iterable[str]) -> pa.Schema:
    """The Arrow schema of a sweep: meta columns, then ``param.<name>``, then ``metric.<name>``.

    ``param_types`` maps parameter name -> "float" | "int" | "str" | "bool" (float64, int64, string, bool columns).
    ``metric_names`` are extra metrics (float64, base SI units as the suffix says); the
    :data:`REQUIRED_METRICS` come first and are always present so every sweep honours the data contract.
    Names may be given with or without their prefix. Raises ValueError on an unknown type or a duplicate.
    """
    fields = list(META_FIELDS)
    seen = set(META_COLUMNS)
    for name, kind in param_types.items():
        if kind not in _PARAM_TYPES:
            raise ValueError(f"parameter {name!r} has type {kind!r}; allowed: {', '.join(_PARAM_TYPES)}")
        col = _prefixed(PARAM_PREFIX, name)
        if col in seen:
            raise ValueError(f"duplicate column {col!r}")
        seen.add(col)
        fields.append(pa.field(col, _PARAM_TYPES[kind]))
    for name in (*REQUIRED_METRICS, *metric_names):
        col = _prefixed(METRIC_PREFIX, name)
        if col not in seen:  # duplicates of required metrics are harmless
            seen.add(col)
            fields.append(pa.field(col, pa.float64()))
    return pa.schema(fields)


def _prefixed(prefix: str, name: str) -> str:
    return name if name.startswith(prefix) else prefix + name


def dataset_dir(folder: Path | str) -> Path:
    """The ``results.parquet`` directory of ``folder`` (a sweep folder, or that directory itself)."""
    folder = Path(folder)
    return folder if folder.suffix == ".parquet" else folder / DATASET_DIRNAME


class ResultStore:
    """Append-only store of trial rows as a Parquet directory dataset.

    ``folder`` is the sweep folder (parts go to ``folder/results.parquet/``) or the ``*.parquet``
    directory itself. ``schema`` (from :func:`make_schema`) is required to append; when None, ``read``
    takes the schema from the parts (for read-only use, e.g. the report).
    One writer per folder: the search driver is the only process that appends.
    """

    def __init__(self, folder: Path | str, schema: pa.Schema | None = None):
        self.path = dataset_dir(folder)
        self.schema = schema
        self._last_seq: int | None = None

    # ---- writing -----------------------------------------------------------------------------------
    def append(self, rows: Sequence[Mapping[str, Any]]) -> Path | None:
        """Write ``rows`` (one dict per trial) as one new part file; return its path (None if no rows).

        Keys missing from a row become null (NaN for metrics). A key that is not a schema column raises
        ValueError naming it, as does a row without ``trial`` or a value of the wrong type.
        """
        if self.schema is None:
            raise ValueError("ResultStore was opened without a schema; pass one to append")
        if not rows:
            return None
        names = set(self.schema.names)
        for i, row in enumerate(rows):
            unknown = [k for k in row if k not in names]
            if unknown:
                raise ValueError(
                    f"row {i}: unknown column(s) {', '.join(map(repr, unknown))} not in the schema"
                )
            if row.get("trial") is None:
                raise ValueError(f"row {i}: 'trial' is required")
        return self._write_table(self._to_table(rows))

    def _write_table(self, table: pa.Table) -> Path:
        trials = table.column("trial").to_pylist()
        seq = self._next_seq()
        table = table.replace_schema_metadata({_WRITE_SEQ_KEY: str(seq).encode()})
        self.path.mkdir(parents=True, exist_ok=True)
        final = self._free_name(min(trials), max(trials))
        tmp = self.path / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path)
        return final

    def _to_table(self, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        if self.schema is None:
            raise RuntimeError(f"{self.path}: rows written before the results schema was set")
        arrays = []
        for field in self.schema:
            values = [row.get(field.name) for row in rows]
            try:
                arrays.append(pa.array(values, type=field.type, from_pandas=False))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as err:
                raise ValueError(f"column {field.name!r} ({field.type}): {err}") from None
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _free_name(self, first: int, last: int) -> Path:
        # Zero-padded so that file-name order (what pd.read_parquet uses) is trial order. A re-run of the
        # same trial range gets a suffix instead of overwriting a part whose other trials would be lost.
        base = f"part-{first:08d}-{last:08d}"
        path = self.path / f"{base}.parquet"
        k = 1
        while path.exists():
            path = self.path / f"{base}-r{k}.parquet"
            k += 1
        return path

    def _next_seq(self) -> int:
        # Wall-clock nanoseconds, forced to increase past every part already in the folder: file mtimes
        # are too coarse (kernel clock ticks) to order two quick appends.
        if self._last_seq is None:
            self._last_seq = max((_write_seq(p) for p in self._parts()), default=0)
        self._last_seq = max(time.time_ns(), self._last_seq + 1)
        return self._last_seq

    # ---- reading -----------------------------------------------------------------------------------
    def _parts(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(self.path.glob(_PART_GLOB))  # glob's "part-" prefix already skips .tmp / _ files

    def _parts_in_write_order(self) -> list[Path]:
        return sorted(self._parts(), key=lambda p: (_write_seq(p), p.name))

    def read(self) -> pd.DataFrame:
        """All trials as a DataFrame, one row per trial, sorted by ``trial``, index 0..n-1.

        Nothing written yet -> an empty frame with the schema's columns. The same trial in two parts
        keeps the row written last (by write order, not file name). That happens when the driver
        crashed after writing a batch but before the search storage recorded it, and the resumed
        sweep evaluated those trial numbers again: the newer row is the one the search knows about.
        """
        parts = self._parts_in_write_order()
        schema = self.schema if self.schema is not None else _unified_schema(parts)
        if schema is None:  # read-only and nothing written: the meta columns are all we know
            schema = pa.schema(META_FIELDS)
        if not parts:
            return schema.empty_table().to_pandas()
        tables = [
            _conform(_guarded(p, pq.read_table), schema, p, strict=self.schema is not None) for p in parts
        ]
        return _newest_per_trial(pa.concat_tables(tables).to_pandas())

    def compact(self) -> Path | None:
        """Merge all parts into one (the last row of each trial wins), then delete the old parts.

        Crash-safe: the merged part is written (atomically, newest in write order) before any old part is
        removed, so an interruption leaves duplicates that ``read`` already resolves, never a loss.
        Returns the merged part, or None when there was nothing to merge.
        """
        parts = self._parts_in_write_order()
        if len(parts) <= 1:
            return None
        schema = self.schema if self.schema is not None else _unified_schema(parts)
        if schema is None:
            raise RuntimeError(f"{self.path}: no schema to compact the parts under")
        table = pa.concat_tables([_conform(pq.read_table(p), schema, p, strict=False) for p in parts])
        trials = np.asarray(table.column("trial").to_numpy())
        position = np.arange(len(trials))
        order = np.lexsort((position, trials))
        last = np.ones(len(order), dtype=bool)
        last[:-1] = trials[order][1:] != trials[order][:-1]
        merged = self._write_table(table.take(pa.array(order[last])).replace_schema_metadata(None))
        for p in parts:
            if p != merged:
                p.unlink(missing_ok=True)
        _fsync_dir(self.path)
        return merged

    def read_lenient(self) -> tuple[pd.DataFrame, list[str]]:
        """Every row a reader can trust, and a warning per thing it had to pass over (for the report).

        - A part whose schema is not a sweep's (meta columns missing or of another type) is skipped, named.
        - ``results.parquet`` that is one file instead of the directory of parts is read as that one table.
        - Rows still only in ``pending_rows.jsonl`` (a sweep stopped mid-batch) are included; they are the
          newest rows of their trials, as the resumed sweep would write them.
        Unreadable files still raise UnreadableFileError naming the file.
        """
        from elk_dse.results.rowlog import RowLog

        warnings: list[str] = []
        if self.path.is_file():
            warnings.append(f"{self.path.name} is a single file, not the directory of parts a sweep writes; "
                            "read as one table")
            parts = [self.path]
        else:
            parts = self._parts_in_write_order()
        good = []
        for p in parts:
            problem = _foreign(_guarded(p, pq.read_schema))
            if problem:
                warnings.append(f"{p.name}: not a part of a sweep ({problem}); skipped")
            else:
                good.append(p)
        schema = _unified_schema(good) or pa.schema(META_FIELDS)
        frames = [_conform(_guarded(p, pq.read_table), schema, p, strict=False).to_pandas() for p in good]
        pending = RowLog(self.path.parent).rows() if self.path.name == DATASET_DIRNAME else []
        if pending:
            warnings.append(f"{len(pending)} rows are only in pending_rows.jsonl (a sweep stopped mid-batch): "
                            "shown; rerun the sweep to move them into Parquet")
            frames.append(pd.DataFrame(pending))
        if not frames:
            return schema.empty_table().to_pandas(), warnings
        df = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
        return _newest_per_trial(df), warnings

    def trials(self) -> set[int]:
        """Trial numbers present in the store."""
        out: set[int] = set()
        for p in self._parts():
            table = _guarded(p, lambda q: pq.read_table(q, columns=["trial"]))
            out.update(table.column("trial").to_pylist())
        return out


def _newest_per_trial(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trial, the one written last (rows are in write order), sorted by trial, index 0..n-1."""
    df = df.drop_duplicates("trial", keep="last").sort_values("trial", kind="stable")
    return df.reset_index(drop=True)


def _foreign(schema: pa.Schema) -> str:
    """Why a part's schema is not a sweep's ("" when it is one): its meta columns are missing or mistyped."""
    missing = [f.name for f in META_FIELDS if f.name not in schema.names]
    if missing:
        return "no column " + ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
    for f in META_FIELDS:
        have = schema.field(f.name).type
        if have != f.type and not (pa.types.is_null(have) or (pa.types.is_integer(have) and pa.types.is_integer(f.type))):
            return f"column {f.name} is {have}, not {f.type}"
    return ""


def _write_seq(path: Path) -> int:
    meta = _guarded(path, pq.read_schema).metadata or {}
    try:
        return int(meta.get(_WRITE_SEQ_KEY, b"0"))
    except ValueError:
        return 0


def _unified_schema(parts: list[Path]) -> pa.Schema | None:
    if not parts:
        return None
    # Read-only use: tolerate parts from an older writer that lacked a column (filled with nulls).
    schemas = [_guarded(p, pq.read_schema).remove_metadata() for p in parts]
    return pa.unify_schemas(schemas, promote_options="permissive")


def _conform(table: pa.Table, schema: pa.Schema, path: Path, strict: bool) -> pa.Table:
    names = set(table.column_names)
    missing = [n for n in schema.names if n not in names]
    extra = [n for n in table.column_names if n not in set(schema.names)]
    # A metric added by a newer version is null in parts an older version wrote (so older sweeps resume);
    # a missing parameter or an unknown column means another search space: refuse.
    missing_not_metric = [n for n in missing if not n.startswith(METRIC_PREFIX)]
    if strict and (missing_not_metric or extra):
        raise ValueError(f"{path.name}: columns differ from the schema (missing {missing_not_metric}, extra {extra})")
    columns = [
        table.column(f.name) if f.name in names else pa.nulls(table.num_rows, type=f.type) for f in schema
    ]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms / file systems cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
