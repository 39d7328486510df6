"""The zoo as data: every ``conf/model/<name>.yaml`` with an ``arch:`` section (Hugging Face config.json fields;
diffusers' for DiT) is a registered model, a decoder LLM or (model_type bert, vit, dit, resnet) an encoder or CNN;
adding one is adding a file. ``model=hf`` imports any decoder's config.json.

The builders merge ``model.arch`` over the base architecture (the zoo file's own section, or the config.json
at ``model.path``) and build the graph with :func:`~elk_dse.models.transformer.decoder_graph`.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from elk_dse.errors import ConfigError
from elk_dse.ir.graph import Graph
from elk_dse.models.config import ModelConfig
from elk_dse.models.encoders import ENCODER_TYPES
from elk_dse.models.hf import arch_spec, read_hf_config
from elk_dse.models.ops import Builder
from elk_dse.models.resnet import CNN_TYPES
from elk_dse.models.transformer import decoder_graph

# libyaml's safe loader when built (8x faster on the zoo's files: 5.6 vs 43 ms for all of them), else PyYAML's.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DECODER_PHASES = ("decode", "prefill", "train")
ENCODER_PHASES = ("prefill", "train")


@functools.cache
def zoo_arches() -> dict[str, dict[str, Any]]:
    """name -> the ``arch`` mapping of each shipped model file that has one (read once)."""
    root = importlib.resources.files("elk_dse.conf") / "model"
    out: dict[str, dict[str, Any]] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.load(entry.read_text(), Loader=_LOADER) or {}
        arch = data.get("arch") if isinstance(data, dict) else None
        if isinstance(arch, Mapping) and arch.get("model_type"):  # hf.yaml's arch only overrides a file
            out[entry.name[: -len(".yaml")]] = dict(arch)
    return out


# Non-decoder architectures (model_type -> (graph builder, description)): encoders and CNNs, prefill and train.
ARCH_BUILDERS: dict[str, tuple[Callable[[Mapping[str, Any], ModelConfig], Graph], str]] = {
    **ENCODER_TYPES, **CNN_TYPES}


def zoo_graph(name: str, cfg: ModelConfig) -> Graph:
    """The zoo model ``name`` with ``cfg.arch`` over its shipped architecture."""
    arch = {**zoo_arches()[name], **dict(cfg.arch)}
    model_type = arch.get("model_type")
    if model_type in ARCH_BUILDERS and zoo_arches()[name].get("model_type") in ARCH_BUILDERS:
        return ARCH_BUILDERS[model_type][0](arch, cfg)
    if zoo_arches()[name].get("model_type") in ARCH_BUILDERS:  # an encoder / CNN cannot become a decoder
        raise ConfigError("model.arch.model_type", model_type, "one of " + ", ".join(sorted(ARCH_BUILDERS))
                          + f" for {name} (a {zoo_arches()[name]['model_type']} model)")
    return decoder_graph(arch_spec(arch, "model.arch"), cfg)


def hf_graph(cfg: ModelConfig) -> Graph:
    """The decoder described by the config.json at ``cfg.path``, with ``cfg.arch`` overriding its fields."""
    arch = {**read_hf_config(cfg.path), **dict(cfg.arch)}
    try:
        spec = arch_spec(arch, "model.arch")
    except ConfigError as err:
        raise ConfigError(err.field, err.value, f"{err.allowed} (read from {cfg.path} or set as {err.field}=)") \
            from None
    return decoder_graph(spec, cfg)


def zoo_builders() -> dict[str, Builder]:
    """A Builder per zoo decoder file, and ``hf``."""
    out = {}
    for name, arch in zoo_arches().items():
        kind = ARCH_BUILDERS.get(arch["model_type"])
        phases, description = (ENCODER_PHASES, kind[1]) if kind else (DECODER_PHASES, "decoder-only LLM")
        out[name] = Builder(functools.partial(zoo_graph, name), phases, description, True)
    out["hf"] = Builder(hf_graph, DECODER_PHASES, "a decoder LLM from a Hugging Face config.json (model.path)",
                        True)
    return out
