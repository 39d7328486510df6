"""The zoo as data: every ``conf/model/<name>.yaml`` with an ``arch:`` section (Hugging Face config.json fields;
diffusers' for DiT) is a registered model, a decoder LLM or (model_type bert, vit, dit, resnet) an encoder or CNN;
adding one is adding a file. ``model=hf`` imports any decoder's config.json.

The builders merge ``model.arch`` over the base architecture (the zoo file's own section, or the config.json
at ``model.path``) and build the graph with :func:`~elk_dse.models.transformer.decoder_graph`.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Iterable, Mapping
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


def arch_overrides(old_name: str, arch: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields of a composed ``model.arch`` that override zoo model ``old_name``'s own architecture.

    A composed model config carries its file's whole ``arch`` section; when only ``model.name`` is changed (on
    the command line or as a searched parameter) those fields belong to the old model and must not be laid over
    the new one. The builders merge ``model.arch`` over the named model's architecture, so keeping only the
    fields that differ from ``old_name``'s file changes nothing for the old name and keeps the user's own
    overrides for the new one. A name that is not a zoo model (``hf``, ``onnx``) has overrides only: unchanged.
    """
    base = zoo_arches().get(old_name)
    arch = dict(arch or {})
    if base is None:
        return arch
    return {k: v for k, v in arch.items() if k not in base or base[k] != v}


def renamed_model(old: Mapping[str, Any], new: Mapping[str, Any], explicit: Iterable[str] = ()) -> dict[str, Any]:
    """``new`` (a model config dict whose ``name`` may differ from ``old``'s) with its ``arch`` reduced to the
    overrides of ``old``'s zoo architecture when the name changed (see :func:`arch_overrides`); the ``arch``
    fields named in ``explicit`` (set by the user: ``model.arch.<field>=``) are kept whatever their value."""
    out = dict(new)
    old_name, new_name = old.get("name"), new.get("name")
    arch = new.get("arch")
    if isinstance(old_name, str) and old_name != new_name and isinstance(arch, Mapping):
        out["arch"] = {**arch_overrides(old_name, arch), **{k: arch[k] for k in explicit if k in arch}}
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


# Encoder config.json types model=hf reads with the zoo's readers (issue 17, ninth session, 17u): RoBERTa's
# config has BERT's fields (its 514 position rows and 1 token type are read from the file).
HF_ENCODER_TYPES = {"bert": "bert", "roberta": "bert", "vit": "vit"}


def hf_graph(cfg: ModelConfig) -> Graph:
    """The model described by the config.json at ``cfg.path`` (a decoder LLM, or a BERT / RoBERTa / ViT
    encoder), with ``cfg.arch`` overriding its fields."""
    arch = {**read_hf_config(cfg.path), **dict(cfg.arch)}
    encoder = HF_ENCODER_TYPES.get(str(arch.get("model_type")))
    try:
        if encoder is not None:
            if cfg.phase not in ENCODER_PHASES:
                raise ConfigError("model.phase", cfg.phase, f"{' or '.join(ENCODER_PHASES)} for a "
                                  f"{arch['model_type']} encoder (model.phase=prefill); decode needs a decoder LLM")
            return ARCH_BUILDERS[encoder][0]({**arch, "model_type": encoder}, cfg)
        spec = arch_spec(arch, "model.arch")
    except ConfigError as err:
        if not err.field.startswith("model.arch"):
            raise
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
