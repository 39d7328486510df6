"""Issue 21's examples that are not typed on a command line: files that lie, disks that fill, folders that
cannot be written. Each asserts the exit status and the shape of the one line (tests/bad_input_cases.py holds
the typed ones)."""

from __future__ import annotations

import errno
import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elk_dse.cli import main
from elk_dse.results.store import ResultStore

FAST = ["+chip=mesh64", "search.batch_size=4", "search.workers=0", "progress=false"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> pathlib.Path:
    """A finished 4-trial sweep; tests copy it before changing it."""
    out = tmp_path_factory.mktemp("hostile") / "s"
    assert main(["sweep", *FAST, f"out={out}", "search.n_trials=4", "report=false"]) == 0
    return out


def _copy(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _report(folder: pathlib.Path, capsys) -> tuple[int, str, str]:
    code = main(["report", str(folder)])
    cap = capsys.readouterr()
    html = (folder / "report" / "report.html").read_text() if (folder / "report" / "report.html").exists() else ""
    return code, cap.err, html


def test_report_skips_a_parquet_part_of_another_schema_naming_it(finished, tmp_path, capsys):
    folder = _copy(finished, tmp_path / "s")
    pq.write_table(pa.table({"x": [1, 2]}), folder / "results.parquet" / "part-99999999-99999999.parquet")
    code, err, html = _report(folder, capsys)
    assert code == 0 and err == ""
    assert "part-99999999-99999999.parquet: not a part of a sweep (no column trial, status, feasible ...); skipped" \
        in html
    assert "no trials yet" not in html


def test_report_reads_a_results_parquet_file(finished, tmp_path, capsys):
    folder = _copy(finished, tmp_path / "s")
    [part] = (folder / "results.parquet").glob("part-*.parquet")
    table = pq.read_table(part)
    import shutil

    shutil.rmtree(folder / "results.parquet")
    pq.write_table(table, folder / "results.parquet")
    code, err, html = _report(folder, capsys)
    assert code == 0
    assert "results.parquet is a single file, not the directory of parts a sweep writes; read as one table" in html
    assert "no trials yet" not in html


def test_report_shows_rows_only_in_the_row_log(finished, tmp_path, capsys):
    folder = _copy(finished, tmp_path / "s")
    rows = ResultStore(folder).read().to_dict("records")
    import shutil

    shutil.rmtree(folder / "results.parquet")
    (folder / "pending_rows.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    code, err, html = _report(folder, capsys)
    assert code == 0
    assert "4 rows are only in pending_rows.jsonl (a sweep stopped mid-batch): shown" in html
    assert "no trials yet" not in html


def _enospc_under(monkeypatch, fragment: str) -> None:
    real = pathlib.Path.write_text

    def write_text(self, *args, **kwargs):
        if fragment in str(self):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)


@pytest.mark.parametrize("fragment", ["designs", "report.html"])
def test_disk_full_after_the_search_is_exit_74_and_the_rerun_completes(tmp_path, capsys, monkeypatch, fragment):
    out = tmp_path / "s"
    _enospc_under(monkeypatch, fragment)
    code = main(["sweep", *FAST, f"out={out}", "search.n_trials=4"])
    err = capsys.readouterr().err.strip()
    assert code == 74
    assert len(err.splitlines()) == 1
    assert err.startswith("error: ") and fragment in err and "No space left on device" in err
    assert len(ResultStore(out).read()) == 4  # the finished rows are kept
    monkeypatch.undo()
    assert main(["sweep", *FAST, f"out={out}", "search.n_trials=4"]) == 0
    assert "0 new trials" in capsys.readouterr().out
    assert (out / "report" / "report.html").exists()


def test_report_into_a_read_only_folder_is_exit_74(finished, tmp_path, capsys, monkeypatch):
    folder = _copy(finished, tmp_path / "s")
    real = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name == "report":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    code = main(["report", str(folder)])
    err = capsys.readouterr().err.strip()
    assert code == 74
    assert err == (f"error: {folder / 'report'}: cannot write or read (Read-only file system); free space or fix "
                   "permissions, then rerun the same command (a sweep keeps its finished rows and resumes)")


@pytest.mark.parametrize("override", ["chip.chips.count=2", "+chip.chips.count=2"])
def test_documented_chips_key_works_on_a_single_chip_config(capsys, override):
    """README documents chip.chips.count; mesh64's YAML has no chips section: both spellings work."""
    assert main(["evaluate", "+chip=mesh64", override, "model=bert_base", "model.seq_len=32", "format=json"]) == 0
    assert json.loads(capsys.readouterr().out)["chip"]["chips"]["count"] == 2


@pytest.mark.parametrize("name", ["mesh", "torus", "ring"])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 9, 16])
def test_grid_hop_sums_in_closed_form_equal_the_distance_matrix(name, size):
    """A ring of 65,536 chips once asked numpy for a 65,536 x 65,536 matrix: grids now sum per-axis hops in
    closed form, which must equal the matrix they replace."""
    from elk_dse.hw.topology import Topology, make_topology

    grid = (size,) if name == "ring" else (size, 3)
    topo = make_topology(name, grid)
    for axis in range(len(grid)):
        assert topo._axis_hop_stats(axis) == Topology._axis_hop_stats(topo, axis)


def test_budget_on_a_metric_the_design_does_not_produce_is_an_infeasible_row(tmp_path, capsys):
    """A NaN constraint metric (event_latency_s under the analytic simulator) once crashed inside Optuna; now
    each such trial is an INFEASIBLE row saying why, and the sweep ends normally."""
    space = tmp_path / "space.yaml"
    space.write_text("objectives: [{metric: latency_s}]\nconstraints: [{metric: event_latency_s, max: 1.0}]\n"
                     "params: {chip.cores.sram_kib: {choices: [512, 1024]}}\n")
    out = tmp_path / "s"
    assert main(["sweep", *FAST, f"sweep={space}", f"out={out}", "search.n_trials=4", "report=false"]) == 0
    rows = ResultStore(out).read()
    assert set(rows["status"]) == {"INFEASIBLE"} and set(rows["infeasible_reason"]) == {"budget_unknown"}
    assert rows["error"].str.startswith("budget metric event_latency_s is not a finite number").all()


def test_a_large_seed_runs(tmp_path):
    """search.seed=5000 was reported as 'cannot open the Optuna storage' (numpy's seed range overflowed)."""
    out = tmp_path / "s"
    assert main(["sweep", *FAST, f"out={out}", "search.n_trials=4", "search.seed=5000", "report=false"]) == 0
    assert set(ResultStore(out).read()["seed"]) == {5000}


def test_onnx_whose_external_data_is_a_sparse_gigabyte_is_never_read(tmp_path):
    """A 158-byte ONNX naming a 1 GiB sparse external-data file took 5 GiB of memory: sizes come from the
    metadata, the data is never read (the file's pages are never touched: it stays sparse)."""
    import subprocess
    import sys

    import onnx
    from onnx import TensorProto, helper

    folder = tmp_path / "m"
    folder.mkdir()
    data = folder / "weights.bin"
    with open(data, "wb") as fh:
        fh.truncate(2**30)  # sparse: no blocks on disk
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[16384, 16384])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", str(2**30))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16384])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16384])], [w])
    path = folder / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    proc = subprocess.run([sys.executable, "-c", "import json, sys\nfrom elk_dse.cli import main\n"
                           f"code = main(['evaluate', '+chip=mesh64', 'model=onnx', 'model.path={path}', "
                           "'model.phase=prefill', 'format=json'])\n"
                           # VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into ru_maxrss
                           # across exec, so a large pytest process would look like a large child
                           "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0]\n"
                           "print(json.dumps({'code': code, 'maxrss_kib': int(hwm.split()[1])}), file=sys.stderr)"],
                          capture_output=True, text=True, timeout=300)
    import json as _json

    outcome = _json.loads(proc.stderr.strip().splitlines()[-1])
    assert outcome["code"] == 0, proc.stderr
    assert _json.loads(proc.stdout)["weight_bytes"] == 2 * 16384 * 16384  # fp16 weights from the shape
    assert outcome["maxrss_kib"] < 2**30 // 1024 // 2, outcome  # well under the 1 GiB file


@pytest.mark.parametrize("text, needle", [("name: bad\ncores: {count: 4\n", "line 3"),
                                          ("name: bad\nname: again\n", "found duplicate key name")])
def test_a_chip_file_that_is_not_valid_yaml_is_one_line(capsys, text, needle):
    """An architect's own chip file in conf/chip with a YAML error was a multi-line 'internal error'."""
    import importlib.resources
    import os

    folder = pathlib.Path(str(importlib.resources.files("elk_dse.conf") / "chip"))
    path = folder / f"zz_test_bad_{os.getpid()}.yaml"
    path.write_text(text)
    try:
        code = main(["evaluate", f"+chip={path.stem}"])
    finally:
        path.unlink()
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: config file='{path}, line ") and "not valid YAML" in err and needle in err
