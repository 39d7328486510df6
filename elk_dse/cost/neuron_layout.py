"""NeuronCore-v2's layout transposes between a normalisation and the matmul that reads it (issue 17n, eighth session).

A NeuronCore-v2 keeps every on-chip tile as [partition, free] (128 partitions). Two engine rules fix which axis
must be where, and they conflict at two places in every transformer layer. Sources: aws-neuron/aws-neuron-sdk
@81ce03ae, ``nki/guides/architecture/trainium_inferentia2_arch.rst`` (the "arch guide") and
``nki/deep-dives/nki_perf_guide.rst`` (the "perf guide"):

- The TensorE "requires both input tiles to have the contraction dimension K in the SBUF partition dimension"
  (arch guide, "Tensor Engine", lines 139-141): a matmul contracting over the hidden axis needs the hidden axis on
  the partitions, one contracting over the keys needs the keys there.
- A normalisation reduces along the free axis: LayerNorm's mean and variance come from ``nisa.bn_stats``, which
  "must be done along the free dimension" (perf guide, "Opt #8", lines 776-789); softmax's max and sum are VectorE /
  ScalarE reductions, and "VectorE instructions expect the parallel axis of the input and output data to be mapped
  to the partition dimension", a reduction running along the free axis (arch guide, "Vector Engine", lines 320-323).
  So a LayerNorm leaves its output with the tokens on the partitions and the hidden axis free, a softmax its
  probabilities with the queries on the partitions and the keys free. RMSNorm is the exception the perf guide
  names (same section): its sum of squares can run across the partitions on the TensorE, so "linear_layer ->
  RMSnorm -> linear_layer" needs no transpose; it is not marked.
- When a matmul then contracts over that axis (the Q/K/V or FFN projection after a LayerNorm, the P x V matmul after
  the softmax) the tile must be PF-transposed first. The perf guide's "Opt #8" names the chain (the ``linear_layer
  -> layernorm`` example: the transpose between a matmul and ``bn_stats`` can be removed by swapping the matmul's
  stationary and moving operands, which gives the matmul's *output* in either layout; a norm's output feeding a
  contraction over the normalised axis has no such freedom, because both matmul operands need K on the
  partitions); the arch guide calls such transposes "absolutely unavoidable" where producer and consumer
  engines' layouts conflict, e.g. in fused attention (lines 237-240).
- A PF-transpose on the TensorE is ``nc_matmul(input, identity)`` (arch guide, "Alternative Use Case", lines
  186-191): per 128 x 128 block a LoadStationary of the block (hidden behind the previous MultiplyMoving:
  background and fast LoadStationary) and a MultiplyMoving of the identity, whose free size is the block's
  partitions, at ``max(N, 64)`` TensorE cycles (the arch guide's cost model, lines 259-265) at 2.8 GHz (the
  engines' table, lines 65-70). Its result lands in PSUM, and the matmul must read its operands from SBUF (line
  120), so every transposed element is copied PSUM -> SBUF by the VectorE or ScalarE once more (line 591; "VectorE
  and ScalarE cannot access PSUM in parallel", line 597): one more PSUM read-out pass over the operand.

The same conflict holds for a KV cache read by a contraction over its last axis: transformers-neuronx keeps the K
cache as ``[n_positions, n_seqs, n_kv_heads, d_head]`` (or the BSH layout ``[n_seqs, n_positions, ...]``), d
contiguous, and scores ``Q @ K`` contracting over that d (aws-neuron/transformers-neuronx @0623de20, the Neuron
2.18 release of the decoder rows: ``layers/attention.py`` ``score``, lines 299-337, ``rhs_contracting_dimensions=[3]``;
``decoder.py`` ``_hlo_layers_params`` line 610: the cache is a persistent buffer whose layout the HLO fixes). A K
tile loaded contiguously has the keys on the partitions and d free; the score matmul needs d on the partitions, so
every step transposes the K tiles it reads (on the TensorE as above, the cheaper of the two ways: a transposing DMA
reads 2-byte elements at a stride, far below the DMA engines' rate: arch guide line 761,
``nki/deep-dives/nki-dma-bandwidth-guide.rst``). The V cache is read by a contraction over the positions, its
major axis: no transpose. Graphs model the cache as a tensor of role ``kv_cache`` with d last (models/ops.py
``attention``), so the rule is: a ``kv_cache`` input whose last axis the reader contracts over; every read is
marked (a step re-reads the cache).

This module marks such inputs in a graph (:func:`mark_transposes`: ``Tensor.pf_transpose``); cost/neuron_engines.py
charges them on chips with ``cores.vector_engine: neuron_v2`` (TensorE cycles added to the matmul's own, one more
PSUM read-out pass in its engine floor) and nowhere else, so the mark changes no other chip's numbers.

What is marked: a matrix operator's activation input whose producer (the last operator writing that tensor name
before it, in execution order, as cost/neuron_autocast.py finds readers) is a LayerNorm or a softmax (which
normalise along their last axis, models/ops.py; :func:`normalises_on_free_axis`), when the reader contracts over the tensor's last axis (the axis
is among the reader's reduction dims). One transpose per production: its first such reader is marked, later
readers (BERT's K and V projections after Q) read the transposed copy. Not marked (each would only add): a layout carried through an element-wise
operator in between (e.g. DiT's modulation after its norm), transposes the compiler adds for other reasons (IO
layouts, convolutions), and the cost of ``max(N, 64)`` when a block has fewer than 64 partitions (decode's few
rows): the rule charges ``ceil(elements / 128)`` TensorE cycles, the full-block rate.
"""

from __future__ import annotations

import dataclasses

from elk_dse.ir.graph import Graph, Operator, Role, Tensor


def normalises_on_free_axis(op: Operator) -> bool:
    """Whether ``op`` leaves its output's last axis on the free axis (module doc): a softmax, or a norm with
    mean and variance (LayerNorm: gamma and beta; a plain norm: no weights), not an RMSNorm (gamma alone)."""
    if op.kind == "softmax":
        return True
    return op.kind == "norm" and sum(1 for t in op.inputs if t.role == Role.WEIGHT) != 1


def is_transposed_input(op: Operator, t: Tensor) -> bool:
    """Whether matrix operator ``op`` reads ``t`` through a PF-transpose (``mark_transposes`` set the mark)."""
    return op.uses_matrix_unit and t.pf_transpose


def mark_transposes(graph: Graph) -> Graph:
    """``graph`` with ``pf_transpose`` set on every matrix operator input that a LayerNorm or softmax produced
    along the axis the operator contracts over, on the first such reader of each production, and on every KV
    cache input the operator contracts over along its last axis (module doc); every other tensor unchanged. An operator of a repeated layer is marked if any of its repetitions reads such a production
    first."""
    # tensor name -> its last production so far (layer index, op index, repetition) if that producer normalised
    # it along the free axis, else None
    producer: dict[str, tuple[int, int, int] | None] = {}
    transposed: set[tuple[int, int, int]] = set()  # productions already transposed: later readers reuse the copy
    marked: set[tuple[int, int, int]] = set()  # (layer index, op index, input index)
    for li, layer in enumerate(graph.layers):
        # Two repetitions suffice: the first sees the tensors of the layers before, the second those of its own
        # previous repetition, and every later repetition sees the same producers as the second.
        for rep in range(min(layer.repeat, 2)):
            for oi, op in enumerate(layer.ops):
                if op.uses_matrix_unit:
                    for ii, t in enumerate(op.inputs):
                        if not (t.axes and isinstance(t.axes[-1], str) and t.axes[-1] in op.reduction_dims):
                            continue
                        if t.role == Role.KV_CACHE:  # a cache read contracting over its contiguous axis
                            marked.add((li, oi, ii))
                            continue
                        made = producer.get(t.name) if t.role == Role.ACTIVATION else None
                        if made is not None and made not in transposed:
                            marked.add((li, oi, ii))
                            transposed.add(made)
                if op.output.role == Role.ACTIVATION:
                    producer[op.output.name] = (li, oi, rep) if normalises_on_free_axis(op) else None
    if not marked:
        return graph
    layers = []
    for li, layer in enumerate(graph.layers):
        ops = tuple(dataclasses.replace(op, inputs=tuple(
            dataclasses.replace(t, pf_transpose=True) if (li, oi, ii) in marked else t
            for ii, t in enumerate(op.inputs))) if any((li, oi, ii) in marked for ii in range(len(op.inputs)))
            else op for oi, op in enumerate(layer.ops))
        layers.append(dataclasses.replace(layer, ops=ops))
    return dataclasses.replace(graph, layers=tuple(layers))
