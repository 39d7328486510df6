"""Packaging: a non-editable install carries conf/ and sweeps/ and runs from anywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_package_list_matches_the_source_tree():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "elk_dse").rglob("__init__.py")}
    assert on_disk | {"elk_dse.conf", "elk_dse.sweeps"} == listed


def test_wheel_ships_configs_and_runs_outside_the_repo(tmp_path):
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".hypothesis", ".*cache")

    def ignore(folder, names):
        return set(skip(folder, names)) | ({"results"} if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, src, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("elk_dse-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        z.extractall(site)
    for needed in ("elk_dse/conf/config.yaml", "elk_dse/conf/chip/mesh64.yaml", "elk_dse/conf/model/llama2_7b.yaml",
                   "elk_dse/sweeps/default.yaml", "elk_dse/conf/chip/graphs/clusters_mesh.yaml"):  # graphs: issue 16
        assert needed in names
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONWARNINGS": "ignore"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", "import elk_dse, sys; print(elk_dse.__file__)"], cwd=work,
                          env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.strip().startswith(str(site))
    proc = subprocess.run([sys.executable, "-m", "elk_dse", "evaluate", "+chip=mesh64", "model=llama2_7b",
                           "format=json"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["feasible"] is True
