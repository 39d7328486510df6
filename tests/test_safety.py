"""Untrusted files: configs and sweep files are data, never code; user strings reach the HTML report escaped."""

from __future__ import annotations

from pathlib import Path

from elk_dse.cli import main


def test_sweep_file_with_a_python_object_tag_is_rejected_not_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    space = tmp_path / "space.yaml"
    space.write_text(f"description: !!python/object/apply:os.system ['touch {marker}']\n"
                     "objectives: [{metric: latency_s}]\nparams:\n  chip.cores.sram_kib: {choices: [512]}\n")
    code = main(["sweep", "+chip=mesh64", f"sweep={space}", f"out={tmp_path / 'o'}", "search.workers=0",
                 "progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and "not valid YAML" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


def test_target_keys_are_never_instantiated(tmp_path, capsys):
    code = main(["evaluate", "+chip=mesh64", "+chip.cores._target_=os.system"])
    err = capsys.readouterr().err
    assert code == 2 and "_target_" in err


def test_user_strings_reach_the_report_escaped(tmp_path, capsys):
    out = tmp_path / "s"
    hostile = "<script>alert(1)</script>"
    assert main(["sweep", "+chip=mesh64", f"chip.name='{hostile}'", f"chip.description='{hostile}'", f"out={out}",
                 "search.n_trials=4", "search.batch_size=4", "search.workers=0", "progress=false"]) == 0
    html = (out / "report" / "report.html").read_text()
    assert hostile not in html and "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text


def test_report_of_a_folder_with_a_hostile_sweep_json(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", "+chip=mesh64", f"out={out}", "search.n_trials=4", "search.batch_size=4",
                 "search.workers=0", "progress=false", "report=false"]) == 0
    meta = (out / "sweep.json").read_text().replace('"sampler": "nsga2"', '"sampler": "<img src=x onerror=alert(1)>"')
    (out / "sweep.json").write_text(meta)
    assert main(["report", str(out)]) == 0
    html = Path(out / "report" / "report.html").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
