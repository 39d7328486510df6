"""Workload IR: operators as einsum-style iteration spaces over named dims.

Every operator is a loop nest over ``dims`` (name -> length). Each tensor lists the axes that index it: a dim
name, or a :class:`Window` (sliding-window axis of a convolution input, indexed by ``out*stride + kernel*dilation``).
FLOPs are ``flops_per_point * prod(dims)``; a tensor's elements are the product of its axis extents. Dims that
index no axis of the output are reduction dims. A :class:`Graph` is a sequence of :class:`Layer` with explicit
repeat counts, so that identical layers are compiled once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np

from elk_dse.errors import ConfigError


class Role(StrEnum):
    """What a tensor is, which decides where it lives between operators.

    weight: model parameters, stored in HBM (or pinned on chip); kv_cache: attention state in HBM — as an input
    it is read, as an output it is appended (written to HBM); activation: produced and consumed on chip;
    output: the model's final result. Training steps add gradient (a weight gradient: written to HBM by the
    backward pass, read by the optimizer) and optimizer_state (Adam moments, read and written by the update).
    """

    WEIGHT = "weight"
    KV_CACHE = "kv_cache"
    ACTIVATION = "activation"
    OUTPUT = "output"
    GRADIENT = "gradient"
    OPTIMIZER_STATE = "optimizer_state"


# Tensors that live in HBM between passes: as inputs they are read from HBM (or pinned on a chip without
# HBM), as outputs written to it. The compiler treats them alike; reports tell them apart by role.
HBM_ROLES = frozenset({Role.WEIGHT, Role.KV_CACHE, Role.GRADIENT, Role.OPTIMIZER_STATE})


@dataclass(frozen=True)
class Window:
    """A sliding-window axis: extent ``(out-1)*stride + (kernel-1)*dilation + 1``, capped at ``size``."""

    out: str
    kernel: str
    stride: int = 1
    dilation: int = 1
    size: int = 0  # true extent of the input axis (after padding is removed); 0 = no cap

    def extent(self, out_len, kernel_len):
        """Elements along this axis touched by ``out_len`` outputs and ``kernel_len`` taps (arrays ok)."""
        ext = (np.asarray(out_len) - 1) * self.stride + (np.asarray(kernel_len) - 1) * self.dilation + 1
        return np.minimum(ext, self.size) if self.size else ext


Axis = str | Window


@dataclass(frozen=True)
class Tensor:
    """A tensor of an operator: name, indexing axes, role and bytes per element; ``fmt`` names its numeric
    format (ir/formats.py; "" = unnamed), which sets the matrix unit's rate on chips whose rate depends on it.
    ``pf_transpose`` (issue 17n, eighth session; set on an operator's input only, by
    cost/neuron_layout.mark_transposes): the tensor's producer normalised it along its last axis (a norm's
    hidden axis, a softmax's keys), which this reader contracts over: a core whose reductions run along the
    free axis and whose matrix unit contracts along the partition axis (NeuronCore-v2) must swap the two first."""

    name: str
    axes: tuple[Axis, ...]
    role: Role
    bytes_per_element: float = 2.0
    fmt: str = ""
    pf_transpose: bool = field(default=False, repr=False)  # compared and hashed; repr (golden digests) unchanged

    @cached_property
    def dim_names(self) -> frozenset[str]:
        names: set[str] = set()
        for a in self.axes:
            names.update((a.out, a.kernel) if isinstance(a, Window) else (a,))
        return frozenset(names)

    def elements(self, sizes: Mapping[str, int | np.ndarray]):
        """Elements covered when each dim d spans ``sizes[d]`` (scalars or broadcasting arrays)."""
        total: Any = 1
        for a in self.axes:
            if isinstance(a, Window):
                total = total * a.extent(sizes[a.out], sizes[a.kernel])
            else:
                total = total * np.asarray(sizes[a])
        return total

    def nbytes(self, sizes: Mapping[str, int | np.ndarray]):
        """Bytes covered when each dim d spans ``sizes[d]``."""
        return self.elements(sizes) * self.bytes_per_element


MATRIX_KINDS = frozenset({"matmul", "conv"})


@dataclass(frozen=True)
class Operator:
    """One operator: an iteration space, its input tensors and its output tensor.

    ``kind`` names the operator class (matmul, conv, elementwise, norm, softmax, pool, embedding, ...);
    matmul/conv run on the matrix unit, everything else on the vector unit.

    ``in_place`` (issue 17j): the name of an input activation whose buffer the output overwrites, so that a
    plan holds the output block in that input's block instead of beside it. Only an input indexed exactly as
    the output, of at least its bytes per element, of an operator without reduction dims (every output
    element reads only the input elements at its own index, or its own row of them: elementwise, norm,
    softmax) qualifies; whether its last use is this operator is the compiler's decision
    (compiler/inplace.py sets the field), never the model's.
    """

    name: str
    kind: str
    dims: tuple[tuple[str, int], ...]
    inputs: tuple[Tensor, ...]
    output: Tensor
    flops_per_point: float = 2.0
    in_place: str = field(default="", repr=False)  # set by the compiler only; part of ``signature``

    def __post_init__(self) -> None:
        names = [d for d, _ in self.dims]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate dims {names}")
        for d, n in self.dims:
            if n < 1:
                raise ValueError(f"{self.name}: dim {d} has length {n}, must be >= 1")
        for t in (*self.inputs, self.output):
            missing = t.dim_names - set(names)
            if missing:
                raise ValueError(f"{self.name}: tensor {t.name} uses unknown dims {sorted(missing)}")
        if self.in_place and self.in_place_input < 0:
            raise ValueError(f"{self.name}: in_place={self.in_place!r} names no input the output can overwrite "
                             "(an activation indexed as the output, of an operator without reduction dims)")

    @cached_property
    def sizes(self) -> dict[str, int]:
        return dict(self.dims)

    @cached_property
    def points(self) -> int:
        """Points of the iteration space (MACs for a matmul)."""
        return math.prod(n for _, n in self.dims)

    @property
    def flops(self) -> float:
        return self.flops_per_point * self.points

    @cached_property
    def reduction_dims(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.dims if d not in self.output.dim_names)

    def can_overwrite(self, tensor: Tensor) -> bool:
        """Whether the output could be written over input ``tensor``'s buffer element by element (issue 17j):
        an activation indexed exactly as the output, at least as wide per element, and no reduction dims (a
        core's output block then covers the same elements as its block of ``tensor``)."""
        return (tensor.role == Role.ACTIVATION and self.output.role in (Role.ACTIVATION, Role.OUTPUT)
                and tensor.axes == self.output.axes and not self.reduction_dims
                and tensor.bytes_per_element >= self.output.bytes_per_element)

    @cached_property
    def in_place_input(self) -> int:
        """Index of the input named by ``in_place`` (-1: none, or it cannot be overwritten)."""
        if not self.in_place:
            return -1
        for j, t in enumerate(self.inputs):
            if t.name == self.in_place and self.can_overwrite(t):
                return j
        return -1

    @cached_property
    def formats(self) -> tuple[str, ...]:
        """Numeric formats of the input tensors (unnamed ones omitted)."""
        return tuple(t.fmt for t in self.inputs if t.fmt)

    @property
    def uses_matrix_unit(self) -> bool:
        return self.kind in MATRIX_KINDS and len(self.inputs) >= 2 and bool(self.reduction_dims)

    def tensor_bytes(self, tensor: Tensor) -> float:
        """Bytes of the whole tensor."""
        return float(tensor.nbytes(self.sizes))

    @cached_property
    def _input_bytes_by_role(self) -> dict[Role, float]:
        # Asked for every operator instance of every design point: computed once per operator.
        out = dict.fromkeys(Role, 0.0)
        for t in self.inputs:
            out[t.role] += self.tensor_bytes(t)
        return out

    @cached_property
    def output_bytes(self) -> float:
        """Bytes of the output tensor."""
        return self.tensor_bytes(self.output)

    def bytes_by_role(self, role: Role, include_output: bool = True) -> float:
        """Bytes of this operator's tensors with ``role`` (inputs, and the output if it has that role)."""
        total = self._input_bytes_by_role[role]
        if include_output and self.output.role == role:
            total += self.output_bytes
        return float(total)

    @cached_property
    def signature(self) -> tuple:
        """Everything that determines how the op compiles, without its name: the planning cache key."""
        return (
            self.kind,
            self.dims,
            tuple((t.axes, t.role, t.bytes_per_element, t.fmt, t.pf_transpose) for t in self.inputs),
            (self.output.axes, self.output.role, self.output.bytes_per_element, self.output.fmt),
            self.flops_per_point,
            self.in_place_input,
        )


@dataclass(frozen=True)
class Layer:
    """A block of operators that runs ``repeat`` times in a row (e.g. 40 identical decoder layers)."""

    name: str
    ops: tuple[Operator, ...]
    repeat: int = 1


MAX_OP_POINTS = 2**60  # iteration points of one operator; 8x below int64's range, for plan padding products


@dataclass(frozen=True)
class Graph:
    """A whole workload: layers in execution order plus the facts a report needs.

    ``parameter_bytes`` is what the model stores (all weights, e.g. the full embedding table), which may exceed
    the weight bytes one step reads (a decode step reads only the embedding rows of its tokens).
    """

    name: str
    phase: str
    layers: tuple[Layer, ...]
    parameter_bytes: float
    batch: int = 1
    seq_len: int = 0
    kv_len: int = 0
    meta: tuple[tuple[str, object], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Sizes multiply (batch x sequence x heads x ...): bound them before numpy's int64 arithmetic can wrap
        # around into negative bytes. Python ints are exact here, so the check itself cannot overflow.
        for layer in self.layers:
            for op in layer.ops:
                if op.points > MAX_OP_POINTS:
                    raise ConfigError(
                        "model", self.name, f"operator {op.name} has {float(op.points):.3g} iteration points "
                        f"(batch={self.batch}, seq_len={self.seq_len}, kv_len={self.kv_len} and the model's sizes "
                        f"multiply); at most 2^60 = {float(MAX_OP_POINTS):.3g} per operator are supported")

    def instances(self) -> Iterator[tuple[int, int, Operator]]:
        """(layer index, repetition index, operator) in execution order."""
        for li, layer in enumerate(self.layers):
            for rep in range(layer.repeat):
                for op in layer.ops:
                    yield li, rep, op

    @property
    def num_op_instances(self) -> int:
        return sum(len(layer.ops) * layer.repeat for layer in self.layers)

    def _sum(self, fn) -> float:
        return float(sum(fn(op) * layer.repeat for layer in self.layers for op in layer.ops))

    @property
    def flops(self) -> float:
        return self._sum(lambda op: op.flops)

    @property
    def weight_bytes(self) -> float:
        """Weight bytes one pass reads (every weight tensor once per use)."""
        return self._sum(lambda op: op.bytes_by_role(Role.WEIGHT))

    @property
    def kv_cache_read_bytes(self) -> float:
        return self._sum(lambda op: sum(op.tensor_bytes(t) for t in op.inputs if t.role == Role.KV_CACHE))

    @property
    def kv_cache_write_bytes(self) -> float:
        return self._sum(lambda op: op.tensor_bytes(op.output) if op.output.role == Role.KV_CACHE else 0.0)

    @property
    def must_weight_bytes(self) -> float:
        """Weight-class bytes any schedule must move across HBM in one pass, before what SRAM could pin (the
        roofline's weight term). Inference: every weight read, per use (each is used once). A training step
        reads each weight in the forward, the backward and the update, but a schedule could keep it between
        uses: each parameter once, plus the optimizer state read and the updated weights and state written
        (the gradients may go from the backward to the update on chip)."""
        if not self.gradient_bytes:
            return self.weight_bytes
        written = self._sum(lambda op: op.output_bytes if op.output.role == Role.OPTIMIZER_STATE else 0.0)
        return self.parameter_bytes + self.optimizer_state_bytes + written

    @property
    def gradient_bytes(self) -> float:
        """Weight-gradient bytes a training step writes (0 for inference)."""
        return self._sum(lambda op: op.output_bytes if op.output.role == Role.GRADIENT else 0.0)

    @property
    def optimizer_state_bytes(self) -> float:
        """Optimizer-state bytes a training step reads (0 for inference)."""
        return self._sum(lambda op: op.bytes_by_role(Role.OPTIMIZER_STATE, include_output=False))

    @property
    def kv_cache_bytes(self) -> float:
        """KV-cache bytes read plus appended by one pass."""
        return self.kv_cache_read_bytes + self.kv_cache_write_bytes

    @property
    def activation_bytes(self) -> float:
        """Bytes of the activations one pass produces (every activation or output tensor once): what a
        compiler that keeps nothing on chip between operators would write to HBM, and read back at least once."""
        return self._sum(lambda op: op.output_bytes if op.output.role in (Role.ACTIVATION, Role.OUTPUT) else 0.0)
