"""Optuna RDB storage against a real PostgreSQL server that the test starts and stops itself."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import optuna
import pytest

from elk_dse.cli import main
from elk_dse.results.store import ResultStore


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    candidates = ([found] if found else []) + sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[0]).parent if candidates else None


@pytest.fixture
def postgres_url():
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed; .ci/run installs them")
    pytest.importorskip("psycopg", reason="psycopg 3 (the dev extra) is needed to talk to PostgreSQL")
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="elk_pg_"))
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    data, sock = root / "data", root
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                    f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"  # the URL users type
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_sweep_with_postgresql_storage_resumes(postgres_url, tmp_path, capsys):
    out = tmp_path / "pg"
    args = ["sweep", "+chip=mesh64", f"out={out}", "search.n_trials=4", "search.batch_size=2", "search.workers=0",
            f"search.storage={postgres_url}", "progress=false", "report=false"]
    assert main(args) == 0
    study = optuna.load_study(study_name="elk_dse", storage=postgres_url)
    assert len(study.trials) == 4
    assert main(args) == 0
    assert "0 new trials" in capsys.readouterr().out
    assert list(ResultStore(out).read()["trial"]) == list(range(4))
    assert not (out / "optuna.journal").exists()  # the RDB, not the journal, holds the study
