"""Area, energy and power model: calibration on two published dies, and the parts of the energy account."""

from __future__ import annotations

import pytest
import yaml
from conftest import small_chip_dict

from elk_dse.cost.area import area_mm2, die_area_mm2, static_power_w
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig

CONF = __import__("pathlib").Path(__file__).resolve().parents[1] / "conf" / "chip"


def shipped(name):
    return chip_from_dict(yaml.safe_load((CONF / f"{name}.yaml").read_text()))


def test_gc200_area_within_20_percent_of_published():
    # Graphcore GC200 (IPU MK2): 823 mm^2 on TSMC N7 (Graphcore, Hot Chips 2021).
    assert die_area_mm2(shipped("ipu_mk2")) == pytest.approx(823, rel=0.20)


def test_wse2_area_within_20_percent_of_published():
    # Cerebras WSE-2: 46,225 mm^2 on TSMC N7 (Cerebras, Hot Chips 33, 2021).
    assert die_area_mm2(shipped("wse2_like")) == pytest.approx(46_225, rel=0.20)


def test_area_scales_with_chips_and_process():
    pod = shipped("ipu_pod4")
    assert area_mm2(pod) == pytest.approx(4 * die_area_mm2(pod))
    d = small_chip_dict()
    n7, n5 = chip_from_dict(d), chip_from_dict({**d, "process": "n5"})
    assert area_mm2(n5) < area_mm2(n7)
    with pytest.raises(ConfigError, match="process"):
        chip_from_dict({**d, "process": "n3x"})


def test_energy_levels_and_power():
    chip = shipped("mesh64")
    result = evaluate(DesignPoint(chip, ModelConfig("llama2_7b", batch=2, kv_len=512)), include_ops=False)
    levels = result["energy_by_level"]
    assert all(v >= 0 for v in levels.values()) and result["energy_j"] == pytest.approx(sum(levels.values()))
    # HBM: every byte crossing the interface at the node's 3.9 pJ/bit (HBM2e) -- the decode pass streams weights.
    assert levels["hbm"] == pytest.approx(result["hbm_bytes"] * 8 * 3.9e-12)
    assert levels["static"] == pytest.approx(static_power_w(chip) * result["latency_s"])
    assert result["power_w"] == pytest.approx(result["energy_j"] / result["latency_s"])
    assert result["energy_per_item_j"] == pytest.approx(result["energy_j"] / 2)
    assert result["perf_per_w"] == pytest.approx(result["throughput_per_s"] / result["power_w"])
    assert result["power_w"] > result["static_power_w"] > 0
