"""The host's part of a decode step: the logits read back for host sampling (issue 17t, seventh session).

tt-metal's tt_transformers demo samples on the device only at batch 1 (``simple_text_demo.py``: "Argmax on
device is only supported for batch_size=1 (per submesh)"); from batch 2 on, every decode step ends with the
device's logits read back to the host (``ttnn.to_torch`` in ``Transformer.process_output_decode``), inside the
timed iteration, while the device waits for the next step's tokens. What is read: one chip's whole logits
tensor (on a mesh the vocabulary shards are first all-gathered on the device, compiler/parallel/tp.py, and the
host reads device 0's copy), untilized to row-major bfloat16, its rows padded to a whole 32-row tile (the decode
input is padded to 32 users). Data-parallel copies each read their own logits (per submesh). docs/parallelism.md
"The logits at batch > 1" cites the code.

The rule lives here once; the compiler records the bytes in ``Program.meta["host_logits_bytes"]`` (compile_single
for one chip or all_core, assemble for a parallel plan, so auto's candidates carry it too) and
``sim/base.simulate`` adds :func:`host_readback_s` to both simulators' latency.
"""

from __future__ import annotations

import math
from typing import Any

TILE_ROWS = 32  # a Tensix tile's rows: the decode batch is padded to them (model.py prepare_decode_inputs_host)
LOGIT_BYTES = 2  # bfloat16: the untilized logits the host reads (ttnn.untilize before ttnn.to_torch)


def host_logits_bytes(graph: Any, overheads: Any, copies: int = 1) -> float:
    """Bytes the host reads back per decode step to sample the next tokens, for ``graph`` (what one copy of the
    workload runs: the whole graph, or a data-parallel copy's share) run as ``copies`` data-parallel copies (each
    on its own chip or submesh): 0 unless it is a decode step whose LM head has at least
    ``overheads.host_sampling_min_batch`` rows (users per copy; 0 = sampling on the device; the demo's rule is per
    submesh); else every copy's logits, its rows padded to 32, times the vocabulary (the graph's ``vocab``, else
    the LM head's columns), in bfloat16 (the host reads each copy's logits: simple_text_demo per submesh, the
    Falcon demos' tt_tensors_to_torch_tensors from every device)."""
    min_batch = int(getattr(overheads, "host_sampling_min_batch", 0))
    if not min_batch or graph.phase != "decode" or copies < 1:
        return 0.0
    heads = [op for layer in graph.layers for op in layer.ops if op.name == "lm_head"]
    if not heads:
        return 0.0
    dims = dict(heads[-1].dims)
    if dims["t"] < min_batch:
        return 0.0
    vocab = int(dict(graph.meta).get("vocab", 0) or dims["o"])
    rows = math.ceil(dims["t"] / TILE_ROWS) * TILE_ROWS
    return float(copies * rows * vocab * LOGIT_BYTES)


def host_readback_s(program: Any) -> float:
    """Seconds the host spends reading ``program``'s logits back per step (the device idles meanwhile): the bytes
    the compiler recorded over the stack's read rate ``overheads.host_read_gb_per_s``."""
    read = float(program.meta.get("host_logits_bytes", 0.0))
    if not read:
        return 0.0
    return read / program.chip.overheads.host_read_bytes_per_s
