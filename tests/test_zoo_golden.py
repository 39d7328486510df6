"""The zoo's numbers must not move: FLOPs, bytes, parameters, operator digest and analytic latency on mesh64 (HBM raised to 512 GiB) of
every shipped model (decode and prefill where it has them) equal tests/golden/zoo.json, written by the code
before the zoo became data (regenerate with tests/golden/make_zoo_golden.py only for an intended change)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from tests_paths import ROOT

_spec = importlib.util.spec_from_file_location("make_zoo_golden", ROOT / "tests" / "golden" / "make_zoo_golden.py")
assert _spec is not None and _spec.loader is not None
golden_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden_mod)

GOLDEN = json.loads((ROOT / "tests" / "golden" / "zoo.json").read_text())


def test_golden_covers_every_zoo_model():
    names = {key.split("/")[0] for key in GOLDEN}
    assert names == set(golden_mod.zoo_models())
    assert len(GOLDEN) >= 20


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_zoo_model_numbers_unchanged(key):
    name, phase = key.split("/")
    got = golden_mod.entry(name, phase)
    # An infeasible entry (llama3_1_405b does not fit the golden's 512 GiB) carries NaN latency and bytes, and
    # NaN != NaN: compare the JSON text, which writes NaN as NaN on both sides.
    assert json.dumps(got, sort_keys=True) == json.dumps(GOLDEN[key], sort_keys=True), (got, GOLDEN[key])
