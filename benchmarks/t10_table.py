"""The T10 table of docs/t10.md: models compiled entirely on chip (IPU MK2), compute-shift vs replicate plans,
and the global trade-off against fastest-only and smallest-only plan choices.

Run: python benchmarks/t10_table.py   (prints a Markdown table)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from elk_dse.compiler.compile import tradeoff_groups
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.compiler.tradeoff import fastest, requirement, smallest, total_seconds, trade_off
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, build_model

CONF = Path(__file__).resolve().parents[1] / "conf" / "chip"
CASES = [
    ModelConfig("bert_large", phase="prefill", batch=8, seq_len=384),
    ModelConfig("bert_large", phase="prefill", batch=4, seq_len=512),
    ModelConfig("bert_large", phase="prefill", batch=16, seq_len=128),
    ModelConfig("vit_large", phase="prefill", batch=8),
    ModelConfig("vit_large", phase="prefill", batch=16),
]


def ms(x: float) -> str:
    return f"{x * 1e3:.2f}" if x == x else "infeasible"


def main() -> None:
    chip = chip_from_dict(yaml.safe_load((CONF / "ipu_mk2.yaml").read_text()))
    sram = chip.sram_bytes_per_core
    print("| model | T10 latency ms | SRAM used KiB/core | replicate latency ms | T10 gain | "
          "fastest-only | smallest-only ms |")
    print("|---|---|---|---|---|---|---|")
    for cfg in CASES:
        graph = build_model(cfg)
        t10 = evaluate_graph(graph, chip, SchedulerConfig(plans="t10"), include_ops=False)
        rep = evaluate_graph(graph, chip, SchedulerConfig(plans="replicate"), include_ops=False)
        groups = tradeoff_groups(graph, chip)
        fast = fastest(groups)
        small = smallest(groups)
        fast_fits = requirement(groups, fast) <= sram
        result = trade_off(groups, sram)
        gain = (f"{rep['latency_s'] / t10['latency_s']:.2f}x" if rep["feasible"] and t10["feasible"]
                else ("fits only with T10" if t10["feasible"] else "-"))
        fast_txt = (f"{total_seconds(groups, fast) * 1e3:.2f} ms (fits)" if fast_fits
                    else f"needs {requirement(groups, fast) / 1024:.0f} KiB")
        small_txt = ms(total_seconds(groups, small)) if requirement(groups, small) <= sram else "infeasible"
        used = t10["sram_used_bytes_per_core"] / 1024 if t10["feasible"] else float("nan")
        name = f"{cfg.name} b{cfg.batch}" + (f" s{cfg.seq_len}" if cfg.name == "bert_large" else "")
        print(f"| {name} | {ms(t10['latency_s'])} | {used:.0f} | {ms(rep['latency_s'])} | {gain} | {fast_txt} | "
              f"{small_txt} |")
        del result


if __name__ == "__main__":
    main()
