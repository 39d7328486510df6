"""The golden cases of the scheduler refactor (issue 18): per-scheduler latency on a few small programs and
at Elk's reference point, as the code computed them before the schedulers became plug-ins.

Run as a script to (re)write tests/golden/schedulers.json; tests/test_scheduler_golden.py compares.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "schedulers.json"
EVENT_GOLDEN = ROOT / "tests" / "golden" / "schedulers_event.json"
NAMES = ("sequential", "basic", "static", "elk_dyn", "elk_full", "ideal")


def mesh16(sram_kib: int = 2048, hbm_gb_s: float = 800) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import small_chip_dict

    return small_chip_dict(cores={"count": 16, "grid": [4, 4], "sram_kib": sram_kib},
                           hbm={"capacity_gib": 64, "bandwidth_gb_s": hbm_gb_s})


def cases() -> dict[str, tuple[dict, ModelConfig]]:
    pod4 = yaml.safe_load((ROOT / "conf" / "chip" / "ipu_pod4.yaml").read_text())
    return {
        "mesh16_llama2_7b_b4_kv512": (mesh16(), ModelConfig("llama2_7b", batch=4, kv_len=512)),
        "mesh16_512k_llama3_2_1b_b8_kv1024": (mesh16(512, 400), ModelConfig("llama3_2_1b", batch=8, kv_len=1024)),
        "ipu_pod4_llama2_13b_b32_kv2048": (pod4, ModelConfig("llama2_13b", batch=32, kv_len=2048)),
    }


def latencies() -> dict[str, dict[str, float]]:
    out = {}
    for key, (chip, model) in cases().items():
        graph = build_model(model)
        out[key] = {n: float(evaluate_graph(graph, chip_from_dict(chip), SchedulerConfig(name=n),
                                            include_ops=False)["latency_s"]) for n in NAMES}
    return out


def event_latencies() -> dict[str, dict[str, float]]:
    """The event simulator's latency of each scheduler's Program on the small (mesh16) cases."""
    from elk_dse.compiler.compile import compile_graph
    from elk_dse.sim import simulate

    out = {}
    for key, (chip, model) in cases().items():
        if not key.startswith("mesh16"):
            continue
        graph = build_model(model)
        out[key] = {n: float(simulate(compile_graph(graph, chip_from_dict(chip), SchedulerConfig(name=n)),
                                      "event").latency_s) for n in NAMES}
    return out


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(latencies(), indent=1) + "\n")
    EVENT_GOLDEN.write_text(json.dumps(event_latencies(), indent=1) + "\n")
    print(GOLDEN.read_text())
