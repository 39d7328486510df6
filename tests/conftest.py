"""Shared fixtures: one real Ray for the whole test session, small chips built from plain dicts."""

from __future__ import annotations

import logging
import os

import pytest
from hypothesis import settings

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MPLBACKEND", "Agg")

# Property tests draw the same examples on every run (a suite that passes on one machine passes on the next);
# ELK_HYPOTHESIS=explore draws fresh ones and keeps failures in .hypothesis/ (docs/decisions.md, sixth session).
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("ELK_HYPOTHESIS", "repeatable"))


def small_chip_dict(**over) -> dict:
    """A 16-core 4x4 mesh chip with edge HBM, small enough for fast tests; keyword args override sections."""
    d = {
        "name": "mesh16",
        "clock_ghz": 1.0,
        "cores": {"count": 16, "grid": [4, 4], "sram_kib": 1024, "model": "systolic", "matrix_rows": 16,
                  "matrix_cols": 16, "vector_lanes": 32, "op_overhead_cycles": 50, "overlap_compute_comm": True},
        "interconnect": {"topology": "mesh", "link_bytes_per_cycle": 32, "hop_latency_cycles": 2,
                         "barrier_cycles": 100},
        "hbm": {"bandwidth_gb_s": 400, "capacity_gib": 32, "channels": 8, "attach": "edge"},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    return d


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray with 2 CPUs, started once per test session (it takes ~6 s)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    yield ray
    ray.shutdown()
