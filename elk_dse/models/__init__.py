"""Workload models: a registry from the names users type (``model.name=llama2_13b``) to graph builders.

``build_model(cfg)`` turns a :class:`ModelConfig` into an :class:`elk_dse.ir.graph.Graph` whose layers make
repetition explicit (embedding, one decoder/encoder Layer with ``repeat = num_layers``, head).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elk_dse.errors import ConfigError, nearest
from elk_dse.ir.graph import Graph
from elk_dse.models.config import DTYPE_BYTES, PHASES, ModelConfig, model_config_from_dict
from elk_dse.models.onnx_import import ONNX_MODELS
from elk_dse.models.ops import Builder
from elk_dse.models.training import training_graph
from elk_dse.models.zoo import zoo_builders

__all__ = [
    "DTYPE_BYTES",
    "MODELS",
    "PHASES",
    "Builder",
    "ModelConfig",
    "build_model",
    "model_builder",
    "model_config_from_dict",
    "model_names",
]

MODELS: dict[str, Builder] = {**zoo_builders(), **ONNX_MODELS}


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS)


def model_builder(cfg: ModelConfig) -> Builder:
    """The registered builder of ``cfg.name``, after the checks that need no graph: ConfigError naming
    ``model.name`` (unknown), ``model.phase`` (a phase the model lacks) or ``model.arch`` (a model without
    architecture fields). A sweep runs them on every choice before any trial."""
    builder = MODELS.get(cfg.name)
    if builder is None:
        allowed = "one of " + ", ".join(model_names()) + nearest(cfg.name, MODELS)
        raise ConfigError("model.name", cfg.name, allowed)
    if cfg.phase not in builder.phases:
        raise ConfigError("model.phase", cfg.phase, f"{cfg.name} supports only " + ", ".join(builder.phases))
    if cfg.arch and not builder.takes_arch:
        raise ConfigError("model.arch", dict(cfg.arch), f"{cfg.name} has no architecture fields (decoder LLMs only)")
    return builder


def build_model(cfg: ModelConfig | Mapping[str, Any]) -> Graph:
    """The workload graph of ``cfg`` (a ModelConfig, or a mapping of its fields).

    Raises ConfigError naming ``model.name`` for an unknown model and ``model.phase`` for a phase the model
    does not have (encoders and CNNs have no decode).
    """
    if not isinstance(cfg, ModelConfig):
        cfg = model_config_from_dict(cfg)
    builder = model_builder(cfg)
    if cfg.phase == "train":
        return training_graph(builder(cfg), cfg)
    return builder(cfg)
