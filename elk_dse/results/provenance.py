"""Where a result came from: the package's git commit (when it runs from a git checkout), the versions of
the packages that shape results, and the host. Recorded in a report's provenance table (and meant for
``sweep.json``: a sweep that stores ``environment()`` there is shown as it ran)."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("elk_dse", "optuna", "ray", "pyarrow", "numpy", "pandas", "matplotlib")


def git_commit(path: Path | str | None = None) -> str | None:
    """``<hash>`` (``+ "-dirty"`` with uncommitted changes) of the git checkout holding ``path`` (default:
    this package's source), or None when it is not in a git checkout or git is missing."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    """Installed version of each package in PACKAGES ("not installed" when absent)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@lru_cache(maxsize=1)
def environment() -> dict[str, object]:
    """git commit (or None), package versions, host name, OS, Python and CPU count, as JSON-able values."""
    return {
        "git_commit": git_commit(),
        "versions": versions(),
        "host": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
