"""Bad inputs a user can type, each with a fragment the one-line error must contain (the field, the value or
what is allowed). Used by tests/test_bad_inputs.py and benchmarks/bad_inputs_table.py (docs/reliability.md)."""

from __future__ import annotations

# (what the user types after `python -m elk_dse`, needle in the one-line error). Evaluate runs unless a
# case says sweep; sweep cases use out= a temp folder the test substitutes for {out}.
CASES: list[tuple[str, list[str], str]] = [
    # --- command line and overrides ---
    ("unknown command", ["evalute", "+chip=mesh64"], "evaluate"),
    ("unknown flag", ["evaluate", "+chip=mesh64", "--verbose"], "--verbose"),
    ("no chip chosen", ["evaluate"], "chip"),
    ("unknown chip", ["evaluate", "+chip=mesh65"], "mesh64"),
    ("unknown top-level key", ["evaluate", "+chip=mesh64", "sede=3"], "sede"),
    ("typo in a chip key", ["evaluate", "+chip=mesh64", "chip.clock_ghx=1.2"], "clock_ghz"),
    ("typo in a nested key", ["evaluate", "+chip=mesh64", "chip.cores.sram_kb=512"], "sram_kib"),
    ("override without value", ["evaluate", "+chip=mesh64", "chip.clock_ghz"], "chip.clock_ghz"),
    ("unknown model", ["evaluate", "+chip=mesh64", "model=llama9"], "llama"),
    ("unknown scheduler", ["evaluate", "+chip=mesh64", "scheduler=elk_fast"], "elk_full"),
    ("unknown simulator", ["evaluate", "+chip=mesh64", "sim=cycle"], "sim"),
    ("bad output format", ["evaluate", "+chip=mesh64", "format=xml"], "format"),
    # --- chip ---
    ("zero clock", ["evaluate", "+chip=mesh64", "chip.clock_ghz=0"], "clock_ghz"),
    ("negative clock", ["evaluate", "+chip=mesh64", "chip.clock_ghz=-1"], "clock_ghz"),
    ("clock as text", ["evaluate", "+chip=mesh64", "chip.clock_ghz=fast"], "clock_ghz"),
    ("zero cores", ["evaluate", "+chip=mesh64", "chip.cores.count=0", "chip.cores.grid=[1,0]"], "cores"),
    ("grid not matching the core count", ["evaluate", "+chip=mesh64", "chip.cores.grid=[8,9]"], "grid"),
    ("grid with a zero dimension", ["evaluate", "+chip=mesh64", "chip.cores.grid=[0,8]"], "grid"),
    ("fractional core count", ["evaluate", "+chip=mesh64", "chip.cores.count=63.5"], "count"),
    ("zero SRAM", ["evaluate", "+chip=mesh64", "chip.cores.sram_kib=0"], "sram_kib"),
    ("negative SRAM", ["evaluate", "+chip=mesh64", "chip.cores.sram_kib=-512"], "sram_kib"),
    ("unknown core model", ["evaluate", "+chip=mesh64", "chip.cores.model=tensor"], "systolic"),
    ("zero matrix rows", ["evaluate", "+chip=mesh64", "chip.cores.matrix_rows=0"], "matrix_rows"),
    ("unknown topology", ["evaluate", "+chip=mesh64", "chip.interconnect.topology=hypercube"], "mesh"),
    ("zero link bandwidth", ["evaluate", "+chip=mesh64", "chip.interconnect.link_bytes_per_cycle=0"],
     "link_bytes_per_cycle"),
    ("negative hop latency", ["evaluate", "+chip=mesh64", "chip.interconnect.hop_latency_cycles=-2"],
     "hop_latency_cycles"),
    ("zero HBM bandwidth", ["evaluate", "+chip=mesh64", "chip.hbm.bandwidth_gb_s=0"], "bandwidth_gb_s"),
    ("zero HBM capacity", ["evaluate", "+chip=mesh64", "chip.hbm.capacity_gib=0"], "capacity_gib"),
    ("zero HBM channels", ["evaluate", "+chip=mesh64", "chip.hbm.channels=0"], "channels"),
    ("chips' grid does not hold the chips", ["evaluate", "+chip=wormhole_t3k", "chip.chips.grid=[3,3]"],
     "chip.chips.grid"),
    ("mesh of chips without a grid", ["evaluate", "+chip=ipu_pod4", "chip.chips.topology=mesh"], "chip.chips.grid"),
    ("unknown HBM attachment", ["evaluate", "+chip=mesh64", "chip.hbm.attach=corner"], "attach"),
    ("chip key with code to instantiate", ["evaluate", "+chip=mesh64", "+chip._target_=os.system"], "_target_"),
    # --- model ---
    ("unknown phase", ["evaluate", "+chip=mesh64", "model.phase=inference"], "phase"),
    ("zero batch", ["evaluate", "+chip=mesh64", "model.batch=0"], "batch"),
    ("negative sequence length", ["evaluate", "+chip=mesh64", "model.seq_len=-5"], "seq_len"),
    ("unknown dtype", ["evaluate", "+chip=mesh64", "model.dtype=fp12"], "dtype"),
    ("batch as text", ["evaluate", "+chip=mesh64", "model.batch=lots"], "batch"),
    # --- scheduler / simulator ---
    ("unknown plan family", ["evaluate", "+chip=mesh64", "scheduler.plans=magic"], "plans"),
    ("negative preload depth", ["evaluate", "+chip=mesh64", "scheduler.max_preload_depth=-1"],
     "max_preload_depth"),
    ("zero load orders", ["evaluate", "+chip=mesh64", "scheduler.max_orders=0"], "max_orders"),
    ("negative margin", ["evaluate", "+chip=mesh64", "scheduler.margin=-0.5"], "margin"),
    ("unknown event-sim mode", ["evaluate", "+chip=mesh64", "sim=event", "sim.mode=fast"], "mode"),
    ("trace without the event simulator", ["evaluate", "+chip=mesh64", "trace=/tmp/t.json"], "trace"),
    # --- sweep ---
    ("unknown sweep", ["sweep", "+chip=mesh64", "sweep=hbm_nco", "out={out}"], "hbm_noc"),
    ("zero trials", ["sweep", "+chip=mesh64", "search.n_trials=0", "out={out}"], "n_trials"),
    ("negative workers", ["sweep", "+chip=mesh64", "search.workers=-1", "out={out}"], "workers"),
    ("zero batch size", ["sweep", "+chip=mesh64", "search.batch_size=0", "out={out}"], "batch_size"),
    ("unknown sampler", ["sweep", "+chip=mesh64", "search.sampler=cmaes", "out={out}"], "nsga2"),
    ("grid sampler over ranges", ["sweep", "+chip=mesh64", "search.sampler=grid", "out={out}"], "choices"),
    ("unreachable storage URL", ["sweep", "+chip=mesh64", "search.storage=postgresql://nobody@127.0.0.1:1/x",
                                 "out={out}"], "search.storage"),
    ("unknown recheck simulator", ["sweep", "+chip=mesh64", "search.recheck=cycle", "search.n_trials=1",
                                   "out={out}"], "recheck"),
    ("unwritable sweep folder", ["sweep", "+chip=mesh64", "out=/proc/elk_dse_out"], "out"),
    ("report of a folder that is no sweep", ["report", "/tmp"], "not a sweep folder"),
]

# --- graph files (issue 16): chip.interconnect.graph naming a bad file; tests/data/bad_graphs/ ---
_GRAPHS = __import__("pathlib").Path(__file__).resolve().parent / "data" / "bad_graphs"


def _graph(file: str) -> list[str]:
    return ["evaluate", "+chip=mesh64_graph", f"chip.interconnect.graph={_GRAPHS / file}"]


CASES += [
    ("graph file missing", _graph("nowhere.yaml"), "no such file"),
    ("graph file not YAML", _graph("not_yaml.yaml"), "not valid YAML"),
    ("graph file with an unknown key", _graph("unknown_key.yaml"), "unknown key 'edges'"),
    ("graph disconnected", _graph("disconnected.yaml"), "disconnected"),
    ("graph one-way link", _graph("one_way.yaml"), "disconnected"),
    ("graph link to an unknown node", _graph("unknown_node.yaml"), "unknown node 'c9'"),
    ("graph zero-bandwidth link", _graph("zero_width.yaml"), "zero-bandwidth"),
    ("graph core count mismatch", _graph("four_cores.yaml"), "cores.count=64"),
    ("graph HBM at a switch", _graph("hbm_at_switch.yaml"), "switch"),
    ("graph topology without a file", ["evaluate", "+chip=mesh64", "chip.interconnect.topology=graph"], "graph"),
]

