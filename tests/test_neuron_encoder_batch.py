"""One BERT-base encoder layer on one NeuronCore-v2 at batch 8, sequence 128: a hand count per operator (issue 17e2).

The diagnosis of the Neuron encoders predicted too fast at batch > 1 (docs/stacks.md, "Neuron encoders at batch > 1:
what the engines' documented rates settle") rests on this count: every operator of the layer is charged on the
engine and at the rate of aws-neuron-sdk @81ce03ae ``nki/guides/architecture/trainium_inferentia2_arch.rst`` (TensorE
tiles of ``max(N, 64)`` cycles, 128-column stationary tiles; VectorE / ScalarE 128 lanes at 1.12 / 1.4 GHz, N cycles
per one-input pass, 2N per two-input pass, 100 cycles per instruction; a PSUM read-out per TensorE result), the
engines overlapping within an operator and not across operators. Chip cycles at the chip's 1.45 GHz
(conf/chip/inferentia2.yaml: the TensorE as a 128 x 256 array, one 128 x 128 tile at 2.8 GHz = half a tile here).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from tests_paths import CONF

from elk_dse.cost.core_models import core_model
from elk_dse.cost.neuron_autocast import auto_cast_graph
from elk_dse.cost.neuron_layout import mark_transposes
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import build_model, model_config_from_dict

CLOCK = 1.45e9
TENSOR_HZ, VECTOR_HZ, SCALAR_HZ = 2.8e9, 1.12e9, 1.4e9
FILL = 32 + 128 + 256  # per matrix operator: the first weight load (128 rows / 4), fill and drain


def _layer_cycles(batch: int) -> dict[str, float]:
    """Chip cycles of each operator of one encoder layer of bert_base at ``batch`` x 128 tokens on one core, as
    the neuron stack builds the graph (auto-cast matmult, layout transposes marked)."""
    cfg = model_config_from_dict({"name": "bert_base", "phase": "prefill", "batch": batch, "seq_len": 128,
                                  "dtype": "bf16"})
    graph = mark_transposes(auto_cast_graph(build_model(cfg), "matmult"))
    layer = next(la for la in graph.layers if la.name == "encoder")
    core = chip_from_dict(yaml.safe_load((CONF / "chip" / "inferentia2.yaml").read_text())).cores
    model = core_model(core, CLOCK)
    return {op.name: float(model.cycles(op, {d: np.array([x]) for d, x in op.dims})[0]) for op in layer.ops}


def _engine(cycles: float, hz: float) -> float:
    """Engine cycles at ``hz`` in chip cycles."""
    return cycles / hz * CLOCK


def test_bert_base_layer_at_batch_8_hand_count():
    t, h, f, heads, s = 1024, 768, 3072, 12, 128  # 8 x 128 tokens; head dim 64
    hidden = t * h / 128  # 6,144 cycles per pass over a [tokens, hidden] tensor on 128 lanes
    scores = 8 * heads * s * s / 128  # 12,288
    transpose = _engine(hidden, TENSOR_HZ)  # a LayerNorm output's PF-transpose: 6,144 TensorE cycles
    proj = (h / 128) * (h / 256) * t + FILL  # 6 x 3 whole tiles x 1,024 rows + 416 = 18,848
    ffn = (h / 128) * (f / 256) * t + FILL  # 72 tiles x 1,024 + 416 = 74,144 (fc1; fc2 is 24 x 3)
    attn_mm = 8 * heads * 0.5 * s + FILL  # 96 heads x half a tile (64 / 128 columns) x 128 rows + 416
    want = {
        "q_proj": proj + transpose,  # TensorE-bound: its read-out + the transposed copy (ScalarE) is 12,934
        "k_proj": proj, "v_proj": proj, "o_proj": proj,
        "attn_score": _engine(scores + 100, SCALAR_HZ),  # bound by its PSUM read-out (96 x 128 x 128 results)
        "attn_softmax": _engine(2 * (scores + 100), SCALAR_HZ),  # exp + scale on ScalarE; max on VectorE is less
        # P x V: read-out of 96 x 128 x 64 results + the probabilities' transposed copy, on ScalarE
        "attn_value": _engine(scores / 2 + 100 + scores + 100, SCALAR_HZ),
        "attn_residual": _engine(2 * hidden + 100, VECTOR_HZ), "mlp_residual": _engine(2 * hidden + 100, VECTOR_HZ),
        "attn_norm": _engine(2 * (hidden + 100), SCALAR_HZ), "mlp_norm": _engine(2 * (hidden + 100), SCALAR_HZ),
        "fc1": ffn + transpose,
        "gelu": t * f * 8 / 512,  # the FLOP rule (vector_lanes 512): twice one ScalarE pass (25,557)
        "fc2": ffn,
    }
    got = _layer_cycles(8)
    assert got == pytest.approx(want, rel=1e-9)
    assert attn_mm < got["attn_score"]  # the score matmul's TensorE time (6,560) hides behind its read-out
    # 272.4 us per layer: 34.0 us per sequence of 128 tokens
    assert sum(got.values()) / CLOCK == pytest.approx(272.36e-6, rel=1e-4)


def test_the_layer_grows_linearly_with_the_batch_once_tiles_stream_64_rows():
    # From batch 1 (128 rows per tile: past the 64-cycle initiation interval) every operator's engine time is
    # proportional to the tokens; only the per-instruction and per-operator fixed cycles are amortised.
    per_sequence = {b: sum(_layer_cycles(b).values()) / b for b in (1, 4, 8)}
    assert per_sequence[8] == pytest.approx(per_sequence[4], rel=0.01)
    assert per_sequence[4] < per_sequence[1] < 1.07 * per_sequence[8]
