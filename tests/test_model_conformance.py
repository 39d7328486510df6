"""The conformance suite of the Hugging Face model_type registry (elk_dse.testing.models) on every registered
type, and evidence that the suite can fail."""

from __future__ import annotations

import pytest

from elk_dse.models import hf
from elk_dse.models.hf import HF_TYPES, register_hf_type
from elk_dse.models.transformer import TransformerSpec
from elk_dse.testing import models as suite


@pytest.mark.parametrize("model_type", sorted(HF_TYPES))
def test_registered_type_conforms(model_type):
    suite.check_hf_type(model_type)


def test_a_new_type_is_one_registration_and_a_broken_one_fails(monkeypatch):
    monkeypatch.setattr(hf, "HF_TYPES", dict(HF_TYPES))
    monkeypatch.setattr(suite, "HF_TYPES", hf.HF_TYPES)

    @register_hf_type("tiny_llama", dict(HF_TYPES["llama"].example))
    def tiny_llama(a):
        return hf.llama(a)

    assert "tiny_llama" not in HF_TYPES and "tiny_llama" in hf.HF_TYPES
    suite.check_hf_type("tiny_llama")

    @register_hf_type("ignores_layers", dict(HF_TYPES["llama"].example))
    def ignores_layers(a):  # a parser that reads a size but then hard-codes the layer count
        spec = hf.llama(a)
        return TransformerSpec(**{**spec.__dict__, "num_layers": 2})

    with pytest.raises(AssertionError, match="do not grow with layers"):
        suite.check_layer_scaling("ignores_layers")

    @register_hf_type("crashes", dict(HF_TYPES["llama"].example))
    def crashes(a):  # reads a field with [] instead of the checked accessor
        return hf.llama(a) if a.data["hidden_size"] else None

    with pytest.raises(KeyError):
        suite.check_missing_fields("crashes")
