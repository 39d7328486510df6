"""Golden numbers of the shipped chips, recorded from the code before topologies owned their routing (issue 16).

Refactoring routing must not move any latency: analytic and event latencies of every shipped chip (except the
wafer-scale wse2_like, whose analytic latency is checked by the slow test) and the routed figures the cost
models read. Regenerate only on purpose: ``ELK_REGEN_GOLDEN=1 python -m pytest tests/test_topology_golden.py``.

Tolerance: relative 1e-9. Busiest-link loads are now summed from per-link difference arrays instead of hop by
hop, which changes the last bits of a float sum, never more.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.network import ring_link_share
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig
from elk_dse.sim import SimConfig

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "topology_golden.json"
CHIPS = ["blackhole_p150", "inferentia2", "inferentia_like", "ipu_mk2", "mesh64", "torus256", "wormhole_n150",
         pytest.param("ipu_pod4", marks=pytest.mark.slow), pytest.param("wormhole_galaxy", marks=pytest.mark.slow),
         "wormhole_t3k"]  # the chips shipped before issue 16 (two multi-chip ones take ~20 s each: slow)
MODEL = ModelConfig("llama2_7b", batch=2, kv_len=256)
REL = 1e-9


def shipped(name: str):
    data = yaml.safe_load((ROOT / "conf" / "chip" / f"{name}.yaml").read_text())
    # The goldens were recorded with every operator partitioned over all cores of all chips; since issue 17
    # wormhole_t3k / wormhole_galaxy ship with parallelism: tp (tests/test_parallelism*.py check that path).
    data.setdefault("chips", {})["parallelism"] = "all_core"
    return chip_from_dict(data)


def measure(name: str) -> dict:
    chip = shipped(name)
    out: dict = {}
    for sim in ("analytic", "event"):
        r = evaluate(DesignPoint(chip, MODEL, SchedulerConfig(), SimConfig(sim)), include_ops=False)
        out[f"{sim}_latency_s"] = r["latency_s"] if r["feasible"] else r["infeasible_reason"]
    out["hbm_delivery_link_share"] = chip.hbm_delivery_link_share
    out["chip_port_share"] = chip.chip_port_share
    out["mean_hops"] = chip.mean_hops
    out["mean_hbm_hops"] = chip.mean_hbm_hops
    out["bisection_bytes_per_s"] = chip.bisection_bytes_per_s
    out["hbm_cut_bytes_per_s"] = chip.hbm_cut_bytes_per_s
    out["hbm_injection_bytes_per_s"] = chip.hbm_injection_bytes_per_s
    n = chip.num_cores
    out["ring_link_share"] = [ring_link_share(chip, s, k, n) for s, k in ((1, n), (1, min(n, 8)), (2, max(n // 2, 2)))
                              if s * k <= n and k >= 2]
    return out


def load() -> dict:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


if os.environ.get("ELK_REGEN_GOLDEN") == "1":  # pragma: no cover - run by hand before a refactoring
    GOLDEN.write_text(json.dumps({name: measure(name) for name in (c if isinstance(c, str) else c.values[0]
                                                                  for c in CHIPS)}, indent=1, sort_keys=True) + "\n")


def close(a, b) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a == pytest.approx(b, rel=REL, abs=1e-300)


@pytest.mark.parametrize("name", CHIPS)
def test_shipped_chip_numbers_unchanged(name):
    golden = load()[name]
    now = measure(name)
    moved = {k: (golden[k], now[k]) for k in golden if not close(now[k], golden[k])}
    assert not moved, f"{name}: {moved}"


@pytest.mark.slow
def test_wafer_scale_latency_unchanged():
    """wse2_like (850,000 cores), Llama-2-7B decode: the analytic latency the hop-by-hop routing gave (290 s
    then; ~16 s now)."""
    chip = shipped("wse2_like")
    r = evaluate(DesignPoint(chip, ModelConfig("llama2_7b"), SchedulerConfig()), include_ops=False)
    assert r["latency_s"] == pytest.approx(load()["wse2_like"]["analytic_latency_s"], rel=REL)
