"""A new user's trial on systems and files nobody tuned for (issue 17, ninth session, 17u): each test failed
before its fix (docs/reliability.md, "New-user trial, ninth session")."""

from __future__ import annotations

import pytest

import elk_dse
from elk_dse.ir.graph import Graph


def test_a_model_far_beyond_hbm_is_refused_before_any_instance_is_walked(monkeypatch):
    """num_hidden_layers=1000000 (a typo of 10) took 170 s and 4.7 GB to become `hbm_capacity`: the compiler
    walked every one of the ~25 million operator instances before comparing the stored bytes with the HBM.
    The totals are per layer x repeat, so the refusal must not iterate instances at all."""

    def walked(self):
        raise AssertionError("an instance walk before the capacity check")

    monkeypatch.setattr(Graph, "instances", walked)
    r = elk_dse.evaluate(chip="mesh64", model="llama2_7b",
                         overrides={"model.arch.num_hidden_layers": 1_000_000})
    assert not r.feasible
    assert r.infeasible_reason == "hbm_capacity"
    assert "HBM holds 32 GiB" in r.infeasible_detail


def test_a_chip_file_of_the_users_evaluates_as_the_packaged_chip_would(tmp_path):
    """`+chip=path/to/chip.yaml` (a system nobody wrote a packaged file for) was refused ("one of
    blackhole_p150, ..."): a user had to edit the installed package. The same description from a file of the
    user's gives the packaged chip's numbers, its overrides apply, and its default_stack is taken."""
    import importlib.resources

    text = (importlib.resources.files("elk_dse.conf") / "chip" / "wormhole_n300.yaml").read_text()
    path = tmp_path / "my_n300.yaml"
    path.write_text(text.replace("name: wormhole_n300", "name: my_n300"))
    kw = dict(model="llama3_2_1b", overrides={"chip.chips.parallelism": "pp", "model.kv_len": 128})
    mine, shipped = elk_dse.evaluate(chip=str(path), **kw), elk_dse.evaluate(chip="wormhole_n300", **kw)
    assert mine.feasible and shipped.feasible
    assert mine.latency_s == shipped.latency_s
    assert mine["chip"]["name"] == "my_n300"
    assert mine["parallelism"]["strategy"] == "pp"
    assert mine["stack"]["name"] == "tt_transformers"  # the file's default_stack


def test_a_chip_file_that_is_not_a_chip_is_one_line(tmp_path, capsys):
    from elk_dse.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: chip\xff\n")
    assert main(["evaluate", f"+chip={bad}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: chip='{bad}' is invalid: not UTF-8 text"]


BERT_BASE = {"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
             "hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
             "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0,
             "position_embedding_type": "absolute", "type_vocab_size": 2, "vocab_size": 30522}  # google-bert/bert-base-uncased
ROBERTA_BASE = {**BERT_BASE, "architectures": ["RobertaForMaskedLM"], "model_type": "roberta", "layer_norm_eps": 1e-05,
                "max_position_embeddings": 514, "type_vocab_size": 1, "vocab_size": 50265,
                "pad_token_id": 1}  # FacebookAI/roberta-base


@pytest.mark.parametrize("config, params", [
    (BERT_BASE, 109_482_240),    # BertModel with pooler (the zoo's bert_base, same count)
    (ROBERTA_BASE, 124_645_632),  # RobertaModel with pooler: 50265 + 514 + 1 embedding rows (hand count of the shapes)
])
def test_encoder_config_json_through_model_hf(tmp_path, config, params):
    """model=hf took decoders only: a BERT / RoBERTa config.json as it ships on the Hub was refused
    ("one of deepseek_v2, ..."), though the zoo reads the same fields. Now read by the zoo's encoder reader:
    the checkpoint's parameter count; decode (hf.yaml's default phase) is one line naming model.phase."""
    import json

    from elk_dse.errors import ConfigError

    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    from elk_dse.models import ModelConfig, build_model

    with pytest.raises(ConfigError, match="model.phase"):
        build_model(ModelConfig("hf", phase="decode", path=str(path)))
    graph = build_model(ModelConfig("hf", phase="prefill", path=str(path), batch=1, seq_len=128))
    assert graph.parameter_bytes == 2 * params  # fp16
