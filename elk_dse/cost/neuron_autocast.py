"""neuronx-cc's ``--auto-cast``: which tensors of a traced FP32 model stay FP32 (issue 17e, seventh session).

The Neuron encoder and CNN benchmark rows are FP32 PyTorch models (``AutoModel.from_pretrained`` with no dtype,
``torch_neuronx.trace`` with no compiler arguments: aws-neuron/aws-neuron-sdk @81ce03ae,
``archive/src/benchmark/pytorch/inf2_benchmark.py`` lines 20-33) compiled with "Compilation Autocast Data Type
Matmult-BF16" (the CSVs' last columns, e.g. ``about-neuron/benchmarks/inf2/throughput_data_encoder.csv`` line 3:
"...,FP32,Matmult-BF16,U22"). The compiler reference (``compiler/neuronx-cc/api-reference-guide/index.rst``
lines 102-114) defines the modes: ``none`` "Leave all data types as defined in the model", ``matmult`` "Only cast
FP32 operations that use the Neuron matrix-multiplication engine", ``all`` "Cast all FP32 operations", to
``--auto-cast-type`` (default bf16). ``matmult`` was the default until Neuron 2.27, which made ``none`` the default
(``about-neuron/whats-new.rst`` line 470: "The ``--auto-cast`` flag defaults to ``none`` (previously
``matmul``) ... FP32 models may see performance impacts; restore previous behavior with
``--auto-cast=matmult``"). The NKI architecture guide (``nki/guides/architecture/trainium_inferentia2_arch.rst``)
says what the hardware does with the formats: TensorE's "output ... is always in FP32" (lines 103-105), so a
matmul result in PSUM is FP32; VectorE / ScalarE / GpSimd compute "in FP32, with automatic zero-overhead input
and output casting" (lines 317, 422-423, 528-530): an engine instruction reads any format and writes one output
tile in one format, at the same rate; FP32 matmul inputs cost "roughly 4x" BF16's (lines 265-270).

What ``matmult`` therefore leaves in a compiled graph, and what :func:`auto_cast_graph` rewrites (the operators'
inputs and outputs of role ``activation``; the model's declared format is the auto-cast type, as the points
declare "matmuls bf16"; weights, KV cache and the model's output keep their formats):

- every activation a non-matrix operator reads is FP32 (4 bytes): the operation is an FP32 operation of the
  model that ``matmult`` does not cast, so its tensors take FP32's SBUF space and HBM bytes when they spill;
- a matrix operator reads its activation operand at the cast type;
- a produced activation whose readers are all matrix operators is written at the cast type directly (the
  producing instruction's zero-overhead output cast: a PSUM read-out feeding the next matmul, a softmax feeding
  the context matmul, a GELU feeding the down projection); one with any other reader (or none known: the graph's
  end) is written in FP32;
- an FP32 activation that a matrix operator reads must be cast to the matrix unit's format first: the matrix
  operator then reads the FP32 tensor (its bytes: 4 per element, what SBUF holds and HBM moves when it spills)
  with the cast type as its format (``Tensor.fmt``, what the TensorE runs at), and cost/neuron_engines.py
  charges one VectorE pass over those elements in that operator's engine floor (:func:`is_cast_input`), beside
  the ScalarE's PSUM read-out (the engines run in parallel; a cast may use any of them, lines 317, 528-530).
  E.g. BERT's LayerNorm output, read by the Q/K/V projections and by the residual add; ResNet's block input,
  read by the first convolution and by the residual add. One instruction writes one output tile, so this pass
  cannot be folded into the producer. It is charged on the reader, not as an operator of its own: a separate
  operator would round-trip a spilled tensor through HBM, where the compiler casts the tile it loads anyway.

``none`` makes every activation and weight FP32 (the TensorE then runs at the chip's ``format_speedup.fp32``);
``all`` and ``""`` leave the graph as declared (every operation at the declared format).

**Which graphs.** The mode acts on FP32 operations, so on the torch-neuronx traced models (encoders, CNNs, ViT:
graphs of phase ``prefill`` / ``train``). A ``decode`` step of the neuron stack is a transformers-neuronx program,
whose HLO is built in the model's dtype (``amp``, bf16 for the decoder rows; aws-neuron/transformers-neuronx
@0623de20 ``decoder.py`` / ``layers/attention.py``: the softmax's explicit FP32 is the stack's
``decode_softmax`` rule, cost/neuron_attention.py), so no FP32 operation is left for the mode to keep:
:func:`auto_cast_graph` leaves decode graphs as declared. (A transformers-neuronx context encoding, phase
``prefill`` of a decoder, is a bf16 program too; it would be treated as a traced FP32 model: not modelled, no
point has one.)

Who reads which tensor is found per tensor name in execution order (an instance's readers are the operators
reading the name before it is produced again); an operator of a repeated layer takes the FP32 choice if any of
its repetitions needs it. Model inputs (token ids, images) keep their declared format and get no cast.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from elk_dse.hw.stack import AUTO_CAST_MODES
from elk_dse.ir.formats import format_bytes
from elk_dse.ir.graph import Graph, Operator, Role, Tensor

__all__ = ["AUTO_CAST_MODES", "auto_cast_graph", "is_cast_input"]

FP32 = "fp32"


def _fp32(t: Tensor) -> Tensor:
    return dataclasses.replace(t, bytes_per_element=format_bytes(FP32), fmt=FP32)


def is_cast_input(op: Operator, t: Tensor) -> bool:
    """Whether ``op`` (a matrix operator) reads ``t`` through a cast: an activation stored wider than the
    format the matrix unit reads it in (``auto_cast_graph`` marks such inputs)."""
    return (op.uses_matrix_unit and t.role == Role.ACTIVATION and bool(t.fmt)
            and t.bytes_per_element > format_bytes(t.fmt))


def _map_tensors(graph: Graph, fn) -> Graph:
    """``graph`` with every operator's inputs and output replaced by ``fn(layer index, op index, op, tensor,
    is_output)``."""
    layers = []
    for li, layer in enumerate(graph.layers):
        ops = tuple(dataclasses.replace(op, inputs=tuple(fn(li, oi, op, t, False) for t in op.inputs),
                                        output=fn(li, oi, op, op.output, True))
                    for oi, op in enumerate(layer.ops))
        layers.append(dataclasses.replace(layer, ops=ops))
    return dataclasses.replace(graph, layers=tuple(layers))


def _is_int(t: Tensor) -> bool:
    """Token ids and other integer inputs (4 bytes, no float format) are not cast."""
    return not t.fmt and t.bytes_per_element == 4


def auto_cast_graph(graph: Graph, mode: str) -> Graph:
    """``graph`` as neuronx-cc compiles it under ``--auto-cast mode`` (module doc); ``""`` / ``all``: unchanged."""
    if mode not in AUTO_CAST_MODES:
        raise ValueError(f"auto_cast: {mode!r} is not one of {AUTO_CAST_MODES}")
    if mode in ("", "all") or graph.phase == "decode":  # decode: a transformers-neuronx bf16 program (module doc)
        return graph
    if mode == "none":  # every activation and weight in FP32 (the model as traced)
        return _map_tensors(graph, lambda li, oi, op, t, out: _fp32(t) if t.role in (
            Role.ACTIVATION, Role.WEIGHT) and not _is_int(t) else t)
    # Readers of each production (layer index, op index) of an activation, over every instance.
    readers: dict[tuple[int, int], set[bool]] = defaultdict(set)  # production -> {reader is a matrix op}
    sources: dict[tuple[int, int, str], set[tuple[int, int]]] = defaultdict(set)  # (li, oi, name) -> productions
    last: dict[str, tuple[int, int]] = {}
    for li, layer in enumerate(graph.layers):
        for _ in range(layer.repeat):
            for oi, op in enumerate(layer.ops):
                for t in op.inputs:
                    if t.role == Role.ACTIVATION and t.name in last:
                        readers[last[t.name]].add(op.uses_matrix_unit)
                        sources[(li, oi, t.name)].add(last[t.name])
                if op.output.role == Role.ACTIVATION:
                    last[op.output.name] = (li, oi)
    # A production is written at the cast type when every reader is a matrix operator, else in FP32.
    fp32_out = {(li, oi) for li, la in enumerate(graph.layers) for oi, op in enumerate(la.ops)
                if op.output.role == Role.ACTIVATION and readers.get((li, oi)) != {True}}

    def cast(li: int, oi: int, op: Operator, t: Tensor, out: bool) -> Tensor:
        if t.role != Role.ACTIVATION or _is_int(t):
            return t
        if out:
            return _fp32(t) if (li, oi) in fp32_out else t
        srcs = sources.get((li, oi, t.name), set())
        if not srcs & fp32_out:
            return t  # written at the cast type by its producer(s), or a model input
        if not op.uses_matrix_unit:
            return _fp32(t)
        # read by the matrix unit at the cast type from an FP32 tensor: is_cast_input, charged in the floor
        return dataclasses.replace(t, bytes_per_element=format_bytes(FP32)) if t.fmt else t

    return _map_tensors(graph, cast)
