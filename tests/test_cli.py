"""The command line, driven for real: composition, the JSON contract, one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from elk_dse.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_groups_and_choices(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for word in ("chip", "mesh64", "ipu_pod4", "model", "llama2_13b", "resnet50", "scheduler", "sequential",
                 "sim", "analytic", "sweep", "default"):
        assert word in out


def test_evaluate_json_is_exactly_one_object_with_the_contract(capsys):
    code, out, _ = run(capsys, "evaluate", "+chip=mesh64", "model=llama2_7b", "model.batch=2", "format=json")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    for key in ("feasible", "infeasible_reason", "latency_s", "roofline_latency_s", "flops", "hbm_bytes",
                "weight_bytes", "kv_cache_bytes", "noc_bytes", "chip", "model", "scheduler", "ops"):
        assert key in result
    assert result["feasible"] is True
    assert result["latency_s"] >= result["roofline_latency_s"] > 0
    assert result["model"]["batch"] == 2 and result["chip"]["name"] == "mesh64"
    op = result["ops"][0]
    assert {"name", "kind", "dims", "start_s", "end_s", "plan"} <= set(op)
    assert len(result["ops"]) == result["model"]["ops"]


def test_chip_without_plus_and_chip_field_override(capsys):
    code, out, _ = run(capsys, "evaluate", "chip=mesh64", "chip.cores.sram_kib=2048", "format=json")
    assert code == 0
    assert json.loads(out)["chip"]["cores"]["sram_kib"] == 2048


def test_evaluate_text_summary(capsys):
    code, out, _ = run(capsys, "evaluate", "+chip=ipu_pod4", "model=llama2_13b", "model.batch=8")
    assert code == 0
    assert "latency" in out and "roofline" in out and "ipu_pod4" in out


def test_infeasible_point_is_a_result_not_an_error(capsys):
    code, out, _ = run(capsys, "evaluate", "+chip=mesh64", "model=llama2_70b", "format=json")
    assert code == 0
    result = json.loads(out)
    assert result["feasible"] is False and result["infeasible_reason"] == "hbm_capacity"
    assert result["latency_s"] is None


@pytest.mark.parametrize("args, needle", [
    (["evaluate"], "no chip chosen"),
    (["evaluate", "+chip=mesh65"], "did you mean 'mesh64'"),
    (["evaluate", "+chip=mesh64", "model=llama3"], "model='llama3'"),
    (["evaluate", "+chip=mesh64", "model.batch=0"], "model.batch=0"),
    (["evaluate", "+chip=mesh64", "model.batch=-3"], "model.batch=-3"),
    (["evaluate", "+chip=mesh64", "model.btch=4"], "did you mean 'batch'"),
    (["evaluate", "+chip=mesh64", "chip.cores.grid=[8,9]"], "chip.cores.grid"),
    (["evaluate", "+chip=mesh64", "chip.cores.sram_kib=0"], "chip.cores.sram_kib=0"),
    (["evaluate", "+chip=mesh64", "chip.hbm.bandwidth_gb_s=0"], "chip.hbm.bandwidth_gb_s"),
    (["evaluate", "+chip=mesh64", "chip.hbm.attach=[0,500]"], "chip.hbm.attach"),
    (["evaluate", "+chip=mesh64", "model=bert_large", "model.phase=decode"], "model.phase"),
    (["evaluate", "+chip=mesh64", "scheduler=elk"], "scheduler='elk'"),
    (["evaluate", "+chip=mesh64", "format=xml"], "format='xml'"),
    (["evaluate", "+chip=mesh64", "foo=1"], "unknown key 'foo'"),
    (["evalute", "+chip=mesh64"], "did you mean 'evaluate'"),
    (["sweep", "+chip=mesh64", "sweep=nosuch"], "sweep='nosuch'"),
    (["sweep", "+chip=mesh64", "search.n_trials=0"], "search.n_trials=0"),
    (["sweep", "+chip=ipu_mk2"], "hbm"),
    (["report", "/nonexistent/folder"], "not a sweep folder"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, needle):
    code, out, err = run(capsys, *args)
    assert code == 2, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert needle in err
    assert "Traceback" not in err


def test_unwritable_out_folder(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, "sweep", "+chip=mesh64", f"out={blocker}/sweep", "search.workers=0")
    assert code == 2 and "out=" in err and "writable" in err


def test_real_entry_point_exit_status():
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "elk_dse", "evaluate", "+chip=nope"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "chip='nope'" in proc.stderr
