"""The decoder zoo as data: every ``conf/model/<name>.yaml`` with an ``arch:`` section (Hugging Face config.json
fields) is a registered decoder LLM; adding one is adding a file. ``model=hf`` imports any config.json.

The builders merge ``model.arch`` over the base architecture (the zoo file's own section, or the config.json
at ``model.path``) and build the graph with :func:`~elk_dse.models.transformer.decoder_graph`.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping
from typing import Any

import yaml

from elk_dse.errors import ConfigError
from elk_dse.ir.graph import Graph
from elk_dse.models.config import ModelConfig
from elk_dse.models.hf import arch_spec, read_hf_config
from elk_dse.models.ops import Builder
from elk_dse.models.transformer import decoder_graph

DECODER_PHASES = ("decode", "prefill", "train")


@functools.cache
def zoo_arches() -> dict[str, dict[str, Any]]:
    """name -> the ``arch`` mapping of each shipped model file that has one (read once)."""
    root = importlib.resources.files("elk_dse.conf") / "model"
    out: dict[str, dict[str, Any]] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.safe_load(entry.read_text()) or {}
        arch = data.get("arch") if isinstance(data, dict) else None
        if isinstance(arch, Mapping) and arch.get("model_type"):  # hf.yaml's arch only overrides a file
            out[entry.name[: -len(".yaml")]] = dict(arch)
    return out


def zoo_graph(name: str, cfg: ModelConfig) -> Graph:
    """The zoo decoder ``name`` with ``cfg.arch`` over its shipped architecture."""
    arch = {**zoo_arches()[name], **dict(cfg.arch)}
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
    out = {name: Builder(functools.partial(zoo_graph, name), DECODER_PHASES, "decoder-only LLM", True)
           for name in zoo_arches()}
    out["hf"] = Builder(hf_graph, DECODER_PHASES, "a decoder LLM from a Hugging Face config.json (model.path)",
                        True)
    return out
