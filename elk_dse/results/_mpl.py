"""Shared matplotlib setup for the results plots: headless Agg backend, colours, safe text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are built on servers and in CI, before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLORS: list[str] = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def frozen(a: Any, dtype: Any = np.float64) -> np.ndarray:
    """A read-only copy: the data records are frozen dataclasses, their arrays should be too."""
    arr = np.array(a, dtype=dtype)
    arr.flags.writeable = False
    return arr


def mpl_text(text: str) -> str:
    # User strings go into matplotlib: '$' would start mathtext (and can crash the parser), a leading
    # '_' hides a legend entry.
    text = str(text).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def finish(fig: Any, ax: Any, path: str | Path, legend_loc: str) -> Path:
    """Grid, legend (when anything is labelled; ``legend_loc`` a matplotlib location or "outside" for right
    of the axes), tight layout, PNG; the figure is closed even on error."""
    try:
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            if legend_loc == "outside":  # right of the axes: dense plots have no free corner
                ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
            else:
                ax.legend(fontsize=8, loc=legend_loc)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return Path(path)
