"""The sweep driver's log of finished rows not yet in Parquet: one JSON line per trial, flushed as it arrives.

Parquet parts are written once per batch (one part per batch keeps the dataset small and the driver cheap,
about 0.1 ms per row here instead of ~4 ms for a fsynced part per row); the log bridges the time in between,
so a driver killed mid-batch (Ctrl-C, kill -9) loses no finished row: the next run moves the logged rows into
Parquet before anything else. Lines are flushed to the OS, not fsynced: a process kill keeps them, a machine
crash may lose the current batch's rows, which the resumed sweep then evaluates again (same seed, same rows).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

FILENAME = "pending_rows.jsonl"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


class RowLog:
    """Append-only JSON-lines file of result rows (``<sweep>/pending_rows.jsonl``)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / FILENAME
        self._fh: TextIO | None = None

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row and flush it to the OS (it survives a kill of this process)."""
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across rows
        fh = self._fh
        fh.write(json.dumps(dict(row), default=_plain, allow_nan=True) + "\n")
        fh.flush()

    def rows(self) -> list[dict[str, Any]]:
        """The logged rows; a last line cut short by a kill is ignored (its trial is evaluated again)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("trial"), int):
                out.append(row)
        return out

    def clear(self) -> None:
        """Forget the logged rows (call after they are safely in Parquet)."""
        self.close()
        if self.path.exists():
            os.unlink(self.path)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
