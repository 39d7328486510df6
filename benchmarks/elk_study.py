"""Elk study: table and figures from the elk_study sweep, plus trend figures evaluated directly.

    python -m elk_dse sweep +chip=ipu_pod4 sweep=elk_study search.sampler=grid out=results/elk_study
    python benchmarks/elk_study.py results/elk_study        # writes docs/elk_study.md and docs/img/elk_*.png
    python -m elk_dse sweep ... conventions=paper out=results/elk_study_paper   # the same under the artifact's
    python benchmarks/elk_study.py results/elk_study docs results/elk_study_paper  # conventions (issue 18)

(`make elk-study` runs both.) Units: seconds in the data, milliseconds in the table; bandwidths in decimal
TB/s (1e12 B/s).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from elk_dse.compiler.schedulers import SchedulerConfig  # noqa: E402
from elk_dse.evaluate import evaluate_graph  # noqa: E402
from elk_dse.hw.chip import chip_from_dict  # noqa: E402
from elk_dse.models import ModelConfig, build_model  # noqa: E402
from elk_dse.results.store import ResultStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCHEDULERS = ["sequential", "basic", "static", "elk_dyn", "elk_full", "ideal"]
COLORS = dict(zip(SCHEDULERS, ["#7f7f7f", "#bcbd22", "#17becf", "#1f77b4", "#d62728", "#2ca02c"], strict=True))


def study_table(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Latency per point and scheduler (ms), ideal/latency, checks; returns the frame and Markdown."""
    df = df[df["status"] == "COMPLETE"]
    key = ["param.model.name", "param.model.batch", "param.model.kv_len"]
    lat = df.pivot_table(index=key, columns="param.scheduler.name", values="metric.latency_s")[SCHEDULERS]
    bound = df.groupby(key)["metric.roofline_latency_s"].max()
    lines = ["| model | batch | KV | bound ms | " + " | ".join(f"{s} ms" for s in SCHEDULERS) + " | "
             + " | ".join(f"ideal/{s}" for s in SCHEDULERS[:-1]) + " |",
             "|---" * (4 + 2 * len(SCHEDULERS) - 1) + "|"]
    for idx, row in lat.iterrows():
        ms = " | ".join(f"{row[s] * 1e3:.2f}" for s in SCHEDULERS)
        ratio = " | ".join(f"{row['ideal'] / row[s]:.3f}" for s in SCHEDULERS[:-1])
        lines.append(f"| {idx[0]} | {int(idx[1])} | {int(idx[2])} | {bound[idx] * 1e3:.2f} | {ms} | {ratio} |")
    mean_ratio = {s: float((lat["ideal"] / lat[s]).mean()) for s in SCHEDULERS}
    mean_lat = {s: float(lat[s].mean()) for s in SCHEDULERS}
    lines.append("| **mean** | | | | " + " | ".join(f"{mean_lat[s] * 1e3:.2f}" for s in SCHEDULERS) + " | "
                 + " | ".join(f"**{mean_ratio[s]:.3f}**" for s in SCHEDULERS[:-1]) + " |")
    static_wins = [f"{m} b{int(b)} kv{int(k)}" for (m, b, k), row in lat.iterrows()
                   if row["static"] < row["elk_dyn"] * (1 - 1e-9)]
    checks = {
        "points": len(lat),
        "elk_full <= elk_dyn at every point": bool((lat["elk_full"] <= lat["elk_dyn"] * (1 + 1e-9)).all()),
        "mean order elk_dyn < static < basic < sequential": mean_lat["elk_dyn"] < mean_lat["static"]
        < mean_lat["basic"] < mean_lat["sequential"],
        "every scheduler >= roofline bound at every point": bool(
            (lat.min(axis=1) >= bound.reindex(lat.index) * (1 - 1e-9)).all()),
        "elk_full / ideal mean (ideal/latency)": round(mean_ratio["elk_full"], 4),
        "points where static < elk_dyn": f"{len(static_wins)} ({', '.join(static_wins)})",
        "points where elk_full < elk_dyn": int((lat["elk_full"] < lat["elk_dyn"] * (1 - 1e-9)).sum()),
    }
    lines += ["", "Checks: " + "; ".join(f"{k}: {v}" for k, v in checks.items())]
    return lat, "\n".join(lines)


def draw_study(lat: pd.DataFrame, path: Path, conventions: str = "default") -> None:
    labels = [f"{m.replace('llama2_', 'L2-').replace('gemma2_', 'G2-').replace('opt_', 'OPT-')} b{int(b)} kv{int(k)}"
              for m, b, k in lat.index]
    x = np.arange(len(lat))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(15, 8.5), sharex=True, constrained_layout=True)
    width = 0.13
    for j, s in enumerate(SCHEDULERS):
        ax1.bar(x + (j - 2.5) * width, lat[s] * 1e3, width, label=s, color=COLORS[s])
        if s != "ideal":
            ax2.plot(x, lat["ideal"] / lat[s], "o-", color=COLORS[s], label=s, ms=4)
    ax1.set_ylabel("latency per decode step [ms]")
    ax1.set_yscale("log")
    ax1.legend(ncol=6, fontsize=9, loc="upper left")
    ax1.set_title("Elk study on ipu_pod4 (5,888 cores, 624 KiB/core, 16 TB/s HBM): decode latency per scheduler"
                  + ("" if conventions == "default" else f" (conventions={conventions})"))
    ax2.axhline(0.94, color="k", ls=":", lw=1)
    ax2.text(len(lat) - 0.5, 0.945, "0.94 (Elk paper, elk_full)", ha="right", va="bottom", fontsize=8)
    ax2.set_ylabel("ideal latency / latency")
    ax2.set_ylim(0, 1.05)
    ax2.set_xticks(x, labels, fontsize=8, rotation=40, ha="right")
    ax2.legend(ncol=5, fontsize=9, loc="lower left")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pod4(**over) -> dict:
    base = yaml.safe_load((ROOT / "conf" / "chip" / "ipu_pod4.yaml").read_text())
    out = copy.deepcopy(base)
    for dotted, value in over.items():
        node = out
        parts = dotted.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return out


def mesh(base: dict) -> dict:
    base = copy.deepcopy(base)
    base["interconnect"]["topology"] = "mesh"
    base["cores"]["grid"] = [32, base["cores"]["count"] // 32]
    base["hbm"]["attach"] = "edge"
    # A mesh link must carry what an all-to-all port did plus through-traffic: 32 B/cycle per link (the mesh64
    # class of NoC); at 4 B/cycle the edge-fed mesh cannot deliver HBM data faster than ~0.1 TB/s.
    base["interconnect"]["link_bytes_per_cycle"] = 32
    return base


TREND_SCHEDULERS = ["sequential", "elk_dyn", "elk_full", "ideal"]


def trend(graph, chips: list[tuple[float, dict]]) -> dict[str, list[float]]:
    out = {s: [] for s in TREND_SCHEDULERS}
    out["bound"] = []
    for _, chip_dict in chips:
        chip = chip_from_dict(chip_dict)
        for s in TREND_SCHEDULERS:
            r = evaluate_graph(graph, chip, SchedulerConfig(name=s), include_ops=False)
            out[s].append(r["latency_s"] if r["feasible"] else np.nan)
        out["bound"].append(r["roofline_latency_s"])
    return out


def draw_trends(path: Path) -> str:
    graph = build_model(ModelConfig("llama2_13b", batch=32, kv_len=2048))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
    notes = []
    # HBM bandwidth, all-to-all and mesh.
    bws = [4, 6, 8, 10, 12, 14, 16, 18]
    for topo, style in (("all_to_all", "-"), ("mesh", "--")):
        chips = []
        for tb in bws:
            d = pod4(**{"hbm.bandwidth_gb_s": tb * 1000 / 4})
            chips.append((tb, mesh(d) if topo == "mesh" else d))
        t = trend(graph, chips)
        for s in TREND_SCHEDULERS:
            axes[0].plot(bws, np.array(t[s]) * 1e3, style, color=COLORS[s], marker="o", ms=3,
                         label=f"{s} ({topo})")
        if topo == "all_to_all":
            axes[0].plot(bws, np.array(t["bound"]) * 1e3, ":", color="k", label="roofline bound")
        notes.append(f"HBM {topo}: elk_full {t['elk_full'][0] * 1e3:.2f} ms at 4 TB/s -> "
                     f"{t['elk_full'][-1] * 1e3:.2f} ms at 18 TB/s")
    axes[0].set_xlabel("HBM bandwidth, whole system [TB/s]")
    axes[0].set_ylabel("latency per decode step [ms]")
    axes[0].set_title("vs HBM bandwidth (solid: all-to-all, dashed: mesh 32 B/cycle, edge HBM)")
    axes[0].legend(fontsize=7, ncol=2)
    # Interconnect bandwidth x0.75 .. x1.5; core count with HBM bandwidth scaled per core.
    scales = [0.75, 0.875, 1.0, 1.25, 1.5]
    counts = [2208, 2944, 3680, 4416, 5152]
    panels = [
        (axes[1], scales, [pod4(**{"interconnect.link_bytes_per_cycle": 4 * sc}) for sc in scales],
         "interconnect bandwidth, x of 4 B/cycle per core", "vs on-chip interconnect bandwidth", "interconnect",
         ("x0.75", "x1.5")),
        (axes[2], counts, [pod4(**{"cores.count": c // 4, "hbm.bandwidth_gb_s": 4000 * c / 5888}) for c in counts],
         "cores (4 chips), HBM bandwidth scaled per core", "vs core count", "cores", ("2,208", "5,152")),
    ]
    for ax, xs, chip_dicts, xlabel, title, what, ends in panels:
        t = trend(graph, list(zip(xs, chip_dicts, strict=True)))
        for s in TREND_SCHEDULERS:
            ax.plot(xs, np.array(t[s]) * 1e3, "-o", color=COLORS[s], ms=3, label=s)
        ax.plot(xs, np.array(t["bound"]) * 1e3, ":", color="k", label="roofline bound")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
        notes.append(f"{what}: elk_full {t['elk_full'][0] * 1e3:.2f} ms at {ends[0]} -> "
                     f"{t['elk_full'][-1] * 1e3:.2f} ms at {ends[1]}")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    fig.suptitle("Llama-2-13B decode, batch 32, KV 2048 on ipu_pod4 variants")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "\n".join(f"- {n}" for n in notes)


def main(argv: list[str]) -> None:
    sweep = Path(argv[0]) if argv else ROOT / "results" / "elk_study"
    docs = Path(argv[1]) if len(argv) > 1 else ROOT / "docs"
    (docs / "img").mkdir(parents=True, exist_ok=True)
    lat, table = study_table(ResultStore(sweep).read())
    draw_study(lat, docs / "img" / "elk_study.png")
    notes = draw_trends(docs / "img" / "elk_trends.png")
    paper = ""
    if len(argv) > 2:  # the same study under conventions=paper (issue 18)
        plat, ptable = study_table(ResultStore(Path(argv[2])).read())
        draw_study(plat, docs / "img" / "elk_study_paper.png", "paper")
        paper = ("\n## The same study under conventions=paper (the Elk artifact's conventions)\n\n"
                 "Sweep `results/elk_study_paper` (`conventions=paper`: HBM GB/s as 2^20 B/ms, no chip-link "
                 "latency, fused QKV and gate/up, softmax rows, the artifact's per-design delivery rates, its Llama "
                 "operator list and its planner's plan rules and sync counts; elk_dse/conventions.py).\n\n" + ptable
                 + "\n\n![study, paper conventions](img/elk_study_paper.png)\n")
        print(ptable)
    text = (docs / "elk_study.md").read_text() if (docs / "elk_study.md").exists() else ""
    marker = "<!-- generated -->"
    head = text.split(marker)[0] if marker in text else "# Elk study\n\n"
    (docs / "elk_study.md").write_text(
        head + marker + "\n\n" + table + "\n\n![study](img/elk_study.png)\n\nTrends (Llama-2-13B b32 KV 2048):\n"
        + notes + "\n\n![trends](img/elk_trends.png)\n" + paper)
    print(table)
    print(notes)


if __name__ == "__main__":
    main(sys.argv[1:])
