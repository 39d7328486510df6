"""Display units derived from column-name suffixes (values are stored in base SI units).

``_s`` seconds (shown as s / ms / µs / ns), ``_bytes`` bytes, ``_mm2`` mm^2, ``_per_s`` rates, ``flops``
floating-point operations, ``_j`` joules and ``_w`` watts (mJ / mW below 1). Decimal prefixes throughout (1 GB = 1e9 B), as bandwidth figures use them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from elk_dse.results.store import METRIC_PREFIX, PARAM_PREFIX

_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_TIME = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


@dataclass(frozen=True)
class Unit:
    """How to display a column: ``displayed = value * scale`` followed by ``symbol``."""

    symbol: str
    scale: float = 1.0


def bare_name(column: str) -> str:
    """``metric.latency_s`` -> ``latency_s`` (also strips ``param.``)."""
    for prefix in (METRIC_PREFIX, PARAM_PREFIX):
        if column.startswith(prefix):
            return column[len(prefix) :]
    return column


def _base_symbol(name: str) -> tuple[str, str]:
    """(kind, base symbol) of a bare column name; kind is "time", "si" or "plain"."""
    if name.endswith("flops_per_s"):
        return "si", "FLOP/s"
    if name.endswith("perf_per_mm2"):  # items per second per mm^2 of silicon
        return "plain", "/s/mm²"
    if name.endswith("perf_per_w"):  # items per second per watt
        return "plain", "/s/W"
    if name.endswith("bytes_per_s"):
        return "si", "B/s"
    if name.endswith("_per_s"):
        return "si", "/s"
    if name.endswith("_s") or name == "s":
        return "time", "s"
    if name.endswith("_bytes") or name == "bytes":
        return "si", "B"
    if name.endswith("_mm2"):
        return "plain", "mm²"
    if name.endswith("_j"):
        return "milli", "J"
    if name.endswith("_w"):
        return "milli", "W"
    if name == "flops" or name.endswith("_flops"):
        return "si", "FLOP"
    return "plain", ""


def unit_for(column: str, values: Iterable[float] | float | None = None) -> Unit:
    """The display unit of ``column`` for data ``values`` (base units): the largest prefix that keeps the
    largest magnitude >= 1, so small latencies show in ms and big byte counts in GB."""
    kind, symbol = _base_symbol(bare_name(column))
    arr = np.atleast_1d(np.asarray(values if values is not None else [], dtype=np.float64))
    finite = np.abs(arr[np.isfinite(arr)])
    top = float(finite.max()) if finite.size else 0.0
    if kind == "time":
        for factor, sym in _TIME:
            if top >= factor:
                return Unit(sym, 1.0 / factor)
        return Unit("s" if top == 0 else "ns", 1.0 if top == 0 else 1e9)
    if kind == "milli":  # energies and powers: mJ for a decode step, kJ never needed
        return Unit("m" + symbol, 1e3) if 0 < top < 1 else Unit(symbol)
    if kind == "si":
        for factor, prefix in _SI:
            if top >= factor:
                return Unit(prefix + symbol, 1.0 / factor)
        return Unit(symbol)
    return Unit(symbol)


# Config-unit suffixes of searched parameters (values stay in config units: ``sram_kib: 624``).
_CONFIG_SUFFIXES = (
    ("_kib", "KiB"),
    ("_mib", "MiB"),
    ("_gib", "GiB"),
    ("_gb_s", "GB/s"),
    ("_ghz", "GHz"),
    ("_bytes_per_cycle", "B/cycle"),
    ("_cycles", "cycles"),
    ("_mm2", "mm²"),
    ("_nm", "nm"),
    ("_w", "W"),
)


def config_unit(param: str) -> Unit:
    """The unit of a searched parameter in config units, from its key's suffix (``chip.cores.sram_kib`` ->
    KiB); no symbol for counts and names (``chip.cores.count``, ``chip.interconnect.topology``)."""
    leaf = bare_name(param).rsplit(".", 1)[-1]
    for suffix, symbol in _CONFIG_SUFFIXES:
        if leaf.endswith(suffix):
            return Unit(symbol)
    return Unit("")


# Human names of the metrics a report shows (issue 19: "latency [ms]", not "latency_s [ms]").
HUMAN_NAMES: dict[str, str] = {
    "latency_s": "latency",
    "latency_per_item_s": "latency per item",
    "roofline_latency_s": "roofline bound",
    "throughput_per_s": "throughput",
    "area_mm2": "area",
    "area_proxy_mm2": "area (proxy)",
    "power_w": "power",
    "static_power_w": "static power",
    "energy_j": "energy per pass",
    "energy_per_item_j": "energy per item",
    "perf_per_mm2": "throughput per area",
    "perf_per_w": "throughput per watt",
    "flops": "work",
    "hbm_bytes": "HBM traffic",
    "noc_bytes": "on-chip network traffic",
    "achieved_flops_per_s": "achieved compute",
    "peak_flops_per_s": "peak compute",
    "hbm_bytes_per_s": "HBM bandwidth",
    "roofline_fraction": "fraction of the roofline bound",
    "constraint_violation": "budget violation",
}
_UNIT_SUFFIXES = ("_bytes_per_s", "_flops_per_s", "_per_s", "_mm2", "_bytes", "_s", "_j", "_w")


def human_name(column: str) -> str:
    """``metric.latency_s`` -> ``latency``. Parameters keep their key (``chip.cores.sram_kib``: what a user
    types in a sweep file); unknown metrics lose the unit suffix and underscores (``hbm_busy_s`` -> ``hbm busy``).
    """
    if column.startswith(PARAM_PREFIX):
        return bare_name(column)
    name = bare_name(column)
    if name in HUMAN_NAMES:
        return HUMAN_NAMES[name]
    for suffix in _UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ")


def display_symbol(column: str, unit: Unit) -> str:
    """The unit as shown to a reader: rates of items get a noun (``items/s``, ``kitems/s``)."""
    sym = unit.symbol
    if sym.startswith("/"):  # /s, /s/mm², /s/W
        return "items" + sym
    if sym.endswith("/s") and sym[:-2] in {p for _, p in _SI}:  # k/s, M/s
        return sym[:-2] + "items/s"
    return sym


def axis_label(column: str, unit: Unit) -> str:
    """Human axis label with its unit: ``latency [ms]``, ``area [mm²]``, ``throughput [items/s]``."""
    name = human_name(column)
    sym = display_symbol(column, unit)
    return f"{name} [{sym}]" if sym else name


def format_quantity(column: str, value: object, digits: int = 4) -> str:
    """One value with its own best unit, e.g. ``12.35 ms``, ``4.1 GB``; NaN -> ``n/a``; non-numbers
    as ``str``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return "n/a" if value is None else str(value)
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "inf"
    unit = unit_for(column, v)
    if unit.symbol == "" and isinstance(value, int | np.integer):
        return str(int(value))
    text = f"{v * unit.scale:.{digits}g}"
    return f"{text} {unit.symbol}" if unit.symbol else text


def format_duration(seconds: float | None) -> str:
    """Wall time as ``1h 02m 03s`` / ``2m 05s`` / ``3.2 s``; None or NaN -> ``n/a``."""
    if seconds is None or not isinstance(seconds, int | float) or math.isnan(seconds):
        return "n/a"
    if seconds < 60:
        return f"{seconds:.3g} s"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"
