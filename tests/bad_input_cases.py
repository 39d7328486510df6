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
    # parallelism across chips (issue 17, docs/parallelism.md)
    ("unknown parallelism", ["evaluate", "+chip=wormhole_t3k", "chip.chips.parallelism=tensor"], "tp"),
    ("tp degree not the chip count", ["evaluate", "+chip=wormhole_t3k", "chip.chips.tp=3"], "chip.chips.tp"),
    ("degree for another strategy", ["evaluate", "+chip=wormhole_t3k", "chip.chips.dp=8"], "chip.chips.dp"),
    ("negative degree", ["evaluate", "+chip=wormhole_t3k", "chip.chips.pp=-1"], "chip.chips.pp"),
    # collectives (issue 17, cost/collectives.py)
    ("negative collective startup", ["evaluate", "+chip=wormhole_t3k", "chip.overheads.collective_startup_us=-1"],
     "collective_startup_us"),
    ("unknown HBM attachment", ["evaluate", "+chip=mesh64", "chip.hbm.attach=corner"], "attach"),
    ("chip key with code to instantiate", ["evaluate", "+chip=mesh64", "+chip._target_=os.system"], "_target_"),
    # --- model ---
    ("unknown phase", ["evaluate", "+chip=mesh64", "model.phase=inference"], "phase"),
    ("zero batch", ["evaluate", "+chip=mesh64", "model.batch=0"], "batch"),
    ("negative sequence length", ["evaluate", "+chip=mesh64", "model.seq_len=-5"], "seq_len"),
    ("unknown dtype", ["evaluate", "+chip=mesh64", "model.dtype=fp12"], "dtype"),
    ("batch as text", ["evaluate", "+chip=mesh64", "model.batch=lots"], "batch"),
    # --- model architecture and imported configs (issue 15) ---
    ("HF import without a config file", ["evaluate", "+chip=mesh64", "model=hf"], "model.path"),
    ("HF config file that does not exist", ["evaluate", "+chip=mesh64", "model=hf",
                                            "model.path=/nonexistent/config.json"], "no such file"),
    ("architecture size of zero", ["evaluate", "+chip=mesh64", "model.arch.hidden_size=0"], "hidden_size"),
    ("unknown HF model_type", ["evaluate", "+chip=mesh64", "model.arch.model_type=llamma"], "llama"),
    ("KV heads not dividing the heads", ["evaluate", "+chip=mesh64", "model.arch.num_key_value_heads=5"],
     "num_key_value_heads"),
    ("negative sliding window", ["evaluate", "+chip=mesh64", "model=mistral_7b", "model.arch.sliding_window=-1"],
     "sliding_window"),
    ("more experts per token than experts", ["evaluate", "+chip=mesh64", "model=mixtral_8x7b",
                                             "model.arch.num_experts_per_tok=9"], "num_experts_per_tok"),
    ("unknown architecture field", ["evaluate", "+chip=mesh64", "model=resnet50", "model.arch.depth=18"], "arch"),
    ("ONNX weight inputs as a number", ["evaluate", "+chip=mesh64", "model=onnx", "model.weight_inputs=3"],
     "weight_inputs"),
    # --- scheduler / simulator ---
    ("unknown plan family", ["evaluate", "+chip=mesh64", "scheduler.plans=magic"], "plans"),
    ("negative preload depth", ["evaluate", "+chip=mesh64", "scheduler.max_preload_depth=-1"],
     "max_preload_depth"),
    ("zero load orders", ["evaluate", "+chip=mesh64", "scheduler.max_orders=0"], "max_orders"),
    ("negative margin", ["evaluate", "+chip=mesh64", "scheduler.margin=-0.5"], "margin"),
    ("unknown event-sim mode", ["evaluate", "+chip=mesh64", "sim=event", "sim.mode=fast"], "mode"),
    ("trace without the event simulator", ["evaluate", "+chip=mesh64", "trace=/tmp/t.json"], "trace"),
    # --- per-action energies (issue 20) ---
    ("negative energy per action", ["evaluate", "+chip=mesh64", "chip.energy.hbm_read_pj_per_byte=-1"],
     "chip.energy.hbm_read_pj_per_byte"),
    ("typo in an energy action", ["evaluate", "+chip=mesh64", "chip.energy.hbm_red_pj_per_byte=1"],
     "hbm_read_pj_per_byte"),
    ("energy as text", ["evaluate", "+chip=mesh64", "chip.energy.mac_int8_pj=abc"], "chip.energy.mac_int8_pj"),
    ("zero SRAM bank", ["evaluate", "+chip=mesh64", "chip.energy.sram_bank_kib=0"], "sram_bank_kib"),
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
    # --- issue 21: hostile input ---
    ("batch that overflows 64-bit sizes", ["evaluate", "+chip=mesh64", "model.batch=1099511627776"],
     "at most 2^60"),
    ("prompt that overflows 64-bit sizes", ["evaluate", "+chip=mesh64", "model.phase=prefill",
                                            "model.seq_len=99999999999"], "iteration points"),
    ("seed beyond numpy's range", ["sweep", "+chip=mesh64", "search.seed=4294967296", "out={out}"], "search.seed"),
    ("negative seed", ["sweep", "+chip=mesh64", "search.seed=-1", "out={out}"], "[0, 4294967295]"),
    ("progress neither true nor false", ["sweep", "+chip=mesh64", "progress=maybe", "out={out}"], "true or false"),
    ("retry_failed neither true nor false", ["sweep", "+chip=mesh64", "search.retry_failed=sometimes", "out={out}"],
     "search.retry_failed='sometimes' is invalid: true or false"),
    ("ray address that is no host:port", ["sweep", "+chip=mesh64", "ray.address=foo:bar", "search.workers=1",
                                          "out={out}"], "ray.address='foo:bar' is invalid: host:port"),
    ("report neither true nor false", ["sweep", "+chip=mesh64", "report=1", "out={out}"], "true or false"),
    ("non-ASCII value unquoted", ["evaluate", "+chip=mesh64", "model.name=llamä"], "model.name='llamä'"),
    ("control character in a value", ["evaluate", "+chip=mesh64", "model.name=a\x07b"],
     "printable"),
    ("documented formats key on a config without it", ["evaluate", "+chip=mesh64", "model.formats.kv_cache=fp8"],
     "+model.formats.kv_cache=<value>"),
    ("adding a key no config has", ["evaluate", "+chip=mesh64", "+model.foo=1"], "documented fields"),
    ("adding a key the config has", ["evaluate", "+chip=mesh64", "+model.batch=3"], "model.batch=..."),
    ("system beyond the cost models' memory", ["evaluate", "+chip=wse2_like", "+chip.chips.count=8"],
     "at most 4,000,000"),
    ("event simulation beyond its memory", ["evaluate", "+chip=wse2_like", "sim=event"], "sim=analytic"),
    ("trace into a directory", ["evaluate", "+chip=mesh64", "sim=event", "trace=/tmp"], "is a directory"),
    ("trace under a file", ["evaluate", "+chip=mesh64", "sim=event", "trace=/etc/hostname/t.json"],
     "not a directory"),
    ("sweep: int range with a fractional step", ["sweep", "+chip=mesh64", "sweep={file:int_fraction_step}",
                                                 "out={out}"], "an integer for type: int"),
    ("sweep: log int range below 1", ["sweep", "+chip=mesh64", "sweep={file:log_int_below_one}", "out={out}"],
     "log scale"),
    ("sweep: log range with a step", ["sweep", "+chip=mesh64", "sweep={file:log_with_step}", "out={out}"],
     "takes no step"),
    ("sweep: mixed number and text choices", ["sweep", "+chip=mesh64", "sweep={file:mixed_choices}", "out={out}"],
     "number and text"),
    ("sweep: a list as a choice", ["sweep", "+chip=mesh64", "sweep={file:list_choice}", "out={out}"],
     "choices[0]"),
    ("sweep: a section searched as a value", ["sweep", "+chip=mesh64", "sweep={file:section_param}", "out={out}"],
     "is a section of the design config"),
    ("sweep: unknown model among choices", ["sweep", "+chip=mesh64", "sweep={file:unknown_model_choice}",
                                            "out={out}"], "llama9"),
    ("sweep: invalid value among choices", ["sweep", "+chip=mesh64", "sweep={file:bad_sram_choice}", "out={out}"],
     "chip.cores.sram_kib"),
    ("sweep: NaN budget", ["sweep", "+chip=mesh64", "sweep={file:nan_budget}", "out={out}"], "finite"),
    ("sweep: duplicated key", ["sweep", "+chip=mesh64", "sweep={file:duplicate_key}", "out={out}"],
     "appears twice"),
    ("sweep: YAML alias bomb", ["sweep", "+chip=mesh64", "sweep={file:alias_bomb}", "out={out}"],
     "aliases expand"),
    ("sweep: YAML cut short", ["sweep", "+chip=mesh64", "sweep={file:torn_yaml}", "out={out}"], "not valid YAML"),
    # --- software-stack profiles (issue 17, docs/stacks.md) ---
    ("unknown stack", ["evaluate", "+chip=mesh64", "stack=nvidia"], "tt_transformers"),
    ("unknown stack key", ["evaluate", "+chip=wormhole_n150", "stack.dispatch_us=3"], "dispatch_us_per_op"),
    ("negative stack dispatch", ["evaluate", "+chip=wormhole_n150", "stack.dispatch_us_per_op=-1"],
     "stack.dispatch_us_per_op"),
    ("stack DRAM efficiency above the peak", ["evaluate", "+chip=wormhole_n150", "stack.dram_efficiency=1.5"],
     "stack.dram_efficiency"),
    ("stack value without its source", ["evaluate", "+chip=wormhole_n150", "stack.sources.dram_efficiency=' '"],
     "stack.sources.dram_efficiency"),
    ("stack fits an unknown parameter", ["evaluate", "+chip=wormhole_n150", "stack.calibration.fit=[clock]"],
     "stack.calibration.fit"),
    ("unknown default stack of a chip", ["evaluate", "+chip=mesh64", "chip.default_stack=cuda"],
     "chip.default_stack"),
]

_OBJ = "objectives: [{metric: latency_s}]\n"
_BOMB = "".join(f"{a}: &{a} [{', '.join(['*' + p] * 9) if p else ', '.join(['x'] * 9)}]\n"
                for a, p in zip("abcdefgh", ["", *"abcdefg"], strict=True))

#: Files that cases name as {file:<name>}: written to a temp folder by the test and the table script.
FILES: dict[str, str] = {
    "int_fraction_step": _OBJ + "params: {chip.cores.sram_kib: {low: 256, high: 1024, step: 0.5, type: int}}\n",
    "log_int_below_one": _OBJ + "params: {model.batch: {low: 0, high: 8, log: true, type: int}}\n",
    "log_with_step": _OBJ + "params: {chip.cores.sram_kib: {low: 256, high: 1024, step: 256, log: true}}\n",
    "mixed_choices": _OBJ + "params: {chip.cores.sram_kib: {choices: [512, '1024', 2048]}}\n",
    "list_choice": _OBJ + "params: {chip.cores.grid: {choices: [[8, 8], [4, 16]]}}\n",
    "section_param": _OBJ + "params: {chip.cores: {choices: [1, 2]}}\n",
    "unknown_model_choice": _OBJ + "params: {model.name: {choices: [llama2_7b, llama9]}}\n",
    "bad_sram_choice": _OBJ + "params: {chip.cores.sram_kib: {choices: [512, -1]}}\n",
    "nan_budget": _OBJ + "constraints: [{metric: area_mm2, max: .nan}]\n"
                         "params: {chip.cores.sram_kib: {choices: [512, 1024]}}\n",
    "duplicate_key": _OBJ + "params:\n  chip.cores.sram_kib: {choices: [512]}\n  chip.cores.sram_kib: {choices: [1024]}\n",
    "alias_bomb": _BOMB + _OBJ + "params: {chip.cores.sram_kib: {choices: *h}}\n",
    "torn_yaml": _OBJ + "params: {chip.cores.sram_kib: {choices: [512, 10\n",
}


def materialize(argv: list[str], folder: str) -> list[str]:
    """argv with {out} and {file:<name>} replaced by paths under ``folder`` (files written there)."""
    import re
    from pathlib import Path

    out = []
    for arg in argv:
        arg = arg.replace("{out}", f"{folder}/s")
        match = re.search(r"\{file:(\w+)\}", arg)
        if match:
            path = Path(folder) / f"{match.group(1)}.yaml"
            path.write_text(FILES[match.group(1)])
            arg = arg.replace(match.group(0), str(path))
        out.append(arg)
    return out


# --- graph files (issue 16): chip.interconnect.graph naming a bad file ({file:...} written by the test) ---
def _graph(file: str) -> list[str]:
    return ["evaluate", "+chip=mesh64_graph", f"chip.interconnect.graph={file}"]


FILES.update({
    "graph_disconnected": '# Two islands: c0-c1 and c2-c3.\nnodes: [c0, c1, c2, c3]\nlinks: [[c0, c1], [c2, c3]]\nhbm: [c0]\n',
    "graph_four_cores": '# A valid 4-core ring: used against a 64-core chip (core-count mismatch).\nnodes: [c0, c1, c2, c3]\nlinks: [[c0, c1], [c1, c2], [c2, c3], [c3, c0]]\nhbm: [c0]\n',
    "graph_hbm_at_switch": 'clusters: [{name: k0, cores: 2}, {name: k1, cores: 2}]\nlinks: [[k0, k1]]\nhbm: [k0]\n',
    "graph_not_yaml": 'nodes: [c0, c1\nlinks: {{\n',
    "graph_one_way": '# c0 -> c1 only: c1 cannot reach c0 (a directed graph must be strongly connected).\nnodes: [c0, c1]\nlinks: [{a: c0, b: c1, directed: true}]\nhbm: [c0]\n',
    "graph_unknown_key": 'nodes: [c0, c1]\nedges: [[c0, c1]]\n',
    "graph_unknown_node": 'nodes: [c0, c1, c2, c3]\nlinks: [[c0, c1], [c1, c2], [c2, c9]]\nhbm: [c0]\n',
    "graph_zero_width": 'nodes: [c0, c1, c2, c3]\nlinks: [[c0, c1], [c1, c2], {a: c2, b: c3, width: 0}]\nhbm: [c0]\n',
})
CASES += [
    ("graph file missing", _graph("/nonexistent/graph.yaml"), "no such file"),
    ("graph file not YAML", _graph("{file:graph_not_yaml}"), "not valid YAML"),
    ("graph file with an unknown key", _graph("{file:graph_unknown_key}"), "unknown key 'edges'"),
    ("graph disconnected", _graph("{file:graph_disconnected}"), "disconnected"),
    ("graph one-way link", _graph("{file:graph_one_way}"), "disconnected"),
    ("graph link to an unknown node", _graph("{file:graph_unknown_node}"), "unknown node 'c9'"),
    ("graph zero-bandwidth link", _graph("{file:graph_zero_width}"), "zero-bandwidth"),
    ("graph core count mismatch", _graph("{file:graph_four_cores}"), "cores.count=64"),
    ("graph HBM at a switch", _graph("{file:graph_hbm_at_switch}"), "switch"),
    ("graph topology without a file", ["evaluate", "+chip=mesh64", "chip.interconnect.topology=graph"], "graph"),
]
# --- issue 18: modelling conventions ---
CASES += [
    ("unknown conventions", ["evaluate", "+chip=mesh64", "conventions=papr"], "default or paper"),
    ("negative artifact delivery rate", ["evaluate", "+chip=mesh64", "+chip.hbm.delivery_gb_s_per_core=-1"],
     "delivery_gb_s_per_core"),
    ("artifact delivery share of zero", ["evaluate", "+chip=mesh64", "+chip.hbm.delivery_share=0"], "delivery_share"),
    ("paper conventions with the event simulator", ["evaluate", "+chip=mesh64", "conventions=paper",
                                                    "scheduler=elk_full", "sim=event"], "sim=analytic"),
    # --- issue 17n: the neuron stack's launch cost and the systolic tile rule ---
    ("negative stack launch cost", ["evaluate", "+chip=inferentia2", "stack.launch_us_per_step=-1"],
     "stack.launch_us_per_step"),
    ("stack launch cost without its source", ["evaluate", "+chip=mesh64", "stack=none",
                                              "+stack.launch_us_per_step=5"], "stack.sources.launch_us_per_step"),
    ("systolic weight load slower than one row per cycle", ["evaluate", "+chip=inferentia2",
                                                            "chip.cores.weight_load_speedup=0.5"],
     "weight_load_speedup"),
    # --- issue 17n (fourth session): the systolic tile width ---
    ("systolic tile width that does not divide the array", ["evaluate", "+chip=inferentia2",
                                                             "chip.cores.matrix_col_tile=100"], "matrix_col_tile"),
    # --- issue 17s: the decode-attention kernel of the tt stacks ---
    ("SDPA key chunk not a whole tile", ["evaluate", "+chip=wormhole_n150", "stack.sdpa_k_chunk_tokens=48"],
     "sdpa_k_chunk_tokens"),
    ("SDPA kernel without its source", ["evaluate", "+chip=wormhole_n150", "stack.sources.sdpa=' '"],
     "stack.sources.sdpa"),
    ("negative SDPA tile time", ["evaluate", "+chip=wormhole_n150", "stack.sdpa_ns_per_score_tile=-1"],
     "sdpa_ns_per_score_tile"),
    # --- issue 17c: the stack's CCL cost fields ---
    ("negative CCL step latency", ["evaluate", "+chip=wormhole_galaxy", "stack.ccl_link_latency_ns=-1"],
     "ccl_link_latency_ns"),
    ("CCL payload wider than 16 bytes per element", ["evaluate", "+chip=wormhole_galaxy",
                                                     "stack.ccl_bytes_per_element=32"], "ccl_bytes_per_element"),
    # --- issue 17k: the decode-attention kernel's launch batch ---
    ("negative SDPA launch batch", ["evaluate", "+chip=wormhole_galaxy", "stack.sdpa_padded_users=-1"],
     "sdpa_padded_users"),
    ("SDPA launch batch without its source", ["evaluate", "+chip=wormhole_galaxy",
                                              "stack.sources.sdpa_padded_users=' '"], "stack.sources.sdpa_padded_users"),
    # --- issue 17d: the Neuron stack's decode-attention fields ---
    ("KV bucket not a power of two", ["evaluate", "+chip=inferentia2", "stack.kv_bucket_min_tokens=100"],
     "kv_bucket_min_tokens"),
    ("unknown decode softmax rule", ["evaluate", "+chip=inferentia2", "stack.decode_softmax=gpu"], "decode_softmax"),
    ("decode-attention rule without its source", ["evaluate", "+chip=inferentia2",
                                                  "stack.sources.decode_attention=' '"], "stack.sources.decode_attention"),
    # --- issue 17d: the Neuron stack's KV-head sharding over TP ranks ---
    ("unknown KV-head sharding", ["evaluate", "+chip=inferentia2", "stack.kv_head_sharding=replicate"],
     "kv_head_sharding"),
    ("KV-head sharding without its source", ["evaluate", "+chip=inferentia2",
                                             "stack.sources.kv_head_sharding=' '"], "stack.sources.kv_head_sharding"),
    # --- issue 17n (sixth session): NeuronCore-v2's engine floor ---
    ("unknown vector-engine rule", ["evaluate", "+chip=inferentia2", "chip.cores.vector_engine=gpu"], "vector_engine"),
    # --- fifth session: a stack field the chosen stack's file leaves at its default is still a field (cli) ---
    ("stack field absent from the stack's file, bad value", ["evaluate", "+chip=wormhole_n150",
                                                             "stack.kv_head_sharding=replicate"], "replicate_to_ranks"),
    # --- issue 17g: a stack's matrix fidelity (tt_cnn: LoFi) ---
    ("unknown matrix fidelity", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn", "stack.matrix_fidelity=hifi"],
     "matrix_fidelity"),
    ("matrix fidelity without its source", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn",
                                            "stack.sources.matrix_fidelity=' '"], "stack.sources.matrix_fidelity"),
    # --- issue 17c (sixth session): what an operation running a collective pays ---
    ("negative collective-operation dispatch", ["evaluate", "+chip=wormhole_n300", "stack.ccl_dispatch_us_per_op=-1"],
     "ccl_dispatch_us_per_op"),
    ("collective-operation dispatch without its source", ["evaluate", "+chip=wormhole_n300",
                                                           "stack.sources.ccl_dispatch=' '"], "stack.sources.ccl_dispatch"),
    # --- issue 17t (seventh session): the host's sampling and its read rate of the logits ---
    ("negative host-sampling batch", ["evaluate", "+chip=wormhole_n300", "stack.host_sampling_min_batch=-1"],
     "host_sampling_min_batch"),
    ("host sampling without a read rate", ["evaluate", "+chip=wormhole_n300", "stack.host_read_gb_per_s=0"],
     "host_read_gb_per_s"),
    ("host sampling without its source", ["evaluate", "+chip=wormhole_n300", "stack.sources.host_sampling=' '"],
     "stack.sources.host_sampling"),
    # --- issue 17d (eighth session): a stack that splits fused checkpoint projections at load ---
    ("split projections not a bool", ["evaluate", "+chip=wormhole_n150", "stack.split_fused_projections=maybe"],
     "split_fused_projections"),
    ("split projections without their source", ["evaluate", "+chip=wormhole_n150",
                                                "stack.sources.split_projections=' '"], "stack.sources.split_projections"),
    ("model split projections not a bool", ["evaluate", "+chip=wormhole_n150", "model.split_projections=2"],
     "split_projections"),
    # --- issue 17q (ninth session): a stack that adds a Qwen2 decoder's q/k/v biases in a separate operator ---
    ("separate qkv bias not a bool", ["evaluate", "+chip=wormhole_n150", "stack.separate_qkv_bias=maybe"],
     "separate_qkv_bias"),
    ("separate qkv bias without its source", ["evaluate", "+chip=wormhole_n150", "stack.sources.qkv_bias=' '"],
     "stack.sources.qkv_bias"),
    ("model qkv bias add not a bool", ["evaluate", "+chip=wormhole_n150", "model.qkv_bias_add=2"], "qkv_bias_add"),
    # --- issue 17b (seventh session): a chip's architecture and a stack's dispatch per architecture ---
    ("unknown chip architecture", ["evaluate", "+chip=blackhole_p150", "chip.architecture=blackhol"], "blackhole"),
    ("dispatch for an unknown architecture", ["evaluate", "+chip=blackhole_p150", "stack=tt_cnn",
                                              "stack.dispatch_us_per_op_by_arch.grayskull=5"], "grayskull"),
    ("negative dispatch of an architecture", ["evaluate", "+chip=blackhole_p150", "stack=tt_cnn",
                                              "stack.dispatch_us_per_op_by_arch.blackhole=-1"], "blackhole"),
    ("dispatch per architecture without its source", ["evaluate", "+chip=blackhole_p150", "stack=tt_cnn",
                                                      "stack.dispatch_us_per_op_by_arch.wormhole_b0=5",
                                                      "stack.sources.dispatch_by_arch=' '"],
     "stack.sources.dispatch_by_arch"),
    # --- sixth session: found by tests/test_fuzz_cli.py (chip.chips.count=36882 ran out of memory after minutes) ---
    ("more chips than one system holds", ["evaluate", "+chip=mesh64", "chip.cores.count=16", "chip.cores.grid=[4,4]",
                                          "chip.chips.count=36882"], "at most 1,024 chips"),
    # --- issue 17s: a stack's per-model program (tt_cnn: the Sentence-BERT demo's grid and FF1 fidelity) ---
    ("program fidelity of an unknown operator", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn", "model=bert_base",
                                                 "model.phase=prefill", "model.batch=1", "model.seq_len=128",
                                                 "stack.programs=[{model:bert_base,op_fidelity:[[fc9,hifi2]]}]"],
     "programs[bert_base].op_fidelity"),
    ("unknown program fidelity", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn",
                                  "stack.programs=[{model:bert_base,op_fidelity:[[fc1,hifi9]]}]"], "hifi2"),
    ("unknown core operator fidelity", ["evaluate", "+chip=wormhole_n150", "+chip.cores.op_fidelity=[[fc1,hifi9]]"],
     "chip.cores.op_fidelity"),
    ("stack programs without their source", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn",
                                             "stack.sources.programs=' '"], "stack.sources.programs"),
    # --- issue 17e (seventh session): neuronx-cc's --auto-cast mode of a stack ---
    ("unknown auto-cast mode", ["evaluate", "+chip=inferentia2", "stack.auto_cast=matmul"], "auto_cast"),
    ("auto-cast mode without its source", ["evaluate", "+chip=inferentia2", "stack.sources.auto_cast=' '"],
     "stack.sources.auto_cast"),
    ("negative per-core DMA bandwidth", ["evaluate", "+chip=inferentia2", "chip.hbm.core_dma_gb_s=-1"], "core_dma_gb_s"),
    # --- issue 17g (eighth session): the host's links and a stack's per-batch host I/O (cost/host_io.py) ---
    ("more host links than chips", ["evaluate", "+chip=wormhole_t3k", "chip.chips.host_links=9"],
     "chip.chips.host_links"),
    ("negative host link rate", ["evaluate", "+chip=wormhole_galaxy", "chip.chips.host_link_gb_s=-1"],
     "chip.chips.host_link_gb_s"),
    ("unknown host I/O rule", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn", "stack.host_batch_io=trace_3cq"],
     "trace_2cq"),
    ("host I/O without a write rate", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn",
                                       "stack.host_write_gb_per_s=0"], "host_write_gb_per_s"),
    ("host I/O without its source", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn", "stack.sources.host_io=' '"],
     "stack.sources.host_io"),
    # --- issue 17k (eighth session): the Tensix matrix kernels' measured utilization ---
    ("matmul utilization above the peak", ["evaluate", "+chip=wormhole_n150",
                                           "+chip.cores.matmul_efficiency=[[64,0.5],[512,1.2]]"],
     "chip.cores.matmul_efficiency"),
    ("matmul utilization rows out of order", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn",
                                              "stack.matmul_efficiency_by_arch.blackhole=[[512,0.5],[64,0.2]]"],
     "ascending"),
    ("matmul utilization without its source", ["evaluate", "+chip=wormhole_n150", "stack=tt_cnn",
                                               "stack.sources.matmul_efficiency=' '"], "stack.sources.matmul_efficiency"),
    # --- issue 17b3 (ninth session): a stack's dispatch offset per architecture ---
    ("dispatch offset for an unknown architecture", ["evaluate", "+chip=blackhole_p150", "stack=tt_cnn",
                                                     "stack.dispatch_offset_us_by_arch.grayskull=1"], "grayskull"),
    ("dispatch offset not a number", ["evaluate", "+chip=blackhole_p150", "stack=tt_cnn",
                                      "stack.dispatch_offset_us_by_arch.blackhole=fast"], "blackhole"),
    ("dispatch offset without its source", ["evaluate", "+chip=blackhole_p150", "stack=tt_cnn",
                                            "stack.sources.dispatch_offset=' '"], "stack.sources.dispatch_offset"),
    # --- issue 17, ninth session (17u): a new user's trial ---
    ("hybrid tp x pp degrees", ["evaluate", "+chip=wormhole_t3k", "chip.chips.tp=4", "chip.chips.pp=2"], "hybrids"),
]
# --- issue 17, ninth session (17u): a chip file of the user's (+chip=<file.yaml>) ---
FILES.update({
    "chip_empty": "",
    "chip_list": "- name: mychip\n- cores: {count: 4}\n",
    "chip_torn": "name: mychip\ncores: {count: 4, grid: [2, 2\n",
    "chip_no_cores": "name: mychip\nclock_ghz: 1.0\n",
})
CASES += [
    ("chip file missing", ["evaluate", "+chip=/nonexistent/mychip.yaml"], "no such file"),
    ("chip file empty", ["evaluate", "+chip={file:chip_empty}"], "a chip file holds a YAML mapping"),
    ("chip file a list", ["evaluate", "chip={file:chip_list}"], "a chip file holds a YAML mapping"),
    ("chip file cut short", ["evaluate", "+chip={file:chip_torn}"], "not valid YAML"),
    ("chip file without cores", ["evaluate", "+chip={file:chip_no_cores}"], "cores"),
]
