"""ResNet-50 (He et al. 2016; torchvision resnet50, i.e. v1.5 with the stride on the 3x3 conv) inference.

Phase ``prefill`` only: one forward of B 224x224x3 images. Every conv is kind ``conv`` with dims n (image),
k (out channels), c (in channels), p, q (out rows, cols), r, s (kernel rows, cols); its input is indexed by
sliding windows over the unpadded input. Batch-norm is folded into the conv (scale into the weight, shift into
a per-channel bias), so BN adds no ops and one bias per output channel instead of torchvision's 2 BN
parameters per channel: 25,530,472 parameters instead of 25,557,032. The ReLU after a conv is applied in the
conv's epilogue (no operator of its own), as deployed inference stacks run it: tt-metal's ResNet-50 passes
``activation="relu"`` to every ``ttnn.conv2d`` that a ReLU follows (the stem conv and each bottleneck's first
two convs) and runs the residual add with its ReLU as one ``ttnn.add`` (tenstorrent/tt-metal
models/demos/ttnn_resnet/tt/ttnn_functional_resnet50.py @00c030b8). The residual add + ReLU is one
elementwise operator; max- and average-pooling are kind ``pool``.

Layers: ``stem``, then per stage the first bottleneck block (with the projection shortcut) and a Layer of
the stage's identical remaining blocks with ``repeat``, then ``head`` (global average pool + fc 2048 -> 1000).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from elk_dse.errors import ConfigError
from elk_dse.ir.graph import Graph, Layer, Operator, Role, Window
from elk_dse.models.config import ModelConfig
from elk_dse.models.hf import Arch
from elk_dse.models.ops import ADD_FLOPS, MATMUL_FLOPS, RELU_FLOPS, Ops, count_params, make_graph

IMAGE, CHANNELS, CLASSES = 224, 3, 1000
STEM_CHANNELS = 64
# (blocks, bottleneck width, output channels, stride of the stage's first block)
STAGES = ((3, 64, 256, 1), (4, 128, 512, 2), (6, 256, 1024, 2), (3, 512, 2048, 2))
EXPANSION = 4


def out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output rows of a conv/pool over ``size`` input rows."""
    return (size + 2 * pad - kernel) // stride + 1


def conv(
    o: Ops, name: str, n: int, c: int, k: int, size: int, kernel: int, stride: int, x: str, y: str,
    relu: bool = False,
) -> tuple[Operator, int]:
    """A BN-folded conv with 'same'-style padding (kernel // 2) on ``size`` x ``size`` inputs; returns the op
    and its output size. ``relu``: the ReLU that follows it is applied in the conv's epilogue (module doc),
    its 1 FLOP per output element added to the op's FLOPs (1 / (c r s) per iteration point)."""
    p = out_size(size, kernel, stride, kernel // 2)
    dims = (("n", n), ("k", k), ("c", c), ("p", p), ("q", p), ("r", kernel), ("s", kernel))
    inputs = (
        o.act(x, "n", "c", Window("p", "r", stride, 1, size), Window("q", "s", stride, 1, size)),
        o.weight(f"{name}.weight", "k", "c", "r", "s"),
        o.weight(f"{name}.bias", "k"),  # the folded batch-norm shift
    )
    flops = MATMUL_FLOPS + (RELU_FLOPS / (c * kernel * kernel) if relu else 0.0)
    return o.op(name, "conv", dims, inputs, o.act(y, "n", "k", "p", "q"), flops), p


def bottleneck(
    o: Ops, prefix: str, n: int, c_in: int, width: int, c_out: int, size: int, stride: int
) -> tuple[tuple[Operator, ...], int]:
    """One bottleneck block (1x1 reduce, 3x3 with ``stride``, 1x1 expand, shortcut add + ReLU) on input
    ``x``; a projection shortcut (1x1 conv) when the shape changes. Returns the ops and the output size."""
    a, _ = conv(o, f"{prefix}conv_a", n, c_in, width, size, 1, 1, "x", "a_act", relu=True)
    b, p = conv(o, f"{prefix}conv_b", n, width, width, size, 3, stride, "a_act", "b_act", relu=True)
    c, _ = conv(o, f"{prefix}conv_c", n, width, c_out, p, 1, 1, "b_act", "c")
    ops = [a, b, c]
    shortcut = "x"
    if stride != 1 or c_in != c_out:
        ops.append(conv(o, f"{prefix}downsample", n, c_in, c_out, size, 1, stride, "x", "shortcut")[0])
        shortcut = "shortcut"
    # Residual add and the block's final ReLU fused: 2 FLOPs per element.
    dims = (("n", n), ("k", c_out), ("p", p), ("q", p))
    ops.append(o.elementwise(f"{prefix}add_relu", dims, ("c", shortcut), "x", ADD_FLOPS + RELU_FLOPS))
    return tuple(ops), p


def resnet50_graph(cfg: ModelConfig, stages: tuple[tuple[int, int, int, int], ...] = STAGES,
                   stem_channels: int = STEM_CHANNELS, channels: int = CHANNELS, classes: int = CLASSES) -> Graph:
    """A bottleneck ResNet (ResNet-50 unless ``stages`` say otherwise) forward of ``batch`` 224x224 images
    (``seq_len`` and ``kv_len`` are ignored)."""
    if cfg.fused_attention:
        raise ConfigError("model.fused_attention", True, f"{cfg.name} has no attention")
    o, n = Ops.for_config(cfg), cfg.batch  # tensors carry their format: the matrix rate follows it
    stem_conv, size = conv(o, "conv1", n, channels, stem_channels, IMAGE, 7, 2, "image", "conv1_act", relu=True)
    pooled = out_size(size, 3, 2, 1)
    pool_dims = (("n", n), ("c", stem_channels), ("p", pooled), ("q", pooled), ("r", 3), ("s", 3))
    pool_in = o.act("conv1_act", "n", "c", Window("p", "r", 2, 1, size), Window("q", "s", 2, 1, size))
    stem = (
        stem_conv,
        o.op("maxpool", "pool", pool_dims, (pool_in,), o.act("x", "n", "c", "p", "q"), 1.0),  # 1 compare/tap
    )
    layers = [Layer("stem", stem)]
    size, c_in = pooled, stem_channels
    for i, (blocks, width, c_out, stride) in enumerate(stages, start=1):
        first, out = bottleneck(o, f"stage{i}.first.", n, c_in, width, c_out, size, stride)
        layers.append(Layer(f"stage{i}.first", first))
        rest, _ = bottleneck(o, f"stage{i}.", n, c_out, width, c_out, out, 1)
        layers.append(Layer(f"stage{i}", rest, blocks - 1))
        size, c_in = out, c_out
    head = (
        o.op(
            "avgpool",
            "pool",
            (("n", n), ("c", c_in), ("h", size), ("w", size)),
            (o.act("x", "n", "c", "h", "w"),),
            o.act("features", "n", "c"),
            1.0,
        ),  # 1 add/element
        o.linear("fc", n, c_in, classes, x="features", y="logits", bias=True, out_role=Role.OUTPUT),
    )
    layers.append(Layer("head", head))
    blocks = sum(stage[0] for stage in stages)
    meta = (("num_layers", 3 * blocks + 2), ("blocks", blocks), ("image_size", IMAGE), ("classes", classes))
    return make_graph(cfg, layers, count_params(layers, {}), meta, batch=n, seq_len=0, kv_len=0)


def resnet_arch(arch: Mapping[str, Any], cfg: ModelConfig) -> Graph:
    """A bottleneck ResNet from Hugging Face ``resnet`` config.json fields (microsoft/resnet-50): stage depths
    and output widths (bottleneck width = width / 4), stem width; the first stage keeps the resolution."""
    a = Arch(arch, "model.arch", "resnet")
    if a.text("layer_type", "bottleneck") != "bottleneck":
        raise a.reject("layer_type", a.data.get("layer_type"), "bottleneck (basic blocks are not modelled)")
    if a.flag("downsample_in_first_stage", False):
        raise a.reject("downsample_in_first_stage", True, "false (the first stage keeps the resolution)")
    depths, widths = a.data.get("depths"), a.data.get("hidden_sizes")
    if not (isinstance(depths, list | tuple) and isinstance(widths, list | tuple) and len(depths) == len(widths) > 0
            and all(isinstance(v, int) and v > 0 for v in (*depths, *widths))):
        raise a.reject("depths", depths, "a list of positive block counts, as long as hidden_sizes (positive)")
    if any(w % EXPANSION for w in widths):
        raise a.reject("hidden_sizes", widths, f"multiples of {EXPANSION} (the bottleneck expansion)")
    stages = tuple((int(d), int(w) // EXPANSION, int(w), 1 if i == 0 else 2)
                   for i, (d, w) in enumerate(zip(depths, widths, strict=True)))
    labels = a.data.get("id2label")
    classes = len(labels) if labels else a.integer("num_labels", 2)
    return resnet50_graph(cfg, stages, a.integer("embedding_size", 64), a.integer("num_channels", 3), classes)


CNN_TYPES: dict[str, tuple[Callable[[Mapping[str, Any], ModelConfig], Graph], str]] = {
    "resnet": (resnet_arch, "bottleneck ResNet, 224x224 classification"),
}
