"""A stack's dispatch offset per chip architecture (issue 17b3, ninth session; docs/stacks.md "tt_cnn on Blackhole:
the gap from the vendor's dispatch micro-benchmarks"): tt_cnn charges a Blackhole chip its Wormhole-fitted
per-operator gap plus the difference of the two architectures' exposed traced dispatch, as the vendor measures it."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from tests_paths import CONF

from elk_dse.errors import ConfigError, UnknownKeyError
from elk_dse.hw.chip import ARCHITECTURES, chip_from_dict
from elk_dse.hw.stack import ArchOffset, apply_stack, load_stack, stack_from_dict


def chip(name: str):
    return chip_from_dict(yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text()))


def test_the_shipped_offset_is_the_vendors_measured_dispatch_difference():
    """Hand count from tenstorrent/tt-metal tests/tt_metal/tt_metal/perf_microbenchmark/dispatch/goldens/
    pgm_dispatch.json @52bc0ce9 (kernel_size 1024): per program, traced, every core, BRISC + NCRISC + TRISC, 32 CBs,
    kernels waiting 10000 / 5000 cycles; less the kernels' own time at each chip's aiclk."""
    p150 = {10000: 8.348, 5000: 4.646}  # us per program, bh_p150_perf (aiclk 1350 MHz)
    n300 = {10000: 11.56, 5000: 6.485}  # us per program, wh_n300_perf (aiclk 1000 MHz)
    bh = sum(t - cycles / 1350.0 for cycles, t in p150.items()) / 2  # 0.941 / 0.942 us exposed
    wh = sum(t - cycles / 1000.0 for cycles, t in n300.items()) / 2  # 1.56 / 1.485 us exposed
    assert (bh, wh) == pytest.approx((0.9415, 1.5225), abs=1e-3)
    cnn = load_stack("tt_cnn")
    assert cnn.dispatch_offset_us_by_arch.set() == {"blackhole": pytest.approx(round(bh - wh, 2))}
    assert cnn.dispatch_offset_us_by_arch.blackhole == -0.58
    assert "52bc0ce9" in cnn.sources.dispatch_offset and "pgm_dispatch.json" in cnn.sources.dispatch_offset
    # Blackhole's gap follows the Wormhole fit: no Blackhole value is fitted or shipped on its own
    assert cnn.dispatch_us_per_op_by_arch.set() == {} and cnn.calibration.fit == ("dispatch_us_per_op",)
    assert cnn.dispatch_for("blackhole") == pytest.approx(cnn.dispatch_us_per_op - 0.58)
    assert cnn.dispatch_for("wormhole_b0") == cnn.dispatch_us_per_op


def test_dispatch_for_takes_an_own_entry_then_the_offset_and_never_goes_below_zero():
    cnn = load_stack("tt_cnn")
    moved = cnn.with_values(dispatch_us_per_op=20.0)
    assert moved.dispatch_for("blackhole") == pytest.approx(19.42) and moved.dispatch_for("wormhole_b0") == 20.0
    assert moved.dispatch_for("") == 20.0  # a chip naming no architecture
    own = moved.with_values(**{"dispatch_us_per_op.blackhole": 3.0})
    assert own.dispatch_for("blackhole") == 3.0  # an own entry takes precedence over the offset
    assert cnn.with_values(dispatch_us_per_op=0.2).dispatch_for("blackhole") == 0.0  # 0.2 - 0.58 clamped at 0
    assert set(ARCHITECTURES) == {f.name for f in dataclasses.fields(ArchOffset)}


def test_apply_stack_charges_the_offset_on_blackhole_chips_only():
    cnn = load_stack("tt_cnn")
    expect = {"blackhole_p150": cnn.dispatch_us_per_op - 0.58, "wormhole_n150": cnn.dispatch_us_per_op,
              "wormhole_t3k": cnn.dispatch_us_per_op}
    for name, us in expect.items():
        assert apply_stack(chip(name), cnn).overheads.dispatch_us_per_op == pytest.approx(us), name
    # a stack whose only setting is an offset is still applied (not the `none` shortcut)
    only = dataclasses.replace(load_stack("none"), dispatch_us_per_op=2.0)
    only = dataclasses.replace(only, dispatch_offset_us_by_arch=ArchOffset(blackhole=-0.5))
    assert apply_stack(chip("blackhole_p150"), only).overheads.dispatch_us_per_op == pytest.approx(1.5)


def _good() -> dict:
    return yaml.safe_load((CONF / "stack" / "tt_cnn.yaml").read_text())


@pytest.mark.parametrize(("offset", "sources", "field"), [
    ({"grayskull": 1.0}, {}, "stack.dispatch_offset_us_by_arch.grayskull"),
    ({"blackhole": "fast"}, {}, "stack.dispatch_offset_us_by_arch.blackhole"),
    ({"blackhole": -0.5}, {"dispatch_offset": " "}, "stack.sources.dispatch_offset"),
])
def test_bad_dispatch_offset_is_one_line_naming_the_field(offset, sources, field):
    data = _good()
    data["dispatch_offset_us_by_arch"] = offset
    data["sources"] = {**data["sources"], **sources}
    with pytest.raises((ConfigError, UnknownKeyError)) as err:
        stack_from_dict(data, "stack")
    message = str(err.value)
    assert "\n" not in message and field in message, message
