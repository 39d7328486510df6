"""The scheduler refactor (issue 18) does not move any scheduler's latency: tests/golden/schedulers.json was
written by tests/golden_schedulers.py from the code before the schedulers became plug-ins."""

from __future__ import annotations

import json

import pytest
from golden_schedulers import GOLDEN, cases, latencies


@pytest.fixture(scope="module")
def now():
    return latencies()


@pytest.mark.parametrize("case", list(cases()))
def test_latencies_match_the_golden_record(case, now):
    golden = json.loads(GOLDEN.read_text())[case]
    for name, value in golden.items():
        assert now[case][name] == pytest.approx(value, rel=1e-9), (case, name)


def test_event_simulator_latencies_match_the_golden_record():
    from golden_schedulers import EVENT_GOLDEN, event_latencies

    golden = json.loads(EVENT_GOLDEN.read_text())
    now = event_latencies()
    for case, values in golden.items():
        for name, value in values.items():
            assert now[case][name] == pytest.approx(value, rel=1e-9), (case, name)
