"""Changing only ``model.name`` (command line or a searched parameter) must build the named model, not the
group file's architecture under another name (a sweep over model.name once evaluated llama2_7b at every point)."""

from __future__ import annotations

from elk_dse.cli import compose_config
from elk_dse.models import ModelConfig, build_model
from elk_dse.schema import build
from elk_dse.search.space import apply_params


def _flops(model: dict) -> float:
    return build_model(build(ModelConfig, model, "model")).flops


def test_cli_model_name_builds_the_named_model() -> None:
    by_group = compose_config(["+chip=mesh64", "model=llama2_13b"])["model"]
    by_name = compose_config(["+chip=mesh64", "model=llama2_7b", "model.name=llama2_13b"])["model"]
    assert by_name["name"] == "llama2_13b"
    assert _flops(by_name) == _flops(by_group)
    assert _flops(by_name) != _flops(compose_config(["+chip=mesh64", "model=llama2_7b"])["model"])


def test_cli_explicit_arch_field_survives_a_rename() -> None:
    # hidden_size 4096 is llama2_7b's own value: given explicitly it must still apply to llama2_13b.
    explicit = compose_config(["+chip=mesh64", "model=llama2_7b", "model.name=llama2_13b",
                               "model.arch.num_hidden_layers=2", "model.arch.vocab_size=32000"])["model"]
    direct = compose_config(["+chip=mesh64", "model=llama2_13b", "model.arch.num_hidden_layers=2"])["model"]
    assert explicit["arch"]["vocab_size"] == 32000 and explicit["arch"]["num_hidden_layers"] == 2
    assert _flops(explicit) == _flops(direct)


def test_searched_model_name_builds_each_model() -> None:
    base = compose_config(["+chip=mesh64", "model=llama2_7b"])
    for name in ("llama2_13b", "opt_30b", "llama2_7b"):
        design = apply_params(base, {"model.name": name})
        direct = compose_config(["+chip=mesh64", f"model={name}"])["model"]
        assert _flops(design["model"]) == _flops(direct), name


def test_searched_model_name_keeps_searched_arch_fields() -> None:
    base = compose_config(["+chip=mesh64", "model=llama2_7b"])
    design = apply_params(base, {"model.name": "llama2_13b", "model.arch.num_hidden_layers": 32})
    # 32 is llama2_7b's own layer count, searched explicitly: llama2_13b with 32 layers, not 40
    direct = compose_config(["+chip=mesh64", "model=llama2_13b", "model.arch.num_hidden_layers=32"])["model"]
    assert _flops(design["model"]) == _flops(direct)


# --- the same for the software stack (issue 17): stack.name chooses the profile, never relabels another ------


def test_cli_stack_name_chooses_the_profile() -> None:
    by_group = compose_config(["+chip=wormhole_n150", "stack=neuron"])["stack"]
    by_name = compose_config(["+chip=wormhole_n150", "stack.name=neuron"])["stack"]
    assert by_name == by_group and by_name["name"] == "neuron"
    shipped = compose_config(["+chip=wormhole_n150"])["stack"]
    assert shipped["name"] == "tt_transformers" and shipped["dispatch_us_per_op"] != by_name["dispatch_us_per_op"]


def test_searched_stack_name_runs_each_profile_with_searched_fields() -> None:
    from elk_dse.hw.stack import load_stack, stack_from_dict

    base = compose_config(["+chip=wormhole_n150"])
    for name in ("neuron", "none", "tt_transformers"):
        design = apply_params(base, {"stack.name": name})
        assert stack_from_dict(design["stack"]) == load_stack(name), name
    design = apply_params(base, {"stack.name": "neuron", "stack.dispatch_us_per_op": 1.5})
    assert design["stack"]["dispatch_us_per_op"] == 1.5
    assert design["stack"]["collective_startup_us"] == load_stack("neuron").collective_startup_us


def test_bad_stack_names_are_one_line_errors() -> None:
    import pytest

    from elk_dse.errors import ConfigError

    base = compose_config(["+chip=wormhole_n150"])
    with pytest.raises(ConfigError, match="params.stack.name"):
        apply_params(base, {"stack.name": "nope"})
    with pytest.raises(ConfigError, match="choose one stack"):
        compose_config(["+chip=wormhole_n150", "stack=neuron", "stack.name=none"])
