"""What a ResNet bottleneck moves through HBM on one NeuronCore-v2 under the neuron stack (issue 17n2).

The diagnosis of the Inf2 ResNet b64 rows (docs/stacks.md, "Neuron points predicted too slow: what the sources
settle") rests on this count: at batch 64 no stage-1 tensor fits the 24 MiB SBUF, so every operator reads its
activations from HBM and writes its output there, whole, in 17e's formats (cost/neuron_autocast.py: the residual
stream and the convolution feeding the add in FP32, the tensors read only by convolutions in bf16). The compiler
adds nothing beyond that layer-at-a-time minimum; a fusion rule (the add in the convolution's read-out, tiles kept
across operators), if one is ever sourced, must change these numbers and this test.
"""

from __future__ import annotations

import pytest
import yaml
from tests_paths import CONF

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.stack import load_stack
from elk_dse.models import model_config_from_dict

MB = 1e6


def _ops(batch: int) -> dict[str, dict]:
    data = yaml.safe_load((CONF / "chip" / "inferentia2.yaml").read_text())
    data["cores"].update(count=1, grid=[1])
    data["hbm"]["bandwidth_gb_s"] = 440.25  # the rows' data-parallel half of the chip
    model = model_config_from_dict({"name": "resnet50", "phase": "prefill", "batch": batch, "dtype": "bf16"})
    out = evaluate(DesignPoint(chip_from_dict(data), model, SchedulerConfig(name="elk_full"),
                               stack=load_stack("neuron")))
    assert out["latency_s"] >= out["roofline_latency_s"]
    # the second stage-1 bottleneck (layer "stage1", first repetition): input and output 64 x 256 x 56 x 56
    return {o["name"].split(".")[-1]: o for o in out["ops"] if o["layer"] == "stage1" and o["repetition"] == 0}


def test_a_stage1_bottleneck_at_batch_64_moves_the_layer_at_a_time_minimum():
    n = 64
    wide_fp32 = n * 256 * 56 * 56 * 4  # the block input / output and conv_c's output: 205.5 MB each
    narrow_bf16 = n * 64 * 56 * 56 * 2  # conv_a's and conv_b's outputs, read only by convolutions: 25.7 MB each
    ops = _ops(n)
    assert set(ops) == {"conv_a", "conv_b", "conv_c", "add_relu"}
    # the residual add reads conv_c's FP32 output and the FP32 block input, writes the FP32 sum: nothing else
    assert ops["add_relu"]["hbm_bytes"] == 3 * wide_fp32
    by_hand = {"conv_a": wide_fp32 + narrow_bf16, "conv_b": 2 * narrow_bf16, "conv_c": narrow_bf16 + wide_fp32}
    for name, nbytes in by_hand.items():
        # plus the weights and the streamed plan's re-reads of them: at most 1.2 MB per convolution here
        assert nbytes <= ops[name]["hbm_bytes"] <= nbytes + 1.2 * MB, name
    total = sum(o["hbm_bytes"] for o in ops.values())
    assert total == pytest.approx(1130.4 * MB, abs=4 * MB)
