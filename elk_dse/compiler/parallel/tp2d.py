"""2-D tensor parallelism on a 2-D mesh/torus of chips: the scheme of tt-metal's Llama-3 70B Galaxy demo.

Source: tt-metal models/demos/llama3_70b_galaxy/tt/ (llama_attention.py @00d4c974, llama_mlp.py @0457767c,
lm_head.py @04b34050, distributed_norm.py @0b50bdd8, llama_decoder.py @05a9b478; read 2026-11-28). The demo runs
on the Galaxy's 32 chips as a (8, 4) mesh device: every weight matrix is sharded in 2-D with
``ShardTensor2dMesh``, one matrix dimension over each mesh axis, and activations are reduced along one axis at a
time. Here the axis the heads and the MLP width are spread over is ``A`` (the demo's cluster_axis 0, 8 chips)
and the axis the hidden dimension is spread over is ``B`` (cluster_axis 1, 4 chips). On our ``chips.grid``
[rows, cols] the longer side is A (Galaxy [4, 8]: the 8 chips of a row), the other B (the 4 of a column); a
chip at (r, c) holds part (c, r) when A runs along the rows.

Per decoder layer (t tokens, hidden H, ffn F, the residual stream "fractured": H/B per chip):

- **Norms** (``DistributedNorm`` -> ``tt_distributed_rmsnorm``): each chip normalises its H/B slice; the
  per-token statistics are all_gathered over B (``rms_norm_pre_all_gather``, ``all_gather`` on cluster_axis 1,
  a stats tile of t x 32 bf16 per chip). Residual adds: H/B per chip. The embedding lookup stays replicated
  (its table is stored whole on every chip, so a tied LM head's table is too, as in tp).
- **QKV** (``wqkv`` dims (3, 2)): output columns (heads) over A, input H over B; the partial sums meet in one
  **reduce_scatter over B** (``llama_rs_create_heads``, cluster_axis 1) that also scatters the users: each chip
  gets t/B users of its heads (``batch_size_per_device_group`` = 32 / 4 = 8).
- **Attention** (SDPA decode) on the chip's KV heads (heads / A; KV heads / A, one per chip on the Galaxy) and
  its t/B users; then an **all_gather over B** of the context (``all_gather_concat``, cluster_axis 1).
- **o_proj** (``wo`` dims (2, 3)): input (heads) over A, output H over B; **all_reduce over A**
  (``line_all_reduce``, cluster_axis 0) of the t x H/B output.
- **MLP** (w1/w3 dims (-1, -2), w2 dims (-2, -1)): gate and up with F over A and H over B, each followed by a
  **reduce_scatter over B** (cluster_axis 1, scattering F: F/(A*B) per chip; gate's is fused with up's matmul,
  ``llama_rs_matmul``, and runs beside it: ``CollectivePoint.overlap``, issue 17g), the activation on that slice, an
  **all_gather over B** (cluster_axis 1), down_proj with F over A and H over B, **all_reduce over A**.
- **LM head** (dims (3, 2)): vocabulary over A, H over B, **all_reduce over B** (cluster_axis 1); the logits stay
  split over A (sampling runs on the chips).

Every collective runs at once in every row (or column) of the mesh: one Collective over the first group with
the other groups as its ``replicas`` (cost/collectives.py prices their shared links). Collectives over a group
of one chip (a 1 x n grid's B) are omitted. tp2d plans dense decoders and encoders whose heads A divides (the
demo asserts it) and whose KV heads A divides or that A is a multiple of (KV heads replicated, as tp does);
mixtures of experts and MLA are refused with the reason. Prefill uses the same splits as decode (the demo's
prefill path reduces differently); the data here is the decode path's.

Under a stack whose ``ccl_scheme`` is ``tt_transformers`` (issue 17t, fifth session) the collectives are those of
tt-metal's generic tt_transformers code on the Galaxy instead of the demo's: its all-reduces are all_gathers of the
whole partial buffers plus a local sum (``line_gather``) below hidden 8192, reduce_scatter + all_gather at 8192;
below 8192 gate and up are all-reduced over B (the MLP width stays F / A) with no gather after the activation; no
collective is fused with a matmul (docs/parallelism.md, "tt_transformers' collectives").
"""

from __future__ import annotations

from dataclasses import replace

from elk_dse.compiler.parallel.base import (
    CollectivePoint,
    DeviceOp,
    Parallelism,
    ParallelPlan,
    Stage,
    Workload,
    instance_layers,
    meta_int,
    one_chip_view,
    rebuilt,
    register_parallelism,
    split_dims,
)
from elk_dse.compiler.parallel.tp import HEAD_OPS, KV_COLUMN, LAYOUT_O, MLP_WIDTH, _stored_bytes
from elk_dse.cost.collectives import Collective
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import Layer, Operator
from elk_dse.program import Infeasible

QKV = frozenset({"q_proj", "k_proj", "v_proj", "qkv_proj"})  # one fused reduce_scatter over B after the last
UP = frozenset({"gate_proj", "up_proj", "gate_up_proj", "fc1"})  # F over A, H over B: reduce_scatter over B each
DOWN = frozenset({"o_proj", "down_proj", "fc2"})  # input over A, H over B: all_reduce over A
FRACTURED = frozenset({"norm", "elementwise"})  # kinds of the residual stream's ops: H over B
MLP_ACT = MLP_WIDTH - {"gate_split", "up_split"}  # the activation, after which the MLP width is all_gathered
# The one collective of a decoder layer the demo overlaps with compute: llama_mlp.py's decode path calls
# tt_ccl.double_matmul_line_reduce_scatter(x, w1, w3), i.e. ttnn.experimental.llama_rs_matmul with
# second_weight_tensor=w3 (llama_ccl.py @00ab7c95): one program computing the w1 and w3 matmuls whose fused
# reduce_scatter of the w1 output runs while the w3 matmul computes. Every other CCL of the layer
# (llama_rs_create_heads, all_gather_concat, line_all_reduce = all_reduce_async, the w3 line_reduce_scatter,
# line_all_gather) runs on the worker sub-device between the ops that produce and consume its data.
FUSED_RS_NEXT = {"gate_proj": "up_proj"}
STATS_BYTES_PER_TOKEN = 32 * 2  # a norm's statistics per token and chip: one bf16 tile row of 32 (the demo's
#                                 padded_shape (1, 1, t, 32) in tt_distributed_rmsnorm)


def mesh_axes(system: Chip) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]] | None:
    """(A groups, B groups) of the chips' 2-D grid (ids row-major): A along the longer side (ties: the rows),
    B along the other; None without a 2-D grid."""
    grid = system.chips.grid
    if grid is None or len(grid) != 2 or system.chips.topology not in ("mesh", "torus"):
        return None
    rows, cols = int(grid[0]), int(grid[1])
    by_row = tuple(tuple(r * cols + c for c in range(cols)) for r in range(rows))
    by_col = tuple(tuple(r * cols + c for r in range(rows)) for c in range(cols))
    return (by_row, by_col) if cols >= rows else (by_col, by_row)


def _collective(kind: str, nbytes: float, groups: tuple[tuple[int, ...], ...],
                algorithm: str = "auto") -> Collective | None:
    if len(groups[0]) < 2:
        return None
    return Collective(kind, nbytes, groups[0], algorithm, replicas=groups[1:])


@register_parallelism("tp2d")
class TensorParallel2D(Parallelism):
    """2-D tensor parallelism over the chips' mesh (module docstring)."""

    def plan(self, work: Workload, system: Chip, degree: int) -> ParallelPlan | Infeasible:
        graph = work.graph
        axes = mesh_axes(system)
        if axes is None:
            return Infeasible("parallelism", "tp2d needs a 2-D mesh or torus of chips (chips.grid [rows, cols])")
        a_groups, b_groups = axes
        na, nb = len(a_groups[0]), len(b_groups[0])
        heads, kv_heads = meta_int(graph, "heads"), meta_int(graph, "kv_heads") or meta_int(graph, "heads")
        if not heads:
            return Infeasible("parallelism", f"tp2d needs a transformer's heads; {graph.name} has none")
        if meta_int(graph, "experts") or meta_int(graph, "kv_lora_rank"):
            return Infeasible("parallelism", "tp2d models dense attention and MLPs (the Galaxy demo's); "
                              "mixtures of experts and MLA: use tp or ep")
        if heads % na or (kv_heads % na and na % kv_heads):
            return Infeasible("parallelism", f"tp2d: the {na} chips of a mesh axis must divide the {heads} heads "
                              f"and divide or be a multiple of the {kv_heads} KV heads (use tp, which pads heads)")
        kv_split = min(na, kv_heads)
        # issue 17t: tt_transformers' own code on a 2-D mesh (overheads.ccl_scheme; docs/parallelism.md, "tt_transformers
        # on a Galaxy"): its all-reduces are all_gathers of whole partial buffers + a local sum (line_gather), except
        # where the code composes reduce_scatter + all_gather (hidden 8192, `self.dim == 8192` / `use_composite` in
        # attention.py and mlp.py); below hidden 8192 the MLP's gate and up outputs are all-reduced over B (no
        # scatter of the MLP width, no all_gather after the activation).
        tt = system.overheads.ccl_scheme == "tt_transformers"
        composite = meta_int(graph, "hidden") == 8192
        mlp_scatter = not tt or composite
        layers: list[Layer] = []
        parts: dict[tuple[int, int], int] = {}
        for li, layer in enumerate(graph.layers):
            ops = []
            for k, op in enumerate(layer.ops):
                split, parts[(li, k)] = _split(op, na, nb, kv_split, mlp_scatter)
                ops.append(split)
            layers.append(replace(layer, ops=tuple(ops)))
        per_chip = tuple(layers)
        chip_instances = instance_layers(replace(graph, layers=per_chip))
        points: list[CollectivePoint] = []
        share: list[float] = []
        qkv_bytes = 0.0
        ccl_bpe = system.overheads.ccl_bytes_per_element  # issue 17c: the stack's persistent CCL buffers' format

        def payload(op: Operator) -> float:
            """Bytes of ``op``'s output in the stack's CCL buffer format (the demo's bfloat8_b: #2, #4, #6-#9 of
            docs/parallelism.md's table), else in the operator's own dtype."""
            own = op.output.bytes_per_element
            return op.output_bytes * (ccl_bpe / own if ccl_bpe and own else 1.0)

        for i, (li, k, op) in enumerate(chip_instances):
            share.append(1.0 / parts[(li, k)])
            nxt = chip_instances[i + 1][2] if i + 1 < len(chip_instances) else None
            found: list[tuple[Collective | None, str]] = []
            extra: dict[int, tuple[DeviceOp, ...]] = {}  # issue 17c: TG-only ops after found[k] (tg_extra_ops)
            if op.name in QKV:
                qkv_bytes += payload(op)
                if nxt is None or nxt.name not in QKV:  # the fused reduce_scatter after the last projection
                    if tt:  # tt_all_reduce(cluster_axis=1) of xqkv_fused (attention.py forward_decode)
                        found.append((_collective("all_reduce", qkv_bytes, b_groups, "line_gather"), "output"))
                    else:
                        found.append((_collective("reduce_scatter", qkv_bytes, b_groups), "output"))
                    qkv_bytes = 0.0
            elif op.name in UP and tt and not composite:  # mlp.py: tt_all_reduce(w1_out / w3_out, cluster_axis=1)
                # issue 17c: the call passes no dtype, so the gather runs in bfloat16 after two typecasts of the
                # matmul's bfloat8_b output (tg_extra_ops)
                bf16 = op.output_bytes / op.output.bytes_per_element * BF16_BYTES
                extra[len(found)] = tg_extra_ops("typecast", bf16, payload(op))
                found.append((_collective("all_reduce", bf16, b_groups, "line_gather"), "output"))
            elif op.name in UP:
                # gate's reduce_scatter runs beside up's matmul when up follows (FUSED_RS_NEXT; the demo's
                # llama_rs_matmul; tt_transformers runs two plain reduce_scatter_minimal_async)
                fused = op.name in FUSED_RS_NEXT and nxt is not None and nxt.name == FUSED_RS_NEXT[op.name] and not tt
                found.append((_collective("reduce_scatter", payload(op), b_groups), "fused" if fused else "output"))
            elif op.name in DOWN and tt and composite:  # tt_all_reduce(use_composite=True): RS + AG over A
                found.append((_collective("reduce_scatter", payload(op), a_groups), "output"))
                found.append((_collective("all_gather", payload(op), a_groups), "regather"))
            elif op.name in DOWN and tt:  # tt_all_reduce(cluster_axis=0, dim=0): all_gather + fast_reduce_nc
                found.append((_collective("all_reduce", payload(op), a_groups, "line_gather"), "output"))
            elif op.name in DOWN:
                found.append((_collective("all_reduce", payload(op), a_groups), "output"))
            elif op.name == "lm_head" and tt:  # lm_head.py: tt_all_reduce(cluster_axis=1, use_composite=True)
                found.append((_collective("reduce_scatter", payload(op), b_groups), "output"))
                found.append((_collective("all_gather", payload(op), b_groups), "regather"))
            elif op.name == "lm_head":
                found.append((_collective("all_reduce", op.output_bytes, b_groups), "output"))
            elif op.name in MLP_ACT and not mlp_scatter:  # the MLP width was all-reduced, not scattered
                pass
            elif op.name in MLP_ACT:  # the demo's line_all_gather into its bfloat8_b BINARY_MUL buffer
                if tt:  # mlp.py (hidden 8192): to_memory_config(w2_in, L1) after the all_gather
                    extra[len(found)] = tg_extra_ops("w2_input", payload(op) * nb, 0.0)
                found.append((_collective("all_gather", payload(op) * nb, b_groups), "output"))
            elif op.name in ("attn_value", "attention"):  # all_gather_concat: the attention's own dtype
                if tt:  # attention.py: the user_selection_matrix matmul after tt_all_gather
                    extra[len(found)] = tg_extra_ops("user_selection", op.output_bytes * nb, op.output_bytes)
                found.append((_collective("all_gather", op.output_bytes * nb, b_groups), "output"))
            elif op.kind == "norm" and parts[(li, k)] > 1:
                tokens = dict(op.dims).get("t", 1)
                stats = STATS_BYTES_PER_TOKEN * tokens * nb
                if tt:  # ccl.py tt_sharded_distributed_rmsnorm: rms_norm_pre_all_gather and _post_all_gather
                    extra[len(found)] = tg_extra_ops("norm", op.output_bytes, stats)
                found.append((_collective("all_gather", stats, b_groups), "stats"))
            points += [CollectivePoint(i, c, "output" if payload == "fused" else payload, overlap=payload == "fused",
                                       device_ops=tt_all_reduce_device_ops(c) + extra.get(j, ()) if tt else ())
                       for j, (c, payload) in enumerate(found) if c is not None]
        stored = _stored_bytes(graph, per_chip)
        chip_graph = rebuilt(graph, per_chip, stored)
        stage = Stage(chip_graph, tuple(range(system.num_chips)), tuple(range(len(chip_instances))), tuple(share),
                      tuple(points))
        # "tp": the chips every weight matrix is split over (the Parquet metric parallel_tp); tp_a / tp_b: the axes.
        return ParallelPlan("tp2d", (("tp", na * nb), ("tp_a", na), ("tp_b", nb)), one_chip_view(system), system,
                            (stage,),
                            note=f"heads and MLP width over {na} chips, hidden over {nb} (tt-metal Galaxy demo)")


def tt_all_reduce_device_ops(c: Collective) -> tuple[DeviceOp, ...]:
    """The local device operations tt_transformers' Galaxy all-reduce runs beside its ``all_gather_async``
    (issue 17t, second session; docs/parallelism.md "Device operations around the collectives"): tenstorrent/tt-metal
    models/tt_transformers/tt/ccl.py @013eaee3 ``tt_all_reduce``, the TG branch without ``use_composite``. Whatever
    ``sharded`` is, it runs one memory-config conversion (``sharded``, as mlp.py's decode calls and attention.py's QKV
    call pass (o_proj's not read): ``to_memory_config`` of the gathered buffer to L1 interleaved after the gather;
    else of the input to DRAM before it) and
    ``fast_reduce_nc`` (the local sum of the n gathered buffers). Only ``line_gather`` all-reduces (the non-composite
    branch) have them; the typecasts the branch runs when the input's dtype is not the call's CCL dtype depend on
    the call site and are not charged. ``noc_bytes``: the sharded case (decode): the conversion reads and writes
    the n buffers, the reduce reads them and writes one."""
    if c.kind != "all_reduce" or c.algorithm != "line_gather":
        return ()
    gathered = c.bytes_per_chip * len(c.group)
    return (DeviceOp("to_memory_config", 2.0 * gathered), DeviceOp("fast_reduce_nc", gathered + c.bytes_per_chip))


BF16_BYTES = 2.0  # bytes per bfloat16 element


def tg_extra_ops(site: str, a: float, b: float) -> tuple[DeviceOp, ...]:
    """The device operations tt_transformers' TG ("Galaxy", ``is_galaxy`` / ``self.TG``) decode path runs at one
    collective's call site beyond what the single-chip path runs (issue 17c, sixth session, second helper;
    docs/parallelism.md "What the TG rows run that we did not charge"). Read in tenstorrent/tt-metal
    ``models/tt_transformers/tt/`` at the stored versions (ccl.py @013eaee3, mlp.py @03f118e6, attention.py
    @00b769dd, distributed_norm.py and decoder.py @01229001, models/common/rmsnorm.py @01229001). Only the TG ops
    that have no counterpart on the n150 are charged: the n150's own extra ops (memory conversions our graph has no
    operator for) are inside the per-operator dispatch fitted on the n150 points, and where the TG path replaces one
    of them by one op of its own the count does not change (docs/parallelism.md lists each pairing).

    ``site`` and its bytes (``a``, ``b``; each op's ``noc_bytes`` = what it reads plus what it writes, unpadded):

    - ``typecast`` (mlp.py: ``tt_all_reduce(w1_out / w3_out, ...)`` passes no ``dtype``, so ccl.py's "Cast to CCL
      dtype" runs on the matmul's bfloat8_b output): ``to_memory_config(input, L1, bfloat16)`` (reads ``b``, the
      bfloat8_b buffer, writes ``a``, its bfloat16 size) and, ``sharded`` with a ``memory_config``,
      ``to_memory_config(input, memory_config, bfloat16)`` (reads and writes ``a``).
    - ``user_selection`` (attention.py ``forward_decode``, ``if self.TG`` after ``tt_all_gather`` of the users):
      ``ttnn.matmul(self.user_selection_matrix, attn_output)`` (reads the gathered ``a``, writes one chip's ``b``;
      the 32 x 128 bfloat4_b selection matrix, a few KiB, not counted). The ``to_memory_config(attn_output, L1)``
      before it pairs with the n150's ``to_memory_config(dense_out_reduced, ...)`` (``if not self.TG``).
    - ``norm`` (distributed_norm.py ``DistributedNorm.forward`` -> ccl.py ``tt_sharded_distributed_rmsnorm``:
      ``to_memory_config``, ``rms_norm_pre_all_gather``, the stats gather, ``rms_norm_post_all_gather``; the n150
      runs ``to_memory_config`` and one ``rms_norm``): one op more, ``rms_norm_post_all_gather`` (reads the chip's
      slice ``a`` and the gathered stats ``b``, writes ``a``).
    - ``w2_input`` (mlp.py, hidden 8192: ``to_memory_config(w2_in, L1)`` after the all_gather of the MLP width):
      reads and writes the gathered ``a``. (decoder.py's TG ``to_memory_config(hidden_states, MLP_ACT_MEMCFG)``
      pairs with the n150's ``to_memory_config(w2_in, ...)`` in mlp.py, ``not TG``.)

    The QKV ``slice_mat`` matmul (attention.py, ``if self.TG``) stands where the n150 runs
    ``sharded_to_interleaved``: not charged."""
    if site == "typecast":
        return (DeviceOp("typecast", b + a), DeviceOp("to_memory_config", 2.0 * a))
    if site == "user_selection":
        return (DeviceOp("matmul_user_selection", a + b),)
    if site == "norm":
        return (DeviceOp("rms_norm_post_all_gather", 2.0 * a + b),)
    if site == "w2_input":
        return (DeviceOp("to_memory_config", 2.0 * a),)
    raise ValueError(f"tg_extra_ops: unknown site {site!r} (typecast, user_selection, norm, w2_input)")


def _split(op: Operator, na: int, nb: int, kv_split: int, mlp_scatter: bool = True) -> tuple[Operator, int]:
    """One chip's part of ``op`` and the number of parts it was cut into (1: replicated). ``mlp_scatter``: the MLP
    width is reduce-scattered over B after gate/up (F / (A B) per chip); else all-reduced (F / A, issue 17t)."""
    dims = dict(op.dims)
    factors: dict[str, int] = {}
    if op.name in KV_COLUMN and "o" in dims:
        factors = {"o": kv_split, "h": nb}
    elif op.name in QKV | UP | {"lm_head"} and "o" in dims:
        factors = {"o": na, "h": nb}
    elif op.name in DOWN and "h" in dims:
        factors = {"h": na, "o": nb}
    elif op.name == "qkv_bias" and "o" in dims:  # issue 17q (ninth session): each chip's QKV columns (over A)
        factors = {"o": na}
    elif op.name in LAYOUT_O and "o" in dims:  # after the reduce_scatter: the chip's heads and users
        width = kv_split if op.name in ("k_split", "v_split", "k_raw_split") else na
        factors = {"o": width, "t": nb}
    elif op.name in MLP_WIDTH and "f" in dims:  # after the reduce_scatter over B: F / (A * B)
        factors = {"f": na * nb if mlp_scatter else na}
    elif op.name in HEAD_OPS and "g" in dims and "r" in dims and "b" in dims:
        g = dims["g"]
        factors = {"g": na} if g % na == 0 else {"g": g, "r": na // g}
        factors["b"] = nb
    elif op.kind in FRACTURED and "h" in dims:
        factors = {"h": nb}
    factors = {d: f for d, f in factors.items() if f > 1}
    if not factors:
        return op, 1
    n = 1
    for f in factors.values():
        n *= f
    return split_dims(op, factors), n
