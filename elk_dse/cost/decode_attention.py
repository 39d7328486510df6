"""A vendor decode-attention kernel's cost: tt-metal's ``scaled_dot_product_attention_decode`` (issue 17s).

tt-metal runs one decode step's attention (scores, softmax, values) as one kernel on a fixed grid of cores per
chip (the stack's ``sdpa_grid_cores``; the demos' ``SDPA_DECODE_PROGCFG``), not spread over every core at the
DRAM roof as our compiler plans the three operators. Its program factory
(``ttnn/cpp/ttnn/operations/transformer/sdpa_decode/device/sdpa_decode_program_factory.cpp``, tenstorrent/tt-metal
@007f92d0) assigns cores per (user, KV head)::

    max_num_cores_for_compute = max_cores_per_head_batch * B * num_kv_heads
    num_cores_per_batch = min(grid, max_num_cores_for_compute) / B
    num_cores_per_head  = max(1, num_cores_per_batch / num_kv_heads)
    num_heads_per_core  = max(1, ceil(num_kv_heads / num_cores_per_batch))

(``max_cores_per_head_batch`` defaults to 16, ``ttnn/.../transformer/sdpa_config.hpp``). Each core of a head
takes an equal share of the key chunks (``k_chunk_size`` keys), and the Q rows of one KV head's query group are
padded to one 32-row tile (``q_shape[2] = round_up(.., TILE_HEIGHT)``), so every 32 keys of a chunk cost a 32x32
score tile whatever the group size. The busiest core therefore processes

    waves x heads_per_core x ceil(chunks / cores_per_head) x (k_chunk / 32) x ceil(r / 32)

score tiles (``waves`` = ceil(B / grid): the kernel needs at least one core per user; more users than cores is
our extension, run as successive launches).

**The batch the kernel is launched for (issue 17k).** The split above uses the ``B`` of the kernel's Q tensor
(``B = q_shape[1]``), which need not be the number of users decoding. tt-metal's Galaxy demo
(``models/demos/llama3_70b_galaxy``) always builds its model for 32 users (``demo/text_demo.py``
``create_tt_model``: ``TtModelArgs(..., max_batch_size=32)``), 8 per chip (``tt/llama_attention.py``
@00d4c974: ``batch_size_per_device_group = max_batch_size // num_device_groups``, "consuming 8 users per chip"),
and at batch 1 pads the positions of the 31 idle users with -1 (``text_demo.py``: "pad current_pos to 32 with
-1s"); the compute kernel returns at once for such a user (``sdpa_flash_decode.cpp``: "cur_pos of -1 indicates
that the user should be skipped") but the program factory has already given it its share of the grid. So one
real user on a Galaxy chip runs on 32 / 8 = 4 cores, not 16. The stack's ``sdpa_padded_users`` (0: none) is
that launch batch per chip: the split uses ``max(B, sdpa_padded_users)`` users, the tiles are the real
users'. tt_transformers builds its model for the batch it runs (``simple_text_demo.py``:
``max_batch_size=global_batch_size // data_parallel``), so its value is 0. Each costs ``sdpa_ns_per_score_tile`` nanoseconds of one core (the
QK^T tile, the softmax's exp / max / sum on the SFPU and the PV tile, HiFi2 with exact exp as both demos configure
it): a time per tile, fitted on the stack's declared calibration points (docs/stacks.md).

The rule is a floor on the busiest core's cycles of the decode softmax operator (or of a fused ``attention``
operator): the compiler keeps every plan and its HBM traffic (the KV cache is still read at the DRAM roof by the
score and value operators), and a plan whose softmax would run faster than the kernel's cores allow is charged the
kernel's cycles. Raising cycles never lowers a time, so no latency can beat the roofline. Both simulators read
the cycles from the Program's OpWork (select.table_work and partition.cost_plans call this module).
"""

from __future__ import annotations

import math

from elk_dse.cost import neuron_attention
from elk_dse.hw.chip import Chip
from elk_dse.ir.graph import Operator

TILE = 32  # rows and columns of a Tenstorrent tile


def decode_attention_shape(op: Operator) -> tuple[int, int, int, int] | None:
    """(users b, KV heads g, query heads per KV head r, keys l) of a decode-attention softmax or fused decode
    attention operator (models/ops.attention: dims b, g, r, l), else None. Prefill attention has keys ``s2``."""
    names = {d for d, _ in op.dims}
    if not {"b", "g", "r", "l"} <= names:
        return None
    if not (op.kind == "softmax" or (op.kind == "matmul" and len(op.inputs) == 3)):
        return None  # the score and value matmuls keep their plans (they carry the KV reads)
    s = op.sizes
    return s["b"], s["g"], s["r"], s["l"]


def score_tiles_per_core(b: int, g: int, r: int, keys: int, grid_cores: int, max_cores_per_head: int,
                         k_chunk_tokens: int, padded_users: int = 0) -> int:
    """32x32 score tiles the kernel's busiest core processes (see the module doc; the vendor's core split).
    ``padded_users``: the users the kernel is launched for when fewer are real (0: the real ``b``); the idle
    ones take cores but no tiles."""
    if min(b, g, r, keys, grid_cores, max_cores_per_head, k_chunk_tokens) < 1:
        raise ValueError("decode attention: every size, the grid and the chunk must be >= 1")
    if k_chunk_tokens % TILE:
        raise ValueError(f"decode attention: k_chunk_tokens={k_chunk_tokens} must be a multiple of {TILE}")
    if padded_users < 0:
        raise ValueError(f"decode attention: padded_users={padded_users} must be >= 0")
    waves = -(-b // grid_cores)
    users = min(max(b, padded_users), grid_cores)  # the kernel's B (q_shape[1]) in one launch
    cores_per_batch = min(grid_cores, max_cores_per_head * users * g) // users
    cores_per_head = max(1, cores_per_batch // g)
    heads_per_core = max(1, math.ceil(g / cores_per_batch))
    chunks = -(-keys // k_chunk_tokens)
    chunks_per_core = -(-chunks // cores_per_head)
    return waves * heads_per_core * chunks_per_core * (k_chunk_tokens // TILE) * -(-r // TILE)


def kernel_cycles(chip: Chip, shape: tuple[int, int, int, int] | None) -> float:
    """Busiest-core cycles of a decode-attention operator of ``shape`` (:func:`decode_attention_shape`) under the
    chip's decode-attention kernel (its stack's ``sdpa_*`` values on ``chip.overheads``); 0 when ``shape`` is None
    or the chip runs no such kernel."""
    o = chip.overheads
    if o.decode_softmax:  # issue 17d: the Neuron stack's softmax engines (cost/neuron_attention.py)
        return neuron_attention.softmax_cycles(chip, shape)
    if shape is None or not o.sdpa_grid_cores or not o.sdpa_ns_per_score_tile:
        return 0.0
    # Every chip runs the kernel on its own grid: on a system compiled as one (all_core) the operator's users and
    # heads spread over the grids of all chips; a tp/tp2d/pp share is compiled on one chip (num_chips 1).
    grid = min(o.sdpa_grid_cores, chip.cores_per_chip) * chip.num_chips
    tiles = score_tiles_per_core(*shape, grid, o.sdpa_max_cores_per_head, o.sdpa_k_chunk_tokens,
                                 o.sdpa_padded_users * chip.num_chips)
    return tiles * o.sdpa_ns_per_score_tile * 1e-9 * chip.clock_hz
