"""Cross-check of the per-level energy account (cost/energy.py) against ZigZag (zigzag-dse 3.9.1).

ResNet-18 (the ONNX that ships in the zigzag-dse wheel, its weights replaced by zeros: only shapes matter) on
one core with a 32x32 weight-stationary array like ZigZag's ``tpu_like`` example, with the per-access
energies of ZigZag's ``tpu_like.yaml`` loaded into our chip config (``chip.energy.*``, converted to pJ per
byte with each memory's word width). Both sides are costed layer by layer with every activation going
through DRAM (ZigZag's default; ``scheduler.cross_op=false`` here).

    python benchmarks/zigzag_crosscheck.py [--zigzag-json CACHE] [--markdown]

Needs ``pip install zigzag-dse==3.9.1 six`` (not a dependency of elk_dse). ZigZag's loop-nest search takes
~2-3 minutes; ``--zigzag-json`` caches its per-layer results (rerun without the search when the file exists).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.cost.energy import DYNAMIC_LEVELS
from elk_dse.evaluate import evaluate_graph
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, build_model

CONV_KINDS = ("conv", "matmul")


def zigzag_inputs() -> Path:
    """The inputs folder of the installed zigzag package (ImportError when it is not installed)."""
    import zigzag

    return Path(zigzag.__file__).parent / "inputs"


def shape_only_onnx(src: Path, dst: Path) -> Path:
    """``src`` with every external-data initializer replaced by zeros of its shape (the wheel ships the graph
    without its weight file)."""
    import onnx

    model = onnx.load(str(src), load_external_data=False)
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            count = math.prod(init.dims)
            del init.external_data[:]
            init.data_location = onnx.TensorProto.DEFAULT
            init.raw_data = bytes(count * 4)  # float32 zeros
    onnx.save(model, str(dst))
    return dst


def tpu_like_energy(hardware_yaml: Path) -> dict[str, float]:
    """ZigZag's per-access energies of ``tpu_like.yaml`` as our ``chip.energy`` entries (pJ per byte).

    ZigZag charges ``r_cost`` / ``w_cost`` per access of a memory's word: 8 bits for the weight register
    (rf_128B), 16 bits for the output register (rf_2B, partial sums), 2048 bits for the 2 MB SRAM (its
    widest port; the input traffic of a layer checks out at 256-byte words), 64 bits for DRAM."""
    hw = yaml.safe_load(hardware_yaml.read_text())
    mem = hw["memories"]
    sram = mem["sram_2MB"]
    sram_word = max(p["bandwidth_max"] for p in sram["ports"]) / 8
    dram_word = mem["dram"]["ports"][0]["bandwidth_max"] / 8
    return {
        "mac_int8_pj": float(hw["operational_array"]["unit_energy"]),
        "rf_pj_per_byte": mem["rf_128B"]["r_cost"] / 1.0,
        "acc_pj_per_byte": mem["rf_2B"]["r_cost"] / 2.0,
        "sram_read_pj_per_byte": sram["r_cost"] / sram_word,
        "sram_write_pj_per_byte": sram["w_cost"] / sram_word,
        "hbm_read_pj_per_byte": mem["dram"]["r_cost"] / dram_word,
        "hbm_write_pj_per_byte": mem["dram"]["w_cost"] / dram_word,
        "acc_bytes": 2.0,  # O precision 16 bit
        "pe_weight_rf_bytes": float(mem["rf_128B"]["size"]) / 8,  # 1024 bits
    }


def tpu_like_chip(energy: dict[str, float]) -> dict[str, Any]:
    """One core, 32x32 MACs, 2 MiB SRAM, DRAM at 64 bit per cycle (tpu_like's DRAM port), 1 GHz."""
    return {
        "name": "zigzag_tpu_like", "clock_ghz": 1.0,
        "cores": {"count": 1, "grid": [1, 1], "sram_kib": 2048, "model": "systolic", "matrix_rows": 32,
                  "matrix_cols": 32, "vector_lanes": 32},
        "interconnect": {"topology": "mesh", "link_bytes_per_cycle": 64},
        "hbm": {"bandwidth_gb_s": 8.0, "capacity_gib": 1, "channels": 1, "attach": "all"},
        "energy": energy,
    }


def run_zigzag(inputs: Path, onnx_path: Path, cache: Path | None) -> list[dict[str, Any]]:
    """Per layer: name, MACs and energy (pJ) per level as ZigZag reports it (cached in ``cache``)."""
    if cache is not None and cache.is_file():
        return json.loads(cache.read_text())
    from zigzag.api import get_hardware_performance_zigzag

    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as out:
        get_hardware_performance_zigzag(
            workload=str(onnx_path), accelerator=str(inputs / "hardware" / "tpu_like.yaml"),
            mapping=str(inputs / "mapping" / "tpu_like.yaml"), opt="energy", dump_folder=out,
            pickle_filename=f"{out}/cmes.pickle", loma_show_progress_bar=False)
        with open(f"{out}/cmes.pickle", "rb") as f:
            cmes = pickle.load(f)  # written by ZigZag just now: one cost model evaluation per layer
    layers = []
    for cme in cmes:
        br = {str(k): v for k, v in cme.mem_energy_breakdown.items()}
        # ZigZag's levels per operand: W [rf_128B, dram], I [sram, dram], O [rf_2B, sram, dram].
        layers.append({
            "name": cme.layer.name, "macs": float(cme.layer.total_mac_count),
            "mac": float(cme.mac_energy),
            "rf": float(br["W"][0] + br["O"][0]),
            "sram": float(br["I"][0] + br["O"][1]),
            "hbm": float(br["W"][-1] + br["I"][-1] + br["O"][-1]),
        })
    if cache is not None:
        cache.write_text(json.dumps(layers, indent=1))
    return layers


def run_ours(onnx_path: Path, energy: dict[str, float]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per matrix operator: name, MACs and energy (pJ) per level; and the whole evaluation."""
    chip = chip_from_dict(tpu_like_chip(energy))
    graph = build_model(ModelConfig("onnx", phase="prefill", path=str(onnx_path), dtype="int8", batch=1))
    result = evaluate_graph(graph, chip, SchedulerConfig(name="sequential", cross_op=False), dtype="int8")
    layers = [{"name": op["name"], "kind": op["kind"], "macs": op["flops"] / 2,
               **{lvl: op["energy_j"][lvl] * 1e12 for lvl in DYNAMIC_LEVELS}}
              for op in result["ops"]]
    return layers, result


def compare(zz: list[dict[str, Any]], ours: list[dict[str, Any]]) -> dict[str, Any]:
    """Match layers by name; totals, per-level totals and the per-layer rank correlation."""
    by_name = {o["name"]: o for o in ours}
    rows = []
    for z in zz:
        o = by_name.get(z["name"]) or by_name.get(z["name"].strip("/").replace("/", "_"))
        if o is None:
            raise KeyError(f"no operator of ours matches ZigZag layer {z['name']}")
        zt = sum(z[k] for k in ("mac", "rf", "sram", "hbm"))
        ot = sum(o[k] for k in DYNAMIC_LEVELS)
        rows.append({"name": z["name"], "macs": z["macs"], "zz_pj": zt, "ours_pj": ot,
                     **{f"zz_{k}": z[k] for k in ("mac", "rf", "sram", "hbm")},
                     **{f"ours_{k}": o[k] for k in DYNAMIC_LEVELS}})
    vector = [o for o in ours if o["kind"] not in CONV_KINDS]
    zz_total = sum(r["zz_pj"] for r in rows)
    ours_total = sum(r["ours_pj"] for r in rows)
    return {"rows": rows, "zz_total_pj": zz_total, "ours_total_pj": ours_total,
            "ratio": ours_total / zz_total, "spearman": _spearman([r["zz_pj"] for r in rows],
                                                                 [r["ours_pj"] for r in rows]),
            "vector_ops_pj": sum(sum(o[k] for k in DYNAMIC_LEVELS) for o in vector), "vector_ops": len(vector)}


def _spearman(a: list[float], b: list[float]) -> float:
    def ranks(x: list[float]) -> list[float]:
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        for pos, i in enumerate(order):
            r[i] = float(pos)
        return r

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra))
    vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (va * vb)


def markdown(cmp: dict[str, Any]) -> str:
    uj = 1e-6
    lines = ["| layer | MACs (M) | ZigZag uJ | ours uJ | ours/ZZ | ZZ mac/rf/sram/dram uJ | ours mac/rf/sram/dram(+noc) uJ |",
             "|---|---|---|---|---|---|---|"]
    for r in cmp["rows"]:
        zz = "/".join(f"{r[f'zz_{k}'] * uj:.2f}" for k in ("mac", "rf", "sram", "hbm"))
        ours = "/".join(f"{r[f'ours_{k}'] * uj:.2f}" for k in ("mac", "rf", "sram"))
        ours += f"/{(r['ours_hbm'] + r['ours_noc'] + r['ours_chip_link']) * uj:.2f}"
        lines.append(f"| {r['name']} | {r['macs'] / 1e6:.1f} | {r['zz_pj'] * uj:.1f} | {r['ours_pj'] * uj:.1f} | "
                     f"{r['ours_pj'] / r['zz_pj']:.2f} | {zz} | {ours} |")
    tot = {k: (sum(r[f"zz_{k}"] for r in cmp["rows"]), sum(r[f"ours_{k}"] for r in cmp["rows"]))
           for k in ("mac", "rf", "sram", "hbm")}
    lines.append(f"| **total** | {sum(r['macs'] for r in cmp['rows']) / 1e6:.0f} | {cmp['zz_total_pj'] * uj:.0f} | "
                 f"{cmp['ours_total_pj'] * uj:.0f} | {cmp['ratio']:.2f} | "
                 + "/".join(f"{tot[k][0] * uj:.0f}" for k in tot) + " | "
                 + "/".join(f"{tot[k][1] * uj:.0f}" for k in tot) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zigzag-json", type=Path, default=None, help="cache of ZigZag's per-layer results")
    ap.add_argument("--markdown", action="store_true", help="print the per-layer table")
    args = ap.parse_args(argv)
    try:
        inputs = zigzag_inputs()
    except ImportError:
        print("zigzag-dse is not installed: pip install zigzag-dse==3.9.1 six", file=sys.stderr)
        return 2
    energy = tpu_like_energy(inputs / "hardware" / "tpu_like.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = shape_only_onnx(inputs / "workload" / "resnet18.onnx", Path(tmp) / "resnet18.onnx")
        zz = run_zigzag(inputs, onnx_path, args.zigzag_json)
        ours, _ = run_ours(onnx_path, energy)
    cmp = compare(zz, ours)
    print(f"energy table (pJ): {json.dumps(energy)}")
    print(f"ResNet-18 matrix layers, dynamic energy: ZigZag {cmp['zz_total_pj'] * 1e-9:.3f} mJ, ours "
          f"{cmp['ours_total_pj'] * 1e-9:.3f} mJ, ratio {cmp['ratio']:.3f}; per-layer Spearman "
          f"{cmp['spearman']:.3f}; our {cmp['vector_ops']} vector operators (ZigZag skips them) "
          f"{cmp['vector_ops_pj'] * 1e-9:.3f} mJ more")
    if args.markdown:
        print(markdown(cmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
