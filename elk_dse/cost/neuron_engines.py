"""NeuronCore-v2's vector engines and PSUM as floors on an operator's cycles (issue 17n, sixth session).

The systolic core model (cost/core_models.py) charges the TensorE's tiles for a contraction and a FLOP rate
(``cores.vector_lanes``) for everything else. On a NeuronCore-v2 neither is what bounds an encoder's or a CNN's
non-matmul work: those operators run on the VectorE and ScalarE, which stream elements, not FLOPs, and every
TensorE result must be copied out of PSUM by one of them. Sources: aws-neuron/aws-neuron-sdk @81ce03ae,
``nki/guides/architecture/trainium_inferentia2_arch.rst`` (the "arch guide") and ``nki/deep-dives/
nki_perf_guide.rst`` (the "perf guide"); the engine figures are the ones cost/neuron_attention.py uses:

- VectorE and ScalarE have 128 lanes, one per SBUF/PSUM partition, at 1.12 and 1.4 GHz (arch guide, the
  engines' "Data-path Width ... Frequency" table, lines 65-70); "most VectorE instructions can execute in
  roughly N cycles" for one input tile of free size N, "roughly 2N cycles" with two input tiles (lines
  393-395); "All internal computation is performed in FP32, with automatic zero-overhead input and output
  casting" (lines 317, 422-423), so the engines' rate does not depend on the tensors' format; a static
  overhead of 100 engine cycles per instruction (line 403).
- ScalarE evaluates a non-linear function with a per-partition scale and bias in one instruction ("2x
  speed-up than two separate instructions", lines 457-460) and can accumulate a reduction on the way.
- TensorE "must read input matrices from SBUF and write output matrices to PSUM" (line 120); "Data movement
  between PSUM and SBUF is done through ISA instructions on the compute engines" (line 591) and "VectorE and
  ScalarE cannot access PSUM in parallel" (line 597): every output element of a matmul or convolution passes
  once through one engine's lanes, at most ScalarE's 128 elements per 1.4 GHz cycle (a bias or a per-channel
  scale, e.g. a folded batch norm, and an activation ride along in the same instruction).
- LayerNorm's mean and variance come from ``nisa.bn_stats``, a VectorE instruction that "must be done along the
  free dimension" (perf guide, lines 779-781); the normalisation is then a per-partition scale and shift
  (ScalarE) and gamma / beta a second one.

What is charged: a floor per operator and core (at least these cycles; the FLOP rule or the TensorE's tiles
when they are larger), for the instruction passes the hardware cannot avoid, each over the operator's elements
spread on all 128 lanes (``ceil(E / 128)`` cycles per input tile, the best any layout can do):

| operator | VectorE passes | ScalarE passes |
|---|---|---|
| element-wise, one tensor input (GELU, tanh, ReLU) | - | 1 (activation) |
| element-wise, k >= 2 tensor inputs (residual add) | k - 1 tensor_tensor, 2N each | - |
| LayerNorm / RMSNorm | 1 bn_stats (layer only) | 2 (normalise; gamma / beta) |
| softmax | 1 (max over the free axis) | 2 (exp with the sum accumulated; scale by 1 / sum) |
| pooling | 1 per point of the window | - |
| matmul / convolution (TensorE) | - | 1 per output element (PSUM -> SBUF) |
| ... reading an FP32 activation at a narrower format (auto-cast, issue 17e) | 1 per element of that input | - |
| ... reading a LayerNorm's / softmax's output PF-transposed (eighth session) | - | 1 per element of that input (PSUM -> SBUF) |

The engines run in parallel, so an operator's floor is the larger of its two engines' times (each pass paying
the 100-cycle instruction overhead); a tensor input is one with two or more axes (a vector over one axis is a
per-partition scalar of the instruction: a bias, gamma, a channel scale). Not charged (they may add, never
subtract): the passes the compiler adds beyond these (casts other than auto-cast's below, masks, transposes
between engines' layouts: perf guide "Opt #8"), instruction splits over 64K-element free sizes, and lanes left
idle when an operator's parallel axis is shorter than 128. The embedding gather is DMA work and keeps the FLOP rule.

The cast row (issue 17e, seventh session; cost/neuron_autocast.py): under neuronx-cc's ``--auto-cast matmult`` a
matrix operator whose activation operand is an FP32 tensor (one that other FP32 operations read too) reads it
through a cast to the matrix unit's format; the graph marks such an input (stored 4 bytes per element, its
``fmt`` the narrower format: ``neuron_autocast.is_cast_input``) and the cast is one more VectorE pass over its
elements, in parallel with the ScalarE's read-out (an engine "can perform data casting to- and from-FP32 at no
throughput cost" only on its own input and output: the cast copy is an instruction of its own).

The transpose row (issue 17n, eighth session; cost/neuron_layout.py): a matrix operator reading a LayerNorm's
or a softmax's output contracts over the axis that producer left on the free axis, so the TensorE PF-transposes
it first (``ceil(E / 128)`` TensorE cycles at 2.8 GHz, :func:`transpose_seconds`, added to the operator's
TensorE cycles in cost/core_models.py) and the transposed tiles leave PSUM through one more ScalarE pass.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from elk_dse.cost.neuron_attention import (
    ENGINE_LANES,
    INSTRUCTION_OVERHEAD_CYCLES,
    SCALAR_ENGINE_HZ,
    VECTOR_ENGINE_HZ,
)
from elk_dse.cost.neuron_autocast import is_cast_input
from elk_dse.cost.neuron_layout import is_transposed_input
from elk_dse.ir.graph import Operator

# TensorE clock (arch guide, the engines' table, lines 65-70): a PF-transpose is one MultiplyMoving per 128 x 128
# block, 128 TensorE cycles for a full block (cost/neuron_layout.py), i.e. one TensorE cycle per 128 elements.
TENSOR_ENGINE_HZ = 2.8e9

# The rules a core's ``vector_engine`` field may name ("" = the FLOP rule alone).
VECTOR_ENGINE_RULES = ("", "neuron_v2")


def _product(op: Operator, sub: Mapping[str, np.ndarray], dims) -> np.ndarray:
    out = np.ones_like(np.asarray(next(iter(sub.values())), dtype=np.float64), dtype=np.float64)
    for d in dims:
        out = out * sub[d]
    return out


def passes(op: Operator) -> tuple[float, float, bool]:
    """(VectorE, ScalarE) passes of ``op`` over its elements (a two-input tensor_tensor counts 2) and whether
    the elements are its output's (a TensorE result leaving PSUM) rather than its iteration points."""
    if op.uses_matrix_unit:
        return 0.0, 1.0, True
    tensors = sum(1 for t in op.inputs if len(t.axes) >= 2)
    if op.kind == "elementwise":
        return (2.0 * (tensors - 1), 0.0, False) if tensors >= 2 else (0.0, 1.0, False)
    if op.kind == "norm":
        layer = sum(1 for t in op.inputs if t.role.name == "WEIGHT") >= 2  # gamma and beta: LayerNorm
        return (1.0 if layer else 0.0), 2.0, False
    if op.kind == "softmax":
        return 1.0, 2.0, False
    if op.kind == "pool":
        return 1.0, 0.0, False
    return 0.0, 0.0, False


def floor_seconds(op: Operator, sub: Mapping[str, np.ndarray]) -> np.ndarray:
    """Seconds one NeuronCore-v2 needs at least for ``op``'s share ``sub`` (per-core dim sizes, arrays: one per
    plan) on its VectorE / ScalarE (module doc); 0 for operators the table does not cover."""
    vector, scalar, on_output = passes(op)
    if not vector and not scalar:
        return np.zeros_like(np.asarray(next(iter(sub.values())), dtype=np.float64), dtype=np.float64)
    dims = op.output.dim_names if on_output else [d for d, _ in op.dims]
    cycles = np.ceil(_product(op, sub, dims) / ENGINE_LANES)
    # one VectorE instruction per tensor_tensor (2N) or per one-input pass (N); one ScalarE instruction per pass
    vec_s = (vector * cycles + np.ceil(vector / 2) * INSTRUCTION_OVERHEAD_CYCLES) / VECTOR_ENGINE_HZ if vector else 0.0
    sca_s = scalar * (cycles + INSTRUCTION_OVERHEAD_CYCLES) / SCALAR_ENGINE_HZ if scalar else 0.0
    for t in op.inputs:  # issue 17e: an auto-cast operand's cast copy, one VectorE pass over its elements
        if is_cast_input(op, t):
            elements = np.asarray(t.elements(sub), dtype=np.float64)
            vec_s = vec_s + (np.ceil(elements / ENGINE_LANES) + INSTRUCTION_OVERHEAD_CYCLES) / VECTOR_ENGINE_HZ
        if is_transposed_input(op, t):  # eighth session: the transposed tiles' copy out of PSUM (neuron_layout.py)
            elements = np.asarray(t.elements(sub), dtype=np.float64)
            sca_s = sca_s + (np.ceil(elements / ENGINE_LANES) + INSTRUCTION_OVERHEAD_CYCLES) / SCALAR_ENGINE_HZ
    return np.maximum(vec_s, sca_s)


def transpose_seconds(op: Operator, sub: Mapping[str, np.ndarray]) -> np.ndarray | float:
    """Seconds of TensorE work one NeuronCore-v2 adds to matrix operator ``op``'s share ``sub`` for the
    PF-transposes of its marked inputs (cost/neuron_layout.py): ``ceil(elements / 128)`` TensorE cycles each at
    2.8 GHz, the full-block rate (a block of fewer than 64 partitions costs more: not charged); 0 otherwise."""
    total: np.ndarray | float = 0.0
    for t in op.inputs:
        if is_transposed_input(op, t):
            total = total + np.ceil(np.asarray(t.elements(sub), dtype=np.float64) / ENGINE_LANES) / TENSOR_ENGINE_HZ
    return total
