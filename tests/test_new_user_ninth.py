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


def test_a_chip_file_of_the_users_evaluates_as_the_packaged_chip_would(tmp_path):
    """`+chip=path/to/chip.yaml` (a system nobody wrote a packaged file for) was refused ("one of
    blackhole_p150, ..."): a user had to edit the installed package. The same description from a file of the
    user's gives the packaged chip's numbers, its overrides apply, and its default_stack is taken."""
    import importlib.resources

    text = (importlib.resources.files("elk_dse.conf") / "chip" / "wormhole_n300.yaml").read_text()
    path = tmp_path / "my_n300.yaml"
    path.write_text(text.replace("name: wormhole_n300", "name: my_n300"))
    kw = dict(model="llama3_2_1b", overrides={"chip.chips.parallelism": "pp", "model.kv_len": 128})
    mine, shipped = elk_dse.evaluate(chip=str(path), **kw), elk_dse.evaluate(chip="wormhole_n300", **kw)
    assert mine.feasible and shipped.feasible
    assert mine.latency_s == shipped.latency_s
    assert mine["chip"]["name"] == "my_n300"
    assert mine["parallelism"]["strategy"] == "pp"
    assert mine["stack"]["name"] == "tt_transformers"  # the file's default_stack


def test_a_chip_file_that_is_not_a_chip_is_one_line(tmp_path, capsys):
    from elk_dse.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: chip\xff\n")
    assert main(["evaluate", f"+chip={bad}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: chip='{bad}' is invalid: not UTF-8 text"]
