"""The workload table of docs/workloads.md: per zoo model and phase, FLOPs, weight, KV-cache and activation
bytes, and the HBM bytes the compiled program moves on two chips with the cross-operator traffic analysis on
(activations stay on chip unless capacity forces a spill) and off (every activation round-trips HBM).

Run: python benchmarks/traffic_table.py   (or make traffic-table; prints a Markdown table, about a minute)
Sizes are each model's conf/model/<name>.yaml (batch 1, seq/kv 2048; BERT 512) with the elk_full scheduler, plus
the Elk paper's training study (Llama-2-13B, batch 2, seq 2048) with activations kept and recomputed, and
prefill with fused attention.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import MODELS, build_model, model_config_from_dict
from elk_dse.program import Program

ROOT = Path(__file__).resolve().parents[1]
CHIPS = ("mesh64", "inferentia_like")
# Both chips ship with 32 GiB of HBM; the table raises it so that every model fits (the question here is
# traffic, not capacity). SRAM, bandwidths and everything else are the shipped descriptions.
HBM_CAPACITY_GIB = 192


def gb(x: float) -> str:
    return f"{x / 1e9:.4g}"


def moved(graph, chip, cross_op: bool) -> tuple[str, str]:
    """(HBM GB the program moves, the residency the compiler chose), or the infeasibility reason."""
    program = compile_graph(graph, chip, SchedulerConfig(cross_op=cross_op))
    if not isinstance(program, Program):
        return program.reason, ""
    return gb(program.hbm_bytes), program.meta["residency"]


def main() -> None:
    chips = []
    for name in CHIPS:
        data = yaml.safe_load((ROOT / "conf" / "chip" / f"{name}.yaml").read_text())
        data["hbm"]["capacity_gib"] = HBM_CAPACITY_GIB
        chips.append(chip_from_dict(data))
    head = " | ".join(f"{c}: HBM GB on / off (residency)" for c in CHIPS)
    print(f"| model | phase | GFLOP | weights GB | KV GB | activations GB | {head} |")
    print("|---|---|---|---|---|---|" + "---|" * len(CHIPS))
    cases = []
    for name in sorted(MODELS):
        if name == "onnx":
            continue
        base = yaml.safe_load((ROOT / "conf" / "model" / f"{name}.yaml").read_text())
        cases += [({**base, "phase": phase}, phase) for phase in MODELS[name].phases]
        if "fused_attention" in base:  # prefill with FlashAttention-style fused attention
            cases.append(({**base, "phase": "prefill", "fused_attention": True}, "prefill fused"))
    llama = yaml.safe_load((ROOT / "conf" / "model" / "llama2_13b.yaml").read_text())
    for recompute in (False, True):
        study = {**llama, "phase": "train", "batch": 2, "seq_len": 2048, "recompute": recompute}
        cases.append((study, f"train b2{' recompute' if recompute else ''}"))
    for data, label in cases:
        t0 = time.perf_counter()
        g = build_model(model_config_from_dict(data))
        cells = []
        for chip in chips:
            (on, policy), (off, _) = moved(g, chip, True), moved(g, chip, False)
            cells.append(f"{on} / {off} ({policy})" if policy else f"{on} / {off}")
        print(f"| {data['name']} | {label} | {g.flops / 1e9:.4g} | {gb(g.weight_bytes)} | {gb(g.kv_cache_bytes)} | "
              f"{gb(g.activation_bytes)} | " + " | ".join(cells) + " |", flush=True)
        print(f"{data['name']} {label}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
