"""The AWS Neuron stack's decode attention (issue 17d): the KV bucket it runs over and its softmax engines' floor.

Two effects of how transformers-neuronx (the Neuron 2.18 decoders of docs/validation.md) runs one decode step's
attention, each read from the vendor's code (aws-neuron/transformers-neuronx @0623de20, 0.10.x, 2024-04-15):

1. **The KV bucket.** Token generation is compiled once per *bucket* of cache positions: by default the bucket
   sizes double from 128 up to ``n_positions`` (``bucket.token_sizes`` -> ``utils.power_of_two_bucket_sizes(128,
   n)``), and a step runs the program of the smallest bucket that holds the cache (``bucket.find``). That
   program's caches have the bucket's length (``decoder._hlo_layers_params``: ``dim_size = {0: n_positions}``),
   and its attention scores every cached position of the bucket and masks the unused ones
   (``layers/attention.score`` / ``mask`` / ``context``). So a step at ``kv_len`` keys reads, scores and
   weighs :func:`kv_bucket` keys. The stack's ``kv_bucket_min_tokens`` (128) turns this on;
   ``evaluate.evaluate`` builds the decode graph at the bucket (one place, so the KV reads, the score and value
   matmuls and the softmax all follow, in both simulators).

2. **The softmax on the vector engines.** ``layers/attention.context`` computes the softmax of the scores in
   fp32 as separate HLO operations (cast, reduce-max over the keys, subtract, exp, reduce-sum, convert). On a
   NeuronCore-v2 these run on VectorE and ScalarE, which work in parallel over at most 128 *partitions* (lanes)
   and stream the *free* axis at about one element per cycle per lane: "the execution cost of an instruction on
   VectorE is correlated to N [the free axis size] ... roughly N cycles", "the performance cost of a VectorE
   instruction using all 128 lanes is the same as an instruction that uses fewer than 128 lanes", ScalarE
   likewise (aws-neuron/aws-neuron-sdk nki/guides/architecture/trainium_inferentia2_arch.rst @81ce03ae, "Vector
   Engine", "Scalar Engine"). A reduction over the keys keeps the keys on the free axis ("VectorE instructions
   expect the parallel axis ... mapped to the partition dimension", same document), so one decode step's score
   rows (one per user and query head of the core) occupy at most 128 lanes and each pass over them costs the
   bucket's key count in engine cycles, however few the rows. This is what a single query row costs that a FLOP
   count misses: the vector engines' time grows with the keys, not with rows x keys / 128.

   The floor counts only the two passes no fusion removes: the maximum over the keys (VectorE, 1.12 GHz) and
   ``exp(x - max)`` with the sum accumulated in the same instruction (ScalarE, 1.4 GHz; "reduction at no
   additional cost" of an activation, same document). They depend on each other (the exp needs the maximum), so
   they add, each with the documented static instruction overhead of 100 engine cycles. Engine clocks, lanes
   and the overhead are NeuronCore-v2 figures of the same document (table "Data-path Width ... Frequency").
   The floor ignores the cast, subtract, mask and convert passes of the HLO (the compiler may fuse them): it is
   a lower bound on the softmax's engine time, not an estimate of it.

The floor (:func:`softmax_cycles`) is charged like tt's decode kernel (cost/decode_attention.py): as a floor on
the busiest core's cycles of the decode softmax operator (or a fused decode-attention operator), read by both
simulators from the Program's OpWork. Raising cycles never lowers a time, so no latency can beat the roofline.
"""

from __future__ import annotations

import math

from elk_dse.hw.chip import Chip

# NeuronCore-v2 engines (trainium_inferentia2_arch.rst @81ce03ae: the engines' frequency table; "128 parallel
# vector lanes"; "a static instruction overhead of 100 engine cycles").
VECTOR_ENGINE_HZ = 1.12e9
SCALAR_ENGINE_HZ = 1.4e9
ENGINE_LANES = 128
INSTRUCTION_OVERHEAD_CYCLES = 100


def kv_bucket(kv_len: int, min_tokens: int) -> int:
    """Keys a transformers-neuronx decode step attends over at ``kv_len`` cached keys: the smallest of the bucket
    sizes ``min_tokens``, 2 x ``min_tokens``, 4 x ... that holds ``kv_len`` (bucket.find over
    power_of_two_bucket_sizes; the compiled ``n_positions``, the last bucket, is taken to be at least the
    result). ``min_tokens`` 0: no buckets, ``kv_len`` itself."""
    if kv_len < 0 or min_tokens < 0:
        raise ValueError("kv_bucket: kv_len and min_tokens must be >= 0")
    if not min_tokens or not kv_len:
        return kv_len
    return min_tokens * (1 << max(0, math.ceil(math.log2(kv_len / min_tokens))))


def softmax_engine_seconds(rows_per_core: int, keys: int) -> float:
    """Seconds of one core's decode softmax floor: ceil(rows / 128) lane groups, each a reduce-max pass on
    VectorE then an exp-and-accumulate pass on ScalarE over ``keys`` elements per lane (module doc)."""
    if rows_per_core < 0 or keys < 0:
        raise ValueError("softmax_engine_seconds: rows and keys must be >= 0")
    if not rows_per_core or not keys:
        return 0.0
    groups = -(-rows_per_core // ENGINE_LANES)
    per_group = ((keys + INSTRUCTION_OVERHEAD_CYCLES) / VECTOR_ENGINE_HZ
                 + (keys + INSTRUCTION_OVERHEAD_CYCLES) / SCALAR_ENGINE_HZ)
    return groups * per_group


def softmax_cycles(chip: Chip, shape: tuple[int, int, int, int] | None) -> float:
    """Busiest-core cycles (at the chip's clock) of a decode softmax of ``shape`` (b, g, r, l) =
    (users, KV heads, query heads per KV head, keys; cost/decode_attention.decode_attention_shape) under the
    ``neuron_v2`` rule; 0 when ``shape`` is None or the chip's stack runs no such rule. The score rows b x g x r
    spread evenly over the cores the operator is compiled on (one chip's cores for a tp/pp share; all chips'
    for all_core); the keys are the graph's (already the bucket, see the module doc)."""
    if shape is None or chip.overheads.decode_softmax != "neuron_v2":
        return 0.0
    b, g, r, keys = shape
    cores = chip.cores_per_chip * chip.num_chips
    rows_per_core = -(-(b * g * r) // cores)
    return softmax_engine_seconds(rows_per_core, keys) * chip.clock_hz
