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
from dataclasses import dataclass
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


# --- Per-batch host I/O of data-parallel inference (issue 17g, eighth session) ------------------------------------
#
# tt-metal's CNN / encoder demos (the tt_cnn stack) time a loop of batches: every batch, the host writes each chip's
# share of the inputs (``copy_host_to_device_tensor`` of a ``ShardTensorToMesh`` host tensor) and reads the outputs
# back. Under "trace + 2 command queues" (models/tt_cnn/tt/executor.py, MultiCQTracedModelOverlappedInputExecutor:
# "CQ_OPS_AND_OUTPUT_READ (0): Model operations and output reading; CQ_INPUT_WRITE (1): Input tensor writing")
# the next batch's write overlaps this batch's compute; the output read follows the compute on the same queue.
# Chips without a PCIe link of their own (an n300's right chip, a T3000's four remote chips, every compute chip of
# a TG Galaxy behind its four gateway cards) are reached through a PCIe chip over Ethernet, so the chips behind one
# link share its transfers. docs/parallelism.md "Host I/O per batch" cites the code and the rates.

HOST_INPUT_BYTES = 2  # bfloat16: the demos' host input tensors (ttnn.from_torch(..., dtype=ttnn.bfloat16))
HOST_OUTPUT_BYTES = 2  # bfloat16: the output the host reads back (assumption: the last operator's values in bf16)
IMAGE_CHANNELS = 3  # the image inputs' channels as the host holds them (resnet50_test_infra: (N, 3, 224, 224))
# Per token, the encoder runner's host tensors: input_ids and token_type_ids uint32 (4 B each), the attention mask
# and the extended mask bfloat16 (2 B each); per position the position ids uint32 (Sentence-BERT performant runner).
TOKEN_INPUT_BYTES = 4 + 4 + 2 + 2
POSITION_INPUT_BYTES = 4


def host_batch_bytes(graph: Any) -> tuple[float, float]:
    """(bytes the host writes, bytes it reads) per batch for ``graph`` (what one data-parallel copy runs): an
    image model (graph meta ``image_size``) writes batch x 3 x size^2 bfloat16 values; a token model's batch (first
    operator an embedding, not a decode step) batch x seq x 12 B + seq x 4 B (ids, token types, masks, positions);
    any other graph nothing (not modelled: a decode loop's tokens are 17t's business). The read is the last
    operator's output in bfloat16."""
    meta = dict(graph.meta)
    ops = [op for layer in graph.layers for op in layer.ops]
    if not ops:
        return 0.0, 0.0
    if meta.get("image_size"):
        size = int(meta["image_size"])
        written = float(graph.batch * IMAGE_CHANNELS * size * size * HOST_INPUT_BYTES)
    elif ops[0].kind == "embedding" and graph.seq_len and graph.phase != "decode":  # an encoder's batch
        written = float(graph.batch * graph.seq_len * TOKEN_INPUT_BYTES + graph.seq_len * POSITION_INPUT_BYTES)
    else:
        written = 0.0
    last = ops[-1]
    read = float(last.output_bytes / last.output.bytes_per_element * HOST_OUTPUT_BYTES)
    return written, read


def record_host_batch_io(meta: dict[str, Any], graph: Any, overheads: Any, copies: int = 1) -> None:
    """Put into a Program's ``meta`` what the host moves per batch under a stack with ``host_batch_io`` set:
    ``host_batch_io`` = (bytes written per copy, bytes read per copy, copies). Nothing when the stack charges no
    host I/O. ``copies``: the data-parallel copies (1 for one chip or a partition of one workload)."""
    if not getattr(overheads, "host_batch_io", "") or copies < 1:
        return
    written, read = host_batch_bytes(graph)
    if written or read:
        meta["host_batch_io"] = (written, read, int(copies))


def host_link_share(system: Any, copies: int) -> int:
    """Copies whose transfers go through the busiest host link of ``system``: ceil(copies / links), the links
    being ``chips.host_links`` (0 = one per chip), never more than the chips."""
    chips = system.chips
    links = min(chips.host_links or chips.count, chips.count)
    return math.ceil(copies / max(min(links, copies), 1))


@dataclass(frozen=True)
class HostBatchIO:
    """One batch's host transfers through the busiest host link (seconds) and what they add to the device time."""

    write_s: float  # the inputs of every copy behind the link, at min(the stack's write rate, the link rate)
    read_s: float  # the outputs of every copy behind the link, at min(the stack's read rate, the link rate)
    added_s: float  # what the batch takes beyond the device's time under the stack's rule


def host_batch_io(program: Any, device_s: float) -> HostBatchIO:
    """The host I/O of one batch of ``program`` whose device time is ``device_s`` seconds. Under ``trace_2cq``
    the write of the next batch runs beside this batch's compute (second command queue) and the read after it
    (the compute queue): a batch takes max(device + read, write), so it adds max(read, write - device). Under
    ``trace_1cq`` (issue 17g2) the write, the trace and the read run in order on one command queue
    (models/demos/ttnn_resnet/tests/perf_e2e_resnet50.py, run_trace_model: copy_host_to_device_tensor,
    execute_trace and from_device all on CQ 0, the loop of ``test_perf_trace``): a batch takes write + device +
    read, so it adds write + read."""
    meta = program.meta.get("host_batch_io")
    rule = program.chip.overheads.host_batch_io
    if not meta or not rule:
        return HostBatchIO(0.0, 0.0, 0.0)
    written, read, copies = meta
    system = program.system if program.system is not None else program.chip
    share = host_link_share(system, int(copies))
    link = system.chips.host_link_gb_s * 1e9
    o = program.chip.overheads
    write_rate = min(o.host_write_bytes_per_s, link) if link else o.host_write_bytes_per_s
    read_rate = min(o.host_read_bytes_per_s, link) if link else o.host_read_bytes_per_s
    write_s = share * written / write_rate
    read_s = share * read / read_rate
    if rule == "trace_2cq":
        return HostBatchIO(write_s, read_s, max(read_s, write_s - device_s))
    if rule == "trace_1cq":
        return HostBatchIO(write_s, read_s, write_s + read_s)
    # check_host_batch_io admits no other rule; a new one is priced here
    raise ValueError(f"host_batch_io rule {rule!r} has no price in cost/host_io.py")
