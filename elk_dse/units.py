"""Human-readable quantities for messages (no dependencies; any layer may use it)."""

from __future__ import annotations

import math


def format_bytes(b: float) -> str:
    """Bytes in B, KiB, MiB, GiB or TiB with 4 significant digits ('n/a' for NaN/inf)."""
    if b is None or not math.isfinite(b):
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024:
            return f"{b:.4g} {unit}"
        b /= 1024
    return f"{b:.4g} TiB"
