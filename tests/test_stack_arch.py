"""A software stack's per-operator dispatch per chip architecture (issue 17b, seventh session; docs/stacks.md "tt_cnn
on Blackhole"): the chip names its silicon architecture, the stack may charge each architecture its own dispatch,
apply_stack picks it, and the per-stack fit fits an architecture's value on calibration points of that
architecture only."""

from __future__ import annotations

import dataclasses
import math

import pytest
import yaml
from tests_paths import CONF

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ConfigError, UnknownKeyError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import ARCHITECTURES, chip_from_dict
from elk_dse.hw.stack import ARCH_DISPATCH, FITTABLE, ArchDispatch, apply_stack, load_stack, stack_from_dict
from elk_dse.models import model_config_from_dict
from elk_dse.validation import suite


def chip(name: str, **over):
    data = yaml.safe_load((CONF / "chip" / f"{name}.yaml").read_text())
    return chip_from_dict({**data, **over})


def test_tenstorrent_chip_files_name_their_architecture():
    # tt-metal's soc descriptors: wormhole_b0_80_arch.yaml, blackhole_140_arch.yaml (arch_name: BLACKHOLE)
    for path in sorted((CONF / "chip").glob("*.yaml")):
        name = path.stem
        arch = chip(name).architecture
        if name.startswith("wormhole_"):
            assert arch == "wormhole_b0", name
        elif name.startswith("blackhole_"):
            assert arch == "blackhole", name
        else:
            assert arch == "", name  # other vendors' chips name none: no stack prices them per architecture
    assert set(ARCHITECTURES) == {f.name for f in dataclasses.fields(ArchDispatch)}
    assert set(ARCH_DISPATCH) <= set(FITTABLE)


def test_unknown_architecture_is_one_line_naming_the_field():
    with pytest.raises(ConfigError, match=r"^chip.architecture='blackhol' is invalid: .*did you mean 'blackhole'") as err:
        chip("blackhole_p150", architecture="blackhol")
    assert "\n" not in str(err.value)


def _good() -> dict:
    return yaml.safe_load((CONF / "stack" / "tt_cnn.yaml").read_text())


@pytest.mark.parametrize(("by_arch", "sources", "field"), [
    ({"grayskull": 3.0}, {}, "stack.dispatch_us_per_op_by_arch.grayskull"),
    ({"blackhole": -1.0}, {}, "stack.dispatch_us_per_op_by_arch.blackhole"),
    ({"blackhole": "fast"}, {}, "stack.dispatch_us_per_op_by_arch.blackhole"),
    ({"blackhole": 3.0}, {"dispatch_by_arch": " "}, "stack.sources.dispatch_by_arch"),
])
def test_bad_dispatch_per_architecture_is_one_line_naming_the_field(by_arch, sources, field):
    data = _good()
    data["dispatch_us_per_op_by_arch"] = by_arch
    data["sources"] = {**data["sources"], **sources}
    with pytest.raises((ConfigError, UnknownKeyError)) as err:
        stack_from_dict(data, "stack")
    message = str(err.value)
    assert "\n" not in message and field in message, message


def test_apply_stack_charges_the_dispatch_of_the_chips_architecture():
    # issue 17b3: tt_cnn ships no own Blackhole entry any more (an offset instead); an own entry takes precedence
    tt_cnn = load_stack("tt_cnn").with_values(**{"dispatch_us_per_op.blackhole": 18.78})
    wormhole, blackhole = chip("wormhole_n150"), chip("blackhole_p150")
    assert apply_stack(wormhole, tt_cnn).overheads.dispatch_us_per_op == pytest.approx(tt_cnn.dispatch_us_per_op)
    own = tt_cnn.dispatch_us_per_op_by_arch.blackhole
    assert own is not None and own != tt_cnn.dispatch_us_per_op
    assert apply_stack(blackhole, tt_cnn).overheads.dispatch_us_per_op == pytest.approx(own)
    # a chip naming no architecture, and an architecture without an entry or offset, pay dispatch_us_per_op
    unnamed = dataclasses.replace(blackhole, architecture="")
    assert apply_stack(unnamed, tt_cnn).overheads.dispatch_us_per_op == pytest.approx(tt_cnn.dispatch_us_per_op)
    assert tt_cnn.dispatch_for("wormhole_b0") == tt_cnn.dispatch_us_per_op
    # the chip's own overheads still add to the stack's (apply_stack's rule)
    with_own = dataclasses.replace(blackhole, overheads=dataclasses.replace(blackhole.overheads, dispatch_us_per_op=2.0))
    assert apply_stack(with_own, tt_cnn).overheads.dispatch_us_per_op == pytest.approx(own + 2.0)
    # a stack whose only time is per architecture is still applied (not the `none` shortcut)
    only = load_stack("none").with_values(**{"dispatch_us_per_op.blackhole": 4.0})
    assert apply_stack(blackhole, only).overheads.dispatch_us_per_op == pytest.approx(4.0)
    assert apply_stack(wormhole, only).overheads.dispatch_us_per_op == 0.0  # no wormhole_b0 entry: the 0 default


def test_a_blackhole_batch_pays_the_blackhole_dispatch_per_operator():
    """Sequential schedule, one chip: moving the Blackhole entry moves the latency by exactly the operator count
    times the change; the Wormhole chip's latency does not move."""
    cfg = model_config_from_dict({"name": "resnet50", "phase": "prefill", "batch": 2, "dtype": "bfp8"})

    def run(c, stack):
        return evaluate(DesignPoint(c, cfg, SchedulerConfig(name="sequential"), stack=stack), include_ops=False)

    tt_cnn = load_stack("tt_cnn").with_values(**{"dispatch_us_per_op.blackhole": 18.78})  # an own entry (17b3)
    moved = tt_cnn.with_values(**{"dispatch_us_per_op.blackhole": tt_cnn.dispatch_for("blackhole") + 10.0})
    bh, bh_moved = run(chip("blackhole_p150"), tt_cnn), run(chip("blackhole_p150"), moved)
    assert bh_moved["latency_s"] - bh["latency_s"] == pytest.approx(bh["model"]["ops"] * 10e-6, rel=1e-6)
    wh, wh_moved = run(chip("wormhole_n150"), tt_cnn), run(chip("wormhole_n150"), moved)
    assert wh_moved["latency_s"] == wh["latency_s"]
    for r in (bh, bh_moved, wh):
        assert r["latency_s"] >= r["roofline_latency_s"]


def test_with_values_and_value_read_and_write_an_architectures_dispatch():
    s = load_stack("tt_transformers")
    assert s.value("dispatch_us_per_op.blackhole") == s.dispatch_us_per_op  # no entry: the stack's dispatch
    t = s.with_values(**{"dispatch_us_per_op.blackhole": 7.5, "dispatch_us_per_op": 1.0})
    assert (t.value("dispatch_us_per_op.blackhole"), t.dispatch_us_per_op, t.dispatch_for("wormhole_b0")) == (
        7.5, 1.0, 1.0)
    assert t.dispatch_us_per_op_by_arch.set() == {"blackhole": 7.5}
    with pytest.raises(ValueError):
        s.with_values(**{"dispatch_us_per_op.grayskull": 1.0})
    assert "blackhole: fitted" in load_stack("tt_cnn").sources.of("dispatch_us_per_op.blackhole")


def test_an_architectures_dispatch_is_fitted_on_calibration_points_of_that_architecture_only():
    points = {p.id: p for p in suite.points()}
    cnn = load_stack("tt_cnn")
    # issue 17b3 (ninth session): tt_cnn fits only its Wormhole point now; a stack fitting its own Blackhole value
    # (as tt_cnn did until the eighth session) needs a Blackhole calibration point
    own = dataclasses.replace(cnn, calibration=dataclasses.replace(
        cnn.calibration, fit=("dispatch_us_per_op", "dispatch_us_per_op.blackhole")))
    assert {points[i].chip for i in cnn.calibration.points} == {"wormhole_n150"}
    # fitting the Blackhole value on the Wormhole point alone is refused (the loss would not depend on it)
    with pytest.raises(ConfigError, match="architecture blackhole"):
        suite.fit([points["n150_vit-base_b8"]], own)
    # a Blackhole point is predicted with the Blackhole value; under the shipped offset it follows the Wormhole fit
    bh = points["p150_resnet50_b32"]
    base = suite.predict(bh, cnn)
    assert suite.predict(bh, cnn.with_values(**{"dispatch_us_per_op.blackhole": cnn.dispatch_for("blackhole") + 1.0})
                         ) > base
    assert suite.predict(bh, cnn.with_values(dispatch_us_per_op=cnn.dispatch_us_per_op + 1.0)) > base
    pinned = cnn.with_values(**{"dispatch_us_per_op.blackhole": cnn.dispatch_for("blackhole")})
    assert suite.predict(bh, pinned.with_values(dispatch_us_per_op=cnn.dispatch_us_per_op + 1.0)) == base
    # the shipped value is the calibration's: the residual is ~0 (one point, one parameter)
    for pid in cnn.calibration.points:
        assert math.isclose(suite.predict(points[pid], cnn), points[pid].measured, rel_tol=0.005), pid
