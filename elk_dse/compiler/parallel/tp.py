"""Tensor parallelism (Megatron-LM): every chip holds 1/tp of each attention and MLP block.

- **Column splits** (output features over the chips, no communication): q/k/v projections by heads (a fused
  qkv_proj by its columns), gate/up (fc1) by the MLP width, the MLP activation with them; attention runs on
  each chip's heads. KV heads: kv_heads/tp per chip when tp divides them, else one KV head per chip (the KV
  heads replicated tp/kv_heads times, as tt-metal and vLLM do). When tp does not divide the query heads (or
  the KV heads, when there are at least tp of them), the heads are **padded** to the next multiple of tp, as
  AWS Neuron's NxD Inference and tt-metal pad them: every chip runs ceil(heads / tp) heads (ceil(kv_heads / tp)
  KV heads), the padding heads' work is real work and their weights are stored (MLA keeps the divisibility
  requirement).
- **Row splits** (input features over the chips, partial sums): o_proj and down_proj (fc2), each followed by
  one **all_reduce** of the block's output activations (t x hidden). We use all_reduce, not reduce_scatter +
  all_gather: a ring all_reduce *is* a reduce_scatter followed by an all_gather (the same 2(n-1)/n bytes per
  chip), and the split form pays off only when the norms and residuals between the two run sequence-parallel
  on 1/tp of the tokens, which saves their (vector-unit) compute but adds a collective's startup per block;
  decode steps have a handful of tokens, where startup dominates (tt-metal's Llama decode: two all-reduces per
  layer, docs/validation.md).
- **LM head** split over the vocabulary, followed by an all_gather of the logits.
- Norms, residual adds, embeddings and the MoE router stay replicated (every chip computes them in full).
  MoE experts are split like a dense MLP (each expert's width over the chips). Their partial sums are
  all-reduced after the combine (the router-weighted sum over each token's k experts, replicated and linear,
  so the reduction commutes with it): one all_reduce of tokens x hidden per MoE layer, as the vendors' code
  runs it (issue 17x: aws-neuron/neuronx-distributed src/neuronx_distributed/modules/moe/model.py @0598cd8b,
  ``MoE.forward``: ``reduce_from_tensor_model_parallel_region`` of the ExpertMLPs' combined (T, H) output;
  tenstorrent/tt-metal models/tt_transformers/tt/mixtral_moe.py @07fed00b, ``TtMoeLayer.forward``: the expert
  output times its router weight, then ``tt_all_reduce`` of the B x H result). Before, the all_reduce followed
  expert_down_proj over the token-expert pairs: top_k times the bytes. MLA (DeepSeek) splits its per-head operators by heads; the
  latent projections and the latent KV cache are replicated.

Under a stack whose ``ccl_scheme`` is ``tt_transformers`` (issue 17t, fifth session; docs/parallelism.md) the
collectives are the ones tt-metal's tt_transformers code issues on a 1 x n mesh instead: a reduce_scatter after each
row split, an all_gather of the fractured residual before every norm, none for the LM head, and on 8 chips the
attention output gathered inside o_proj (``all_gather_matmul``: o_proj split by columns, the gather overlapped).

Every chip compiles its share with the T10/Elk compiler on one chip's view; the plan is one stage on all chips.

Issue 17d, the stack's ``kv_head_sharding: replicate_to_ranks`` (the ``neuron`` stack): transformers-neuronx
runs one TP rank per core (TP degree = chips x cores per chip) and lays the heads out per rank, so every chip
holds ``cores`` ranks' heads (:func:`rank_heads`): the query heads padded to a multiple of the ranks, and the
KV heads, when the ranks do not divide them, replicated to the query heads (GQA ``REPLICATED_HEADS``) and
padded with them, so each core stores and reads its own copy of its KV heads' cache and K/V weights.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from elk_dse.compiler.parallel.base import (
    CollectivePoint,
    Parallelism,
    ParallelPlan,
    Stage,
    Workload,
    instance_layers,
    meta_int,
    one_chip_view,
    rebuilt,
    register_parallelism,
    ring_order,
    split_dims,
)
from elk_dse.cost.collectives import Collective
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import Graph, Layer, Operator, Role
from elk_dse.models.transformer import expected_experts
from elk_dse.program import Infeasible

# Column-split matmuls: the output features ("o") over the chips.
COLUMN = frozenset({"q_proj", "qkv_proj", "gate_proj", "up_proj", "gate_up_proj", "fc1", "expert_gate_proj",
                    "expert_up_proj", "shared_gate_proj", "shared_up_proj", "q_b_proj", "lm_head"})
KV_COLUMN = frozenset({"k_proj", "v_proj"})  # by KV heads (replicated when fewer than tp)
# Zero-FLOP layout ops handing a fused projection's column blocks on ("o") and the MLP activations ("f").
LAYOUT_O = frozenset({"q_split", "k_split", "v_split", "q_raw_split", "k_raw_split"})
MLP_WIDTH = frozenset({"gate_split", "up_split", "swiglu", "geglu", "gelu", "relu", "shared_swiglu"})
# Row-split matmuls: the input features ("h") over the chips, an all_reduce of the output after them.
ROW = frozenset({"o_proj", "down_proj", "fc2", "expert_down_proj", "shared_down_proj"})
HEAD_OPS = frozenset({"attn_score", "attn_softmax", "attn_value", "attention"})  # dims b, g, r (GQA)
MLA_HEAD_OPS = frozenset({"q_absorb", "v_absorb", "kv_b_proj_k", "kv_b_proj_v", "attention"})  # dim n
QK_NORM = frozenset({"q_norm", "k_norm"})  # per-head norms: heads folded into "t"


@register_parallelism("tp")
class TensorParallel(Parallelism):
    """Megatron tensor parallelism over all chips (module docstring)."""

    def plan(self, work: Workload, system: Chip, degree: int) -> ParallelPlan | Infeasible:
        graph = work.graph
        heads, kv_heads = meta_int(graph, "heads"), meta_int(graph, "kv_heads")
        if not heads:
            return Infeasible("parallelism", f"tp needs a transformer's heads; {graph.name} has none")
        mla = meta_int(graph, "kv_lora_rank") > 0
        if mla and heads % degree:
            return Infeasible("parallelism", f"tp={degree} does not divide the {heads} attention heads (MLA)")
        kv_heads = kv_heads or heads
        heads_pc = -(-heads // degree)  # query heads per chip (padded to a multiple of tp when tp does not divide)
        kv_pc = -(-kv_heads // degree) if kv_heads >= degree else 1  # KV heads per chip (replicated when fewer)
        kv_split = min(degree, kv_heads)
        ranks_pc = system.cores.count if system.overheads.kv_head_sharding == "replicate_to_ranks" else 0
        if ranks_pc and not mla and degree >= 2:  # issue 17d: the stack's per-rank layout (module docstring)
            heads_pc, kv_pc = rank_heads(heads, kv_heads, degree * ranks_pc, ranks_pc)
        pad = _HeadPad(degree, heads, kv_heads, heads_pc, kv_pc, by_ranks=ranks_pc > 0)
        group = ring_order(system)
        # issue 17t: under tt_transformers' code (overheads.ccl_scheme; docs/parallelism.md) the residual stream stays
        # fractured between blocks; on 8 chips (its ccl_topology() is Ring on a T3K) with hidden / 32 / 8 a multiple
        # of 8 (model_config.py USE_FUSED_ALL_GATHER_MATMUL) the attention output is all_gathered inside the o_proj
        # matmul (ttnn.experimental.all_gather_matmul, attention.py forward_decode) and o_proj is split by its output
        # columns instead of its input rows. Dense decoders only (its MoE layer, mixtral_moe.py, was not read).
        tt = system.overheads.ccl_scheme == "tt_transformers" and not mla and not meta_int(graph, "experts")
        hidden = meta_int(graph, "hidden")
        fused_o = tt and degree == 8 and hidden > 0 and (hidden // 32 // degree) % degree == 0 and not pad.padded
        layers: list[Layer] = []
        parts: dict[tuple[int, int], int] = {}
        for li, layer in enumerate(graph.layers):
            ops = []
            for k, op in enumerate(layer.ops):
                split, parts[(li, k)] = self._split(op, degree, kv_split, graph, pad, fused_o)
                ops.append(split)
            layers.append(replace(layer, ops=tuple(ops)))
        per_chip_layers = tuple(layers)
        points: list[CollectivePoint] = []
        origin, share = [], []
        chip_instances = instance_layers(replace(graph, layers=per_chip_layers))
        # issue 17t: the collectives tt_transformers' code issues on a 1 x n mesh (n300, T3K), docs/parallelism.md:
        # the residual stream stays fractured (hidden / n per chip); every norm first all_gathers it, every row split
        # ends in a reduce_scatter; the LM head's tt_all_reduce is skipped on a 1 x n mesh, and at decode the logits
        # are all_gathered on the device before the host reads one chip's copy (issue 17t, seventh session).
        gathered_first = False
        for i, ((li, k, op), (_, _, orig)) in enumerate(zip(chip_instances, instance_layers(graph), strict=True)):
            origin.append(i)
            share.append(1.0 / parts[(li, k)])
            if degree < 2:
                continue
            if tt and not gathered_first and op.kind == "norm" and op.name not in QK_NORM:
                gathered_first = True  # the embedding's output enters fractured: gathered before the first norm
                if i > 0:
                    points.append(CollectivePoint(i - 1, Collective("all_gather", op.output_bytes, group),
                                                  "regather"))
            if op.name == "o_proj" and op is not orig and fused_o:
                # all_gather_matmul: the attention output gathered while the o_proj matmul runs (overlap), o_proj's
                # output (hidden / n columns) gathered back before the next norm
                prev = chip_instances[i - 1][2]
                points.append(CollectivePoint(i - 1, Collective("all_gather", prev.output_bytes * degree, group),
                                              overlap=True))
                points.append(CollectivePoint(i, Collective("all_gather", op.output_bytes * degree, group)))
                gathered_first = True
            elif op.name in ROW and op is not orig and tt:
                # tt_all_reduce on a 1 x n mesh: reduce_scatter_minimal_async only (ccl.py); the next norm's
                # all_gather_async (distributed_norm.py) regathers the residual stream
                points.append(CollectivePoint(i, Collective("reduce_scatter", op.output_bytes, group)))
                points.append(CollectivePoint(i, Collective("all_gather", op.output_bytes, group), "regather"))
                gathered_first = True
            elif op.name in ROW and op is not orig:
                nxt = chip_instances[i + 1][2] if i + 1 < len(chip_instances) else None
                if op.name == "expert_down_proj" and nxt is not None and nxt.name == "expert_combine":
                    # issue 17x: the combine (a weighted sum over the k chosen experts, router weights on every
                    # chip) is linear, so the partial sums meet after it: one all_reduce of tokens x hidden,
                    # not of the token-expert pairs (module docstring, "MoE experts")
                    points.append(CollectivePoint(i + 1, Collective("all_reduce", nxt.output_bytes, group)))
                else:
                    points.append(CollectivePoint(i, Collective("all_reduce", op.output_bytes, group)))
            elif op.name == "lm_head" and op is not orig and (not tt or graph.phase == "decode"):
                # bytes_per_chip of an all_gather: what every chip ends with, all chips' logits. tt_transformers'
                # decode gathers them on the device too (model.py ttnn_decode_forward: all_gather_async dim 3 when
                # num_devices > 1, then untilize; issue 17t, seventh session); its prefill reads the shards instead
                points.append(CollectivePoint(i, Collective("all_gather", op.output_bytes * degree, group)))
        stored = _stored_bytes(graph, per_chip_layers)
        chip_graph = rebuilt(graph, per_chip_layers, stored)
        view = one_chip_view(system)
        return ParallelPlan("tp", (("tp", degree),), view, system,
                            (Stage(chip_graph, tuple(range(system.num_chips)), tuple(origin), tuple(share),
                                   tuple(points)),))

    @staticmethod
    def _split(op: Operator, tp: int, kv_split: int, graph: Graph, pad: _HeadPad,
               fused_o: bool = False) -> tuple[Operator, int]:
        """One chip's part of ``op`` and the number of parts it was cut into (1: replicated). ``fused_o``: o_proj
        split by its output columns (tt_transformers' all_gather_matmul on 8 chips, issue 17t)."""
        dims = dict(op.dims)
        mla = meta_int(graph, "kv_lora_rank") > 0
        if tp >= 2 and not mla and pad.padded:
            padded = pad.split(op)
            if padded is not None:
                return padded, tp
        if op.name == "qkv_bias" and "o" in dims and tp >= 2:
            # issue 17q (ninth session): the bias add runs on each chip's fused q/k/v columns (its query heads and
            # KV heads, replicated KV heads included), no collective
            return pad.split(op) or op, tp
        factors: dict[str, int] = {}
        if op.name in KV_COLUMN and "o" in dims:
            factors = {"o": kv_split}
        elif op.name in COLUMN | LAYOUT_O and "o" in dims:
            factors = {"o": tp}
        elif op.name in MLP_WIDTH and "f" in dims:
            factors = {"f": tp}
        elif op.name == "o_proj" and fused_o and "o" in dims:
            factors = {"o": tp}
        elif op.name in ROW and "h" in dims:
            factors = {"h": tp}
        elif op.name in QK_NORM and "t" in dims:
            factors = {"t": tp if op.name == "q_norm" else kv_split}
        elif mla and op.name in MLA_HEAD_OPS and "n" in dims:
            factors = {"n": tp}
        elif op.name in HEAD_OPS and "g" in dims and "r" in dims:
            g = dims["g"]
            # tp | g: g / tp KV heads per chip; else one KV head per chip and its share of the query heads
            factors = {"g": tp} if g % tp == 0 else {"g": g, "r": tp // g}
        if not factors or tp < 2:
            return op, 1
        n = 1
        for f in factors.values():
            n *= f
        return split_dims(op, factors), n


@dataclass(frozen=True)
class _HeadPad:
    """Heads per chip when tp does not divide them: ``heads_pc`` query and ``kv_pc`` KV heads on every chip."""

    tp: int
    heads: int
    kv_heads: int
    heads_pc: int
    kv_pc: int
    by_ranks: bool = False  # issue 17d: heads per chip from the stack's per-rank layout (rank_heads)

    @property
    def padded(self) -> bool:
        """Whether tp divides neither the query heads nor (when there are at least tp of them) the KV heads;
        the exact cases keep the integer splits of TensorParallel._split. Always, under a per-rank layout."""
        return (self.by_ranks or self.heads % self.tp != 0
                or (self.kv_heads >= self.tp and self.kv_heads % self.tp != 0))

    def split(self, op: Operator) -> Operator | None:
        """One chip's part of a head-indexed operator (None: not head-indexed; the integer splits apply)."""
        dims = dict(op.dims)

        def scaled(n: int, per_chip: int, total: int) -> int:
            return -(-n * per_chip // total)

        new: dict[str, int] = {}
        if op.name in ("q_proj", "q_split", "q_raw_split") and "o" in dims:
            new["o"] = scaled(dims["o"], self.heads_pc, self.heads)
        elif op.name in KV_COLUMN | {"k_split", "v_split", "k_raw_split"} and "o" in dims:
            new["o"] = scaled(dims["o"], self.kv_pc, self.kv_heads)
        elif op.name in ("qkv_proj", "qkv_bias") and "o" in dims:  # issue 17q: the bias add with its columns
            width = self.heads + 2 * self.kv_heads
            new["o"] = scaled(dims["o"], self.heads_pc + 2 * self.kv_pc, width)
        elif op.name == "o_proj" and "h" in dims:
            new["h"] = scaled(dims["h"], self.heads_pc, self.heads)
        elif op.name == "q_norm" and "t" in dims:
            new["t"] = scaled(dims["t"], self.heads_pc, self.heads)
        elif op.name == "k_norm" and "t" in dims:
            new["t"] = scaled(dims["t"], self.kv_pc, self.kv_heads)
        elif op.name in HEAD_OPS and "g" in dims and "r" in dims:
            new["g"] = self.kv_pc
            new["r"] = -(-self.heads_pc // self.kv_pc)
        if not new:
            return None
        return replace(op, dims=tuple((d, new.get(d, n)) for d, n in op.dims))


def rank_heads(heads: int, kv_heads: int, ranks: int, ranks_per_chip: int) -> tuple[int, int]:
    """Issue 17d: (query heads, KV heads) one chip holds when transformers-neuronx lays ``heads`` query and
    ``kv_heads`` KV heads over ``ranks`` TP ranks, ``ranks_per_chip`` of them on each chip (one per NeuronCore).

    aws-neuron/transformers-neuronx @0623de20 (Neuron 2.18; the same rule at @c8d6bdc and @1ade6d7):
    decoder.py:89-159 ``check_gqa_fallback``: with no GQA option given, a GQA model gets ``SHARD_OVER_HEADS``
    and then, when ``n_kv_head % tp_degree != 0``, ``REPLICATED_HEADS``; decoder.py:954-998 ``to_neuron``:
    the query heads are padded to ``round_up_to_divisor(n_heads, tp_degree)``, the K/V weights repeated
    ``n_head // n_kv_head`` times (``n_kv_head = n_head``) and then padded like the queries; decoder.py:1147-1174
    ``init_caches``: each rank's cache holds ``round_up_to_divisor(n_kv_head, tp_degree) // tp_degree`` heads;
    layers/attention.py:323-326: a rank attends with its own ``n_heads_tp`` query and ``n_kv_heads_tp`` KV heads.
    Every rank runs the same program (the padding heads' work is real work)."""
    if kv_heads != heads and kv_heads % ranks == 0:  # SHARD_OVER_HEADS: whole KV heads, no copies
        return ranks_per_chip * -(-heads // ranks), ranks_per_chip * (kv_heads // ranks)
    per_rank = -(-heads // ranks)  # MHA, or REPLICATED_HEADS: KV heads = query heads, padded with them
    return ranks_per_chip * per_rank, ranks_per_chip * per_rank


def _stored_bytes(graph: Graph, per_chip: tuple[Layer, ...]) -> float:
    """Bytes one chip stores: the model's stored bytes less what the split weight tensors no longer hold. A
    weight tensor also read by a replicated operator (a tied embedding) stays whole. Stacked experts are
    stored in full (all E experts), while the operator's tensor holds the loaded ones: scaled by E / loaded.
    A weight a chip holds more of than the model does (KV heads copied per rank, issue 17d) adds the excess."""
    experts, top_k = meta_int(graph, "experts"), meta_int(graph, "top_k")
    removed: dict[str, float] = {}
    replicated: set[str] = set()
    for layer, chip_layer in zip(graph.layers, per_chip, strict=True):
        for op, cop in zip(layer.ops, chip_layer.ops, strict=True):
            for t, ct in zip(op.inputs, cop.inputs, strict=True):
                if t.role != Role.WEIGHT:
                    continue
                full, part = op.tensor_bytes(t), cop.tensor_bytes(ct)
                if part == full:
                    replicated.add(t.name)
                    continue
                scale = 1.0
                if t.name.startswith("experts.") and experts and top_k:
                    tokens = max(dict(op.dims).get("t", 1) // top_k, 1)
                    scale = experts / expected_experts(experts, top_k, tokens)
                removed[t.name] = removed.get(t.name, 0.0) + (full - part) * layer.repeat * scale
    return graph.parameter_bytes - sum(v for k, v in removed.items() if k not in replicated)
