"""Perfetto traces of the event simulator (issue 19): core tracks, link and HBM-channel counter tracks,
slice args with FLOPs, bytes and plan, and `evaluate` saying where it wrote the trace. Structural checks on
the JSON the CLI writes (Chrome trace-event format, what ui.perfetto.dev opens)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from elk_dse.cli import main


def _run(tmp_path: Path, capsys, *args: str) -> tuple[list[dict], dict, str]:
    path = tmp_path / "sub" / "trace.json"
    assert main(["evaluate", *args, "sim=event", "format=json", f"trace={path}"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout stays the JSON contract; the path goes to stderr
    return json.loads(path.read_text())["traceEvents"], result, captured.err


def _thread_names(events: list[dict], pid: int) -> list[str]:
    return [e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == pid]


def _counters(events: list[dict]) -> dict[str, list[dict]]:
    tracks: dict[str, list[dict]] = {}
    for e in events:
        if e["ph"] == "C":
            tracks.setdefault(e["name"], []).append(e)
    return tracks


def _check_common(events: list[dict], result: dict, num_cores: int) -> dict[str, list[dict]]:
    # Every slice well formed, inside the pass.
    latency_us = result["latency_s"] * 1e6
    for e in events:
        if e["ph"] == "X":
            assert e["dur"] >= 0 and e["ts"] >= 0 and e["ts"] + e["dur"] <= latency_us * (1 + 1e-9) + 1e-6
    # Operator slices carry FLOPs, bytes and the plan; their FLOPs add up to the evaluation's.
    ops = [e for e in events if e["ph"] == "X" and e["pid"] == 1 and e["tid"] == 1]
    assert len(ops) == len(result["ops"])
    for e in ops:
        for key in ("flops", "hbm_bytes", "noc_bytes", "chip_link_bytes", "plan", "cores_used", "kind"):
            assert key in e["args"], key
        assert e["args"]["plan"].startswith("spatial ")
    assert sum(e["args"]["flops"] for e in ops) == pytest.approx(result["flops"], rel=1e-9)
    # Core tracks cover every core exactly once, in id order.
    covered = []
    for name in _thread_names(events, 2):
        m = re.fullmatch(r"(?:chip (\d+) )?cores? (\d+)(?:-(\d+))?", name)
        assert m, name
        a, b = int(m.group(2)), int(m.group(3) or m.group(2))
        covered.append(b - a + 1)
    assert sum(covered) == num_cores
    # Counter tracks: links and HBM channels, utilization within 0..1 (a resource never runs above capacity),
    # and both actually used at some point of the pass.
    tracks = _counters(events)
    for kind in ("link", "hbm_channel"):
        mine = {n: v for n, v in tracks.items() if n.startswith(kind + ": ")}
        assert mine, f"no {kind} counter track"
        values = [x for v in mine.values() for e in v for x in e["args"].values()]
        assert all(0.0 <= x <= 1.0 + 1e-9 for x in values)
        assert max(values) > 0.0
    return tracks


def test_small_chip_trace_has_a_track_per_core_and_link_and_hbm_counters(tmp_path, capsys):
    events, result, err = _run(tmp_path, capsys, "+chip=mesh64", "model.kv_len=256")
    assert f"trace: wrote {(tmp_path / 'sub' / 'trace.json').resolve()}" in err
    _check_common(events, result, 64)
    names = _thread_names(events, 2)
    assert len(names) == 64 and names[0] == "core 00" and names[-1] == "core 63"  # all cores when small
    # Per-core slices: core 0 computes in every operator that computes.
    computing = {e["args"]["op"] for e in events if e["ph"] == "X" and e["pid"] == 1 and e["tid"] == 3}
    core0 = [e for e in events if e["ph"] == "X" and e["pid"] == 2 and e["tid"] == 10]
    assert {e["name"] for e in core0} == computing
    assert all(e["args"]["cores_busy"] == 1 for e in core0)


@pytest.mark.slow
def test_ipu_pod4_llama2_13b_trace_has_link_and_hbm_counter_tracks(tmp_path, capsys):
    events, result, _ = _run(tmp_path, capsys, "+chip=ipu_pod4", "model=llama2_13b")
    tracks = _check_common(events, result, 5888)
    names = _thread_names(events, 2)
    assert len(names) <= 64 and all(n.startswith("chip ") for n in names)  # grouped per chip on a big system
    assert any(n.startswith("chip_link: ") for n in tracks)  # the IPU-Links between the four chips
    for chip in range(4):
        assert any(n.startswith(f"hbm_channel: chip {chip} ") for n in tracks)
        assert any(n.startswith(f"link: chip {chip} ") for n in tracks)
