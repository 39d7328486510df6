"""Modelling conventions: ``default`` (ours, physical) or ``paper`` (the Elk artifact's, MICRO'25).

``conventions=paper`` on the command line (``conventions`` in a design) switches, each in exactly one place
here, the conventions in which the published Elk artifact (platformxlab/elk) differs from our default model,
so that a user can reproduce the paper's figures with this tool next to our physical default. Each switch and
its reason (docs/elk_reconciliation.md, "conventions=paper"):

- ``hbm_units``: the artifact reads an HBM bandwidth of X GB/s as X * 2^20 bytes per millisecond
  (x1.048576, 4.9% faster loads); ours is X * 10^9 bytes/s. A unit convention.
- ``chip_link_latency``: the artifact models a multi-chip system as one exchange with no chip-to-chip latency
  (its x1.25 penalty on sync/shift above 1,472 cores stands in for the chips); our barriers and transfers add
  the chip link's latency. Switched off: the chip-link latency is 0 (links keep their bandwidth, and chip
  crossings stay routed over them, so the artifact's x1.25 is not applied on top: that would count the
  chips twice).
- ``fused_projections``: the artifact's graphs (from JAX/XLA) fuse Q, K and V into one matmul and gate and up
  into one; ours are split as in the HF checkpoints. Fused: ``qkv_proj`` and ``gate_up_proj``. The fused
  QKV writes no K/V cache rows to HBM (its output is one activation), as the artifact's Dot, whose HBM bytes
  are its weights alone (157.3 MB per layer); ours append 655,360 B per layer (k and v, 0.03% of the layer's
  HBM traffic).
- ``softmax_rows``: the artifact models scale, mask and softmax of decode attention on [batch, heads, 1, 1]
  (one element per row: the key axis collapsed); ours on [batch, heads, 1, kv_len]. A shape convention of the
  artifact's operator list (its softmax is 2,048x smaller at KV 2,048).

- ``artifact_delivery``: the artifact's per-design load delivery rule (issue 18, second attempt), adopted as
  the artifact's convention with its constants, not tuned: a load takes max(HBM time, idle bytes per core /
  (GBPS_PER_CORE x threshold)), the rate per design as its source has it (ARTIFACT_DELIVERY below, each with
  its file:line in platformxlab/elk@8c6e814); its on-chip delivery occupies the network for bytes per core /
  GBPS_PER_CORE (cost/network.py, the one place the rule is computed). Its contention mode per design too:
  only ICBM (elk_full) may delay a load instead of slowing the running operator (sim/analytic.py). It gives
  each scheduler a different delivery rate on one chip: that is the artifact's modelling, kept under
  ``paper`` only, and only the analytic simulator (and the compiler's estimates) follow it; the event-driven
  simulator refuses such chips (one line, sim/event.py) rather than answer with its routed link model.

- ``artifact_ops`` (issue 18, third attempt): the artifact's operator list of a multi-head Llama decoder layer,
  48 operators (RMSNorm as 7 with a Sum over the hidden axis, Slices and RoPE as 15, scale / mask / softmax as
  6, the SwiGLU as Slices, Sigmoid and two Multiply), each one of ours, cited below (ARTIFACT_LAYER_OPS) and
  costed by our own model: the Sum's partial sums cross cores as our planner and network model price them.

- ``artifact_plans`` (issue 18, fourth attempt): the artifact planner's plan-space rules and sync counts, obeyed
  by our T10 planner (``Chip.plan_rules = "artifact"``; the rules live in compiler/t10.py ``_prune_spatial`` and
  compiler/select.py ``table_work``, each cited there by platformxlab/elk@8c6e814 TensorExpression.py:line):
  a spatial plan must occupy at least CORE_UTIL_THRESHOLD (0.9) x a size ratio of the cores and pad at most
  as DATA_PAD_THRESHOLD allows; a reduction split over r cores gathers its r partial sums with one sync each;
  a rotation pays BUFFER_ITERS (2) syncs per shift of each rotating tensor. Our own model prices the plans:
  a sync is our barrier (ipu_pod4: 118 cycles, the artifact's SYNC_CYCLES too), partial sums and rotations
  move as our network model says.

- ``artifact_core`` (issue 18e): the artifact's cost of a matmul on an IPU MK2 tile (its
  ``get_comp_time_per_iter_helper``, TensorExpression.py:566-595): the longer free extent on the AMP's 6-row
  side, and its fitted per-block / per-column / per-call cycles (cost/core_models.py ``IpuMk2ElkCore``).
  A core model of the artifact's, switched only for chips whose core model is ``ipu_mk2``.

Also under ``artifact_plans`` (issue 18e): its spatial factors of any integer within its utilization floor
(compiler/t10.py ``artifact_factors``) and its Max Cold idle layouts, a plan's active layout with its replicas
preloaded from HBM, which every preloading scheduler scores beside the compact layouts (compiler/elk.py
``OpChoices.max_cold``); both follow from ``Chip.plan_rules = "artifact"``.

Also with ``artifact_delivery`` (issue 18f): the artifact's contention rule, which counts an operator's syncs as
network time and, in ICBM's delay_comp=False mode, shifts the overlapping loads later instead of lengthening
them (cost/timeline.py ``artifact_contention``, called by sim/analytic.py on chips with its delivery rule); and
with ``artifact_plans``, elk_dyn / elk_full choose the idle layout (compact or Max Cold) per operator by its ICBM
score (compiler/elk.py ``induction_per_op_cold``).

Also with ``artifact_delivery`` (issue 18g): the artifact's placement of loads as late as possible (each ends at
its operator's start or the next load's start, DNNProgram.py:1753-1756 and the same in each design), against
which its delay_comp=True mode walks an operator's network need back from the operator's end (cost/timeline.py
``latest_loads`` and ``artifact_contention(loads_latest=True)``); ICBM's delay_comp=False mode keeps 18f's
mirrored placement.

Also with ``artifact_plans`` (issue 18h): the artifact's cold-hot pairing for the compact idle layout. Its Min
Cold layout is the smallest cold layout (weight bytes per core of a plan, exact) that pairs with a plan of its
hot frontier, and it warms up only into plans of the same spatial partition whose temporal splits divide its own
(TensorExpression.py:85-100, 1095-1158; DNNProgram.py:583). The compact frontier every preloading scheduler
reads holds only those plans (compiler/elk.py ``min_cold_bytes`` in ``op_choices``), priced with our warm-up.

Not switched (measured and sized in docs/elk_reconciliation.md instead): the artifact's x1.25 multi-chip
penalty; its warm-up cost (``get_warm_up_time``: the whole hot piece shifted, ours the copies a ring makes);
Naive / Static's pick of the *largest* hot layout of the Min Cold row that fits (ours: the fastest); its
choice between schedules by their contention-aware totals (ours by the contention-free forward latency).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from elk_dse.errors import ConfigError
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import Graph, Layer, Operator, Tensor

HBM_PAPER_SCALE = 2**20 / 1e6  # X GB/s read as X * 2^20 B/ms: bytes/s = X * 1.048576e9

GBPS_PER_CORE = 5.5  # platformxlab/elk@8c6e814 DNNProgram.py:34
# Per scheduler of ours (the artifact's design): the (GBPS_PER_CORE used, LOAD_NOC_THRESHOLD, delay_comp) variants
# it runs; with several, the artifact keeps the fastest (so does evaluate). delay_comp True: a preload's network
# use slows the running operator; False: the load is delayed instead. Schedulers absent here (sequential, ideal:
# ideal's loads skip the network) keep the routed network model.
ARTIFACT_DELIVERY: dict[str, tuple[tuple[float, float, bool], ...]] = {
    # Naive: int(GBPS_PER_CORE) (DNNProgram.py:1565), LOAD_NOC_THRESHOLD_NAIVE = 0.7 (DNNProgram.py:24),
    # DELAY_COMP_NAIVE = True (DNNProgram.py:29)
    "basic": ((float(int(GBPS_PER_CORE)), 0.7, True),),
    # Static: int(GBPS_PER_CORE) (DNNProgram.py:899), LOAD_NOC_THRESHOLD_BASE = 0.7 (DNNProgram.py:25),
    # DELAY_COMP_BASE = True (DNNProgram.py:30)
    "static": ((float(int(GBPS_PER_CORE)), 0.7, True),),
    # ICBM Ordered: int(GBPS_PER_CORE) (DNNProgram.py:617), run with thresholds 0.9, 0.7, 0.5 and
    # delay_comp=True (launch.py:399-407)
    "elk_dyn": tuple((float(int(GBPS_PER_CORE)), t, True) for t in (0.9, 0.7, 0.5)),
    # ICBM: GBPS_PER_CORE (DNNProgram.py:1136), LOAD_NOC_THRESHOLD_REORDER = 0.99 (DNNProgram.py:27); every
    # order run with delay_comp False (the load waits) and True, the better kept (DNNModels.py:57-58)
    "elk_full": ((GBPS_PER_CORE, 0.99, False), (GBPS_PER_CORE, 0.99, True)),
}


# Switch ``artifact_core`` (issue 18e): the artifact models the IPU's matmuls with its own fitted per-call cost
# (platformxlab/elk@8c6e814 TensorExpression.py:566-595); chips of ours with the IPU MK2 core model take it.
ARTIFACT_CORE_MODELS = {"ipu_mk2": "ipu_mk2_elk"}


@dataclass(frozen=True)
class Conventions:
    """Which of the artifact's conventions are on (see the module docstring for each one's reason)."""

    name: str
    hbm_units: bool = False
    chip_link_latency: bool = True
    fused_projections: bool = False
    softmax_rows: bool = False
    artifact_delivery: bool = False
    artifact_ops: bool = False
    artifact_plans: bool = False
    artifact_core: bool = False  # issue 18e: the artifact's IPU matmul cost (cost/core_models.py IpuMk2ElkCore)

    def chips(self, chip: Chip, scheduler: str) -> tuple[Chip, ...]:
        """``chip`` under these conventions for ``scheduler``: one chip, or (``artifact_delivery``) one per
        delivery-rate variant the artifact runs for that design (the caller keeps the fastest result)."""
        chip = self.chip(chip)
        rates = ARTIFACT_DELIVERY.get(scheduler, ()) if self.artifact_delivery and chip.hbm is not None else ()
        if not rates or chip.hbm is None:
            return (chip,)
        hbm = chip.hbm
        return tuple(replace(chip, hbm=replace(hbm, delivery_gb_s_per_core=gb * HBM_PAPER_SCALE, delivery_share=t,
                                               delivery_delays_load=not delay_comp))
                     for gb, t, delay_comp in rates)

    def chip(self, chip: Chip) -> Chip:
        """``chip`` under these conventions (the description itself for ``default``)."""
        if self.hbm_units and chip.hbm is not None:
            chip = replace(chip, hbm=replace(chip.hbm, bandwidth_gb_s=chip.hbm.bandwidth_gb_s * HBM_PAPER_SCALE))
        if not self.chip_link_latency and chip.chips.link_latency_ns:
            chip = replace(chip, chips=replace(chip.chips, link_latency_ns=0.0))
        if self.artifact_plans:
            chip = replace(chip, plan_rules="artifact")
        if self.artifact_core and chip.cores.model in ARTIFACT_CORE_MODELS:
            chip = replace(chip, cores=replace(chip.cores, model=ARTIFACT_CORE_MODELS[chip.cores.model]))
        return chip

    def graph(self, graph: Graph) -> Graph:
        """``graph`` under these conventions (the graph itself for ``default``)."""
        if not (self.fused_projections or self.softmax_rows or self.artifact_ops):
            return graph
        return replace(graph, layers=tuple(self._layer(la) for la in graph.layers))

    def _layer(self, layer: Layer) -> Layer:
        ops = list(layer.ops)
        if self.fused_projections:
            ops = _fuse(ops, ("q_proj", "k_proj", "v_proj"), "qkv_proj")
            ops = _fuse(ops, ("gate_proj", "up_proj"), "gate_up_proj")
        if self.softmax_rows:
            ops = [_softmax_rows(op) if op.kind == "softmax" else op for op in ops]
        if self.artifact_ops:
            ops = _artifact_ops(ops)
        return replace(layer, ops=tuple(ops))


def _fuse(ops: list[Operator], parts: tuple[str, ...], name: str) -> list[Operator]:
    """One matmul for ``parts`` (matmuls of one layer reading the same activation, output axis ``o``): its
    output axis is the sum of theirs, its weights theirs side by side, its output named as the first part's;
    readers of the later parts' outputs keep only that one (SwiGLU reads gate and up from the fused output).
    Unchanged if the layer lacks any part."""
    by = {op.name: op for op in ops}
    found = [by.get(p) for p in parts]
    if any(op is None or op.kind != "matmul" or "o" not in op.sizes for op in found):
        return ops
    parts_ops = [op for op in found if op is not None]
    first = parts_ops[0]
    if any(op.inputs[0].name != first.inputs[0].name for op in parts_ops):
        return ops
    width = sum(op.sizes["o"] for op in parts_ops)
    fused = replace(first, name=name, dims=tuple((d, width if d == "o" else n) for d, n in first.dims))
    dropped = {op.output.name for op in parts_ops[1:]}
    out: list[Operator] = []
    for op in ops:
        if op.name == parts[0]:
            out.append(fused)
        elif op.name in parts[1:]:
            continue
        elif any(t.name in dropped for t in op.inputs):
            out.append(replace(op, inputs=tuple(t for t in op.inputs if t.name not in dropped)))
        else:
            out.append(op)
    return out


def _softmax_rows(op: Operator) -> Operator:
    """The softmax on one element per row: its last (normalized) axis collapsed to 1."""
    last = op.dims[-1][0]
    return replace(op, dims=tuple((d, 1 if d == last else n) for d, n in op.dims))


# The artifact's operator list of a Llama decoder layer (switch ``artifact_ops``). Its graphs are NNFusion
# einstein_v2 exports (platformxlab/elk@8c6e814 models/original/llama2-13.json); models/model_parser.py:20-51
# drops Reshape, Broadcast and Concat and keeps every other operator, so one layer is 48 operators
# (../shared/reference/elk_artifact_layer.md, 960-1007). Each is built here as an operator of our IR and costed
# by our own model (a reduction's partial sums cost what our network model says, nothing is copied). The entries
# of the first layer in llama2-13.json (line of the entry's id): RMSNorm = Multiply x*x (1565), Sum over h (1566,
# line 192), Divide by h (1569), Add eps (1573), Sqrt (1574, line 244), Divide x / rms (1577), Multiply by gamma
# (1579); after the fused QKV Dot (5749) three Slices (5750 line 388, 5751 line 536, 5752 line 322); RoPE of q:
# Multiply by cos (1591), two half Slices (1584 line 436, 1582 line 447), Negative (1583 line 458), [Concat:
# dropped], Multiply by sin (1588), Add (1592), and the same for k (1599, 1604, 1602, 1603, 1608, 1609); scale
# Divide (1617), mask Add (1620), softmax as four SoftmaxBasic (max 6108, exp(x - max) 6109, sum 6110, divide
# 6111); after the fused gate/up Dot (5754) two Slices (5755 line 1085, 5756 line 1074), Sigmoid (1654 line
# 1096), Multiply gate * sigmoid (1655), Multiply by up (1656).
ARTIFACT_LAYER_OPS = ("attn_norm", "qkv_proj", "attn_softmax", "mlp_norm", "gate_up_proj", "swiglu")


def _artifact_ops(ops: list[Operator]) -> list[Operator]:
    """The layer as the artifact's operators (see ARTIFACT_LAYER_OPS); unchanged unless the layer has all of
    ARTIFACT_LAYER_OPS with the shapes of a fused Llama decoder layer (rms norms over ``h``, ``qkv_proj`` with
    output axis ``o`` = 3 x hidden, decode softmax over ``(b, g, r, l)``)."""
    by = {op.name: op for op in ops}
    if any(n not in by for n in ARTIFACT_LAYER_OPS):
        return ops
    qkv, sm, gu = by["qkv_proj"], by["attn_softmax"], by["gate_up_proj"]
    norms_ok = all(by[n].kind == "norm" and [d for d, _ in by[n].dims] == ["t", "h"] and len(by[n].inputs) == 2
                   for n in ("attn_norm", "mlp_norm"))
    if not norms_ok or [d for d, _ in sm.dims] != ["b", "g", "r", "l"] or qkv.sizes["o"] != 3 * qkv.sizes["h"]:
        return ops
    g, r = sm.sizes["g"], sm.sizes["r"]
    heads = g * r
    width = qkv.sizes["h"]
    if width % heads or (width // heads) % 2:
        return ops
    d = width // heads
    act = qkv.inputs[0]

    def ten(name: str, *axes: str, like: Tensor = act) -> Tensor:
        return Tensor(name, tuple(axes), like.role, like.bytes_per_element, like.fmt)

    def rms(op: Operator) -> list[Operator]:
        n, x, gamma, y = op.name, op.inputs[0], op.inputs[1], op.output
        th, t1 = op.dims, (op.dims[0],)
        return [
            Operator(f"{n}_square", "elementwise", th, (x, x), ten(f"{n}_sq", "t", "h"), 1.0),
            Operator(f"{n}_sum", "reduce", th, (ten(f"{n}_sq", "t", "h"),), ten(f"{n}_ss", "t"), 1.0),
            Operator(f"{n}_mean", "elementwise", t1, (ten(f"{n}_ss", "t"),), ten(f"{n}_ms", "t"), 1.0),
            Operator(f"{n}_eps", "elementwise", t1, (ten(f"{n}_ms", "t"),), ten(f"{n}_var", "t"), 1.0),
            Operator(f"{n}_sqrt", "elementwise", t1, (ten(f"{n}_var", "t"),), ten(f"{n}_rms", "t"), 1.0),
            Operator(f"{n}_divide", "elementwise", th, (x, ten(f"{n}_rms", "t")), ten(f"{n}_xn", "t", "h"), 1.0),
            Operator(f"{n}_scale", "elementwise", th, (ten(f"{n}_xn", "t", "h"), gamma), y, 1.0),
        ]

    t = qkv.sizes["t"]
    tw = (("t", t), ("o", width))
    qkv_out = ten("qkv", "t", "o")
    q_part, k_part = ten("q_part", "t", "o"), ten("k_part", "t", "o")
    q_slice = Operator("q_slice", "slice", tw, (qkv_out,), q_part, 0.0)
    k_slice = Operator("k_slice", "slice", tw, (qkv_out,), k_part, 0.0)

    def rope(x: str, src: Tensor, y: Tensor) -> list[Operator]:
        full = (("t", t), ("g", heads), ("d", d))
        half = (("t", t), ("g", heads), ("d", d // 2))
        cos, sin = ten(f"rope_cos_{x}", "t", "d"), ten(f"rope_sin_{x}", "t", "d")
        xs = ten(src.name, "t", "g", "d")
        return [
            Operator(f"{x}_rope_cos", "elementwise", full, (xs, cos), ten(f"{x}_c", "t", "g", "d"), 1.0),
            Operator(f"{x}_rope_hi", "slice", half, (xs,), ten(f"{x}_hi", "t", "g", "d"), 0.0),
            Operator(f"{x}_rope_lo", "slice", half, (xs,), ten(f"{x}_lo", "t", "g", "d"), 0.0),
            Operator(f"{x}_rope_neg", "elementwise", half, (ten(f"{x}_hi", "t", "g", "d"),),
                ten(f"{x}_hi_neg", "t", "g", "d"), 1.0),
            # rotate_half's Concat is dropped by the artifact's parser: the Multiply reads both halves
            Operator(f"{x}_rope_sin", "elementwise", full,
                (ten(f"{x}_hi_neg", "t", "g", "d"), ten(f"{x}_lo", "t", "g", "d"), sin),
                ten(f"{x}_s", "t", "g", "d"), 1.0),
            Operator(f"{x}_rope_add", "elementwise", full,
                (ten(f"{x}_c", "t", "g", "d"), ten(f"{x}_s", "t", "g", "d")), y, 1.0),
        ]

    q_name = qkv.output.name  # what attention reads (q)
    rope_q = rope("q", q_part, ten(q_name, "t", "g", "d"))
    v_slice = Operator("v_slice", "slice", tw, (qkv_out,), ten("v_part", "t", "o"), 0.0)
    rope_k = rope("k", k_part, ten("k_rot", "t", "g", "d"))  # the artifact's K/V go to no cache op

    sdims, x_in, y_out = sm.dims, sm.inputs[0], sm.output
    rows = tuple((dn, n) for dn, n in sdims if dn != "l")
    axes = tuple(dn for dn, _ in sdims)
    raxes = tuple(dn for dn, _ in rows)
    softmax = [
        Operator("attn_scale", "elementwise", sdims, (x_in,), ten("scores_scaled", *axes), 1.0),
        Operator("attn_mask", "elementwise", sdims, (ten("scores_scaled", *axes), ten("attn_mask_in", "b", "l")),
            ten("scores_masked", *axes), 1.0),
        Operator("attn_softmax_max", "reduce", sdims, (ten("scores_masked", *axes),), ten("scores_max", *raxes), 1.0),
        Operator("attn_softmax_exp", "elementwise", sdims, (ten("scores_masked", *axes), ten("scores_max", *raxes)),
            ten("scores_exp", *axes), 2.0),
        Operator("attn_softmax_sum", "reduce", sdims, (ten("scores_exp", *axes),), ten("scores_sum", *raxes), 1.0),
        Operator("attn_softmax", "elementwise", sdims, (ten("scores_exp", *axes), ten("scores_sum", *raxes)),
            y_out, 1.0),
    ]

    f = gu.sizes["o"] // 2
    tf = (("t", t), ("f", f))
    gu_out = ten("gate_up", "t", "f")
    swiglu = by["swiglu"]
    gate, up = ten("gate", "t", "f"), ten("up", "t", "f")
    mlp = [  # the artifact's order: the up Slice (5756) before the gate Slice (5755)
        Operator("up_slice", "slice", tf, (gu_out,), up, 0.0),
        Operator("gate_slice", "slice", tf, (gu_out,), gate, 0.0),
        Operator("gate_sigmoid", "elementwise", tf, (gate,), ten("gate_sig", "t", "f"), 4.0),
        Operator("gate_silu", "elementwise", tf, (gate, ten("gate_sig", "t", "f")), ten("gate_act", "t", "f"), 1.0),
        Operator("swiglu", "elementwise", tf, (ten("gate_act", "t", "f"), up), swiglu.output, 1.0),
    ]

    out: list[Operator] = []
    for op in ops:
        if op.name in ("attn_norm", "mlp_norm"):
            out += rms(op)
        elif op.name == "qkv_proj":
            out += [replace(op, output=replace(op.output, name="qkv")), v_slice, q_slice, *rope_q, k_slice, *rope_k]
        elif op.name == "attn_softmax":
            out += softmax
        elif op.name == "gate_up_proj":
            out.append(replace(op, output=replace(op.output, name="gate_up")))
        elif op.name == "swiglu":
            out += mlp
        else:
            out.append(op)
    return out


CONVENTIONS: dict[str, Conventions] = {
    "default": Conventions("default"),
    "paper": Conventions("paper", hbm_units=True, chip_link_latency=False, fused_projections=True,
                         softmax_rows=True, artifact_delivery=True,
                         artifact_ops=True, artifact_plans=True, artifact_core=True),
}


def conventions(name: str) -> Conventions:
    """The named conventions (ConfigError naming ``conventions`` and what is allowed if unknown)."""
    if not isinstance(name, str) or name not in CONVENTIONS:
        raise ConfigError("conventions", name, " or ".join(CONVENTIONS))
    return CONVENTIONS[name]
