"""A new user's trial on systems and files nobody tuned for (issue 17, ninth session, 17u): each test failed
before its fix (docs/reliability.md, "New-user trial, ninth session")."""

from __future__ import annotations

import elk_dse
from elk_dse.ir.graph import Graph


def test_a_model_far_beyond_hbm_is_refused_before_any_instance_is_walked(monkeypatch):
    """num_hidden_layers=1000000 (a typo of 10) took 170 s and 4.7 GB to become `hbm_capacity`: the compiler
    walked every one of the ~25 million operator instances before comparing the stored bytes with the HBM.
    The totals are per layer x repeat, so the refusal must not iterate instances at all."""

    def walked(self):
        raise AssertionError("an instance walk before the capacity check")

    monkeypatch.setattr(Graph, "instances", walked)
    r = elk_dse.evaluate(chip="mesh64", model="llama2_7b",
                         overrides={"model.arch.num_hidden_layers": 1_000_000})
    assert not r.feasible
    assert r.infeasible_reason == "hbm_capacity"
    assert "HBM holds 32 GiB" in r.infeasible_detail
