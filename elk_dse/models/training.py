"""Training steps (``model.phase=train``): forward, loss, backward and an Adam update, from a forward graph.

``training_graph`` turns any zoo forward graph into one step of training:

- **Forward**: the model's forward pass over ``batch`` x ``seq_len`` tokens (decoders compute logits for
  every token and write no KV cache). Layers are unrolled (``repeat`` 1 each) and every produced tensor gets
  a unique name, so each backward operator reads exactly the activation its forward counterpart produced,
  and the cross-operator analysis sees the true live range of every saved activation (the plan cache is
  keyed by shape, so identical layers still plan once).
- **Loss**: softmax cross-entropy on the final output and its gradient: 5 + 1 FLOPs per output element.
- **Backward**, operators in reverse: a matmul/conv gives two matmuls of the forward's FLOPs, the input
  gradient ``dX = dY W^T`` (re-reading the weight) and the weight gradient ``dW = X^T dY`` (role gradient,
  written to HBM); a matmul of two activations (attention) gives a gradient matmul for each. A vector op
  gives one operator per input needing a gradient, with the forward's FLOPs per point (at least 1: the
  derivative costs about what the function does, times dY), reading dY and that input. Bias and norm-scale
  gradients are reductions of dY (1 FLOP per point). When a tensor feeds several operators, each later
  gradient contribution reads the earlier partial sum (accumulated in the epilogue, no extra FLOPs).
  Gradients with respect to model inputs (token ids, images) are not computed.
- **Activations**: kept (``model.recompute=false``: the backward reads the forward's activations, on chip or
  spilled by the cross-operator analysis), or recomputed per repeated block (``model.recompute=true``:
  activation checkpointing — each block's forward runs again right before its backward, from the block's
  input; one extra forward of the repeated blocks).
- **Optimizer**: Adam over every parameter, one element-wise operator per weight tensor (per layer; the
  parameters no forward op reads, e.g. embedding rows no token gathered, in one more): reads the weight
  (model dtype), its gradient and the fp32 first and second moments (8 bytes), writes the weight and both
  moments; 12 FLOPs per parameter (moment updates 3 + 4, bias-free step: sqrt, + eps, divide, x lr, subtract).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from elk_dse.ir.graph import Graph, Layer, Operator, Role, Tensor
from elk_dse.models.config import ModelConfig
from elk_dse.models.ops import SOFTMAX_FLOPS

ADAM_FLOPS = 12.0  # per parameter, see module docstring
ADAM_STATE_BYTES = 8.0  # fp32 first and second moments per parameter
LOSS_FLOPS = SOFTMAX_FLOPS + 1.0  # softmax cross-entropy and its gradient (p - onehot), per output element
REDUCE_GRAD_FLOPS = 1.0  # bias / scale gradients: a sum over dY


@dataclass
class _Names:
    """Unique names for produced tensors: ``name`` -> latest version (the IR's latest-producer rule, explicit)."""

    latest: dict[str, str] = field(default_factory=dict)
    count: int = 0

    def read(self, name: str) -> str:
        return self.latest.get(name, name)

    def write(self, name: str) -> str:
        self.count += 1
        self.latest[name] = f"{name}#{self.count}"
        return self.latest[name]


def _unrolled_forward(graph: Graph) -> list[tuple[int, Operator]]:
    """(block id, op) of every forward instance with unique tensor names; block id -1 = not a repeated layer.
    KV-cache and output roles become activations (no cache in training; the output feeds the loss)."""
    names = _Names()
    out: list[tuple[int, Operator]] = []
    block = 0
    for layer in graph.layers:
        for _ in range(layer.repeat):
            for op in layer.ops:
                ins = tuple(_rename(t, names.read(t.name)) for t in op.inputs)
                o = op.output
                role = Role.ACTIVATION if o.role in (Role.KV_CACHE, Role.OUTPUT) else o.role
                new = replace(op, inputs=ins, output=replace(o, name=names.write(o.name), role=role))
                out.append((block if layer.repeat > 1 else -1, new))
            block += layer.repeat > 1
    return out


def _rename(t: Tensor, name: str) -> Tensor:
    if t.role in (Role.ACTIVATION, Role.OUTPUT, Role.KV_CACHE):
        return replace(t, name=name, role=Role.ACTIVATION)
    return t


class _Backward:
    """Emits backward operators in reverse order, tracking gradient names and accumulation."""

    def __init__(self, produced: set[str]):
        self.produced = produced  # activations some forward op produced (others are model inputs)
        self.grads: dict[str, str] = {}  # activation -> latest partial gradient tensor name
        self.count = 0
        self.ops: list[Operator] = []

    def grad_out(self, t: Tensor, op_name: str) -> tuple[Tensor, Tensor | None]:
        """The gradient tensor to write for activation ``t`` and the earlier partial sum to accumulate."""
        prev = self.grads.get(t.name)
        self.count += 1
        name = f"d.{t.name}~{self.count}"
        self.grads[t.name] = name
        out = Tensor(name, t.axes, Role.ACTIVATION, t.bytes_per_element)
        acc = None if prev is None else Tensor(prev, t.axes, Role.ACTIVATION, t.bytes_per_element)
        return out, acc

    def emit(self, name: str, kind: str, op: Operator, inputs: Iterable[Tensor | None], output: Tensor,
             flops: float) -> None:
        ins = tuple(t for t in inputs if t is not None)
        # The gradient's loop nest: the forward's, minus dims none of its tensors use (a bias gradient sums
        # dY over the tokens; it does not loop over the matmul's reduction dim).
        used = set(output.dim_names).union(*(t.dim_names for t in ins))
        dims = tuple((d, n) for d, n in op.dims if d in used)
        self.ops.append(Operator(name, kind, dims, ins, output, flops))

    def backward(self, op: Operator, saved: dict[str, str]) -> None:
        """Gradient operators of forward ``op`` (``saved`` maps forward names to recomputed ones)."""
        dy_name = self.grads.get(op.output.name)
        if dy_name is None:
            return  # the output does not reach the loss
        dy = Tensor(dy_name, op.output.axes, Role.ACTIVATION, op.output.bytes_per_element)

        def fwd(t: Tensor) -> Tensor:
            return replace(t, name=saved.get(t.name, t.name))

        needs = [(j, t) for j, t in enumerate(op.inputs)
                 if t.role == Role.WEIGHT or (t.role == Role.ACTIVATION and t.name in self.produced)]
        if op.uses_matrix_unit:
            operands = op.inputs[:2]
            for j, t in needs:
                if j < 2:  # dX = dY W^T or dW = X^T dY: the forward's FLOPs, reading dY and the other operand
                    other = fwd(operands[1 - j])
                    self._grad(op, t, f"{op.name}.grad_{'w' if t.role == Role.WEIGHT else 'x'}{j}", op.kind,
                               (dy, other), op.flops_per_point)
                else:  # a bias: sum dY over the tokens
                    self._grad(op, t, f"{op.name}.grad_bias", "reduce", (dy,), REDUCE_GRAD_FLOPS)
            return
        per_point = max(op.flops_per_point, 1.0)
        for j, t in needs:
            if t.role == Role.WEIGHT:  # norm scale/shift, embedding rows, additive embeddings
                self._grad(op, t, f"{op.name}.grad_w{j}", "reduce", (dy,), REDUCE_GRAD_FLOPS)
            else:
                self._grad(op, t, f"{op.name}.grad_x{j}", op.kind, (dy, fwd(t)), per_point)

    def _grad(self, op: Operator, t: Tensor, name: str, kind: str, inputs: tuple[Tensor, ...],
              flops: float) -> None:
        if t.role == Role.WEIGHT:
            out = Tensor(f"grad.{t.name}", t.axes, Role.GRADIENT, t.bytes_per_element)
            self.emit(name, kind, op, inputs, out, flops)
        else:
            out, acc = self.grad_out(t, name)
            self.emit(name, kind, op, (*inputs, acc), out, flops)


def training_graph(forward: Graph, cfg: ModelConfig) -> Graph:
    """One training step of ``forward`` (see the module docstring); ``cfg.recompute`` selects checkpointing."""
    fwd = _unrolled_forward(forward)
    ops = [op for _, op in fwd]
    produced = {op.output.name for op in ops}
    last = ops[-1]
    bwd = _Backward(produced)
    # Loss on the final output, over its elements: it seeds the backward pass with d(output).
    elems = int(last.output_bytes / last.output.bytes_per_element)
    seed, _ = bwd.grad_out(last.output, "loss")
    flat = Tensor(last.output.name, ("e",), Role.ACTIVATION, last.output.bytes_per_element)
    loss = Operator("loss", "softmax", (("e", elems),), (flat,), replace(seed, axes=("e",)), LOSS_FLOPS)
    # The backward reads the seed with the output's own axes: the same bytes.
    bwd.grads[last.output.name] = seed.name

    recompute_ops: list[Operator] = []
    i = len(fwd) - 1
    backward_ops: list[Operator] = []
    while i >= 0:
        block = fwd[i][0]
        j = i
        while j > 0 and block >= 0 and fwd[j - 1][0] == block:
            j -= 1
        group = [op for _, op in fwd[j:i + 1]] if block >= 0 else [fwd[i][1]]
        saved: dict[str, str] = {}
        if cfg.recompute and block >= 0:
            # Re-run the block's forward from its input: the backward reads the recomputed activations.
            for op in group:
                new_out = f"{op.output.name}@re"
                ins = tuple(replace(t, name=saved.get(t.name, t.name)) for t in op.inputs)
                copy = replace(op, name=f"{op.name}.recompute", inputs=ins, output=replace(op.output, name=new_out))
                saved[op.output.name] = new_out
                backward_ops.append(copy)
                recompute_ops.append(copy)
        start = len(bwd.ops)
        for op in reversed(group):
            bwd.backward(op, saved)
        backward_ops.extend(bwd.ops[start:])
        i = (j - 1) if block >= 0 else i - 1

    params = int(forward.parameter_bytes / cfg.bytes_per_element)
    layers = (
        Layer("forward", tuple(ops)),
        Layer("loss", (loss,)),
        Layer("backward", tuple(backward_ops)),
        Layer("optimizer", tuple(_adam_ops(fwd, params, float(cfg.bytes_per_element)))),
    )
    meta = (*forward.meta, ("recompute", cfg.recompute), ("recomputed_ops", len(recompute_ops)))
    meta = tuple((k, v) for k, v in meta if k != "params") + (("params", params),)
    return Graph(name=forward.name, phase="train", layers=layers, parameter_bytes=forward.parameter_bytes,
                 batch=forward.batch, seq_len=forward.seq_len, kv_len=0, meta=meta)


def _adam(name: str, params: int, bpe: float) -> Operator:
    """Adam on ``params`` parameters of weight ``name`` (see the module docstring)."""
    return Operator(
        f"adam.{name}", "elementwise", (("p", params),),
        (Tensor(name, ("p",), Role.WEIGHT, bpe), Tensor(f"grad.{name}", ("p",), Role.GRADIENT, bpe),
         Tensor(f"adam_moments.{name}", ("p",), Role.OPTIMIZER_STATE, ADAM_STATE_BYTES)),
        Tensor(f"updated.{name}", ("p",), Role.OPTIMIZER_STATE, bpe + ADAM_STATE_BYTES), ADAM_FLOPS)


def _adam_ops(fwd: list[tuple[int, Operator]], params: int, bpe: float) -> list[Operator]:
    """One Adam operator per weight tensor of each layer, then one for the parameters no op read."""
    sizes: dict[tuple[int, str], int] = {}
    for block, op in fwd:
        for t in op.inputs:
            if t.role == Role.WEIGHT:
                sizes.setdefault((block, t.name), int(t.elements(op.sizes)))
    ops = [_adam(f"{name}@{block}" if block >= 0 else name, n, bpe) for (block, name), n in sizes.items()]
    rest = params - sum(sizes.values())
    if rest > 0:
        ops.append(_adam("unread_parameters", rest, bpe))
    return ops
