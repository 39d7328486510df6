"""Strict conversion of plain mappings (parsed YAML / OmegaConf containers) into frozen dataclasses.

Every user-written config passes through :func:`build`: unknown keys are rejected with the nearest valid
key, types are checked, and each dataclass validates its own ranges in ``__post_init__`` by raising
:class:`~elk_dse.errors.ConfigError` with the dotted field name. Nothing here executes code from a config.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

from elk_dse.errors import ConfigError, UnknownKeyError

T = TypeVar("T")


MAX_INT = 2**53  # integers beyond this are not exactly representable as floats


def build(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data`` (a mapping), validating keys and types.

    ``path`` is the dotted prefix used in error messages (e.g. ``"chip"``).
    Raises ConfigError / UnknownKeyError naming the offending field.
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(path or cls.__name__, data, f"expected a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")  # what dataclasses.fields raises
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise UnknownKeyError(_join(path, str(key)), fields)
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        full = _join(path, name)
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], full)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(full, None, "this field is required")
    # Range checks in __post_init__ use bare field names; prefix them with our path.
    try:
        return cls(**kwargs)
    except ConfigError as err:
        if path and not err.field.startswith(path + "."):
            raise ConfigError(_join(path, err.field), err.value, err.allowed) from None
        raise


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _convert(tp: Any, value: Any, field: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            if type(None) in get_args(tp):
                return None
            raise ConfigError(field, value, "a value is required")
        if len(args) == 1:
            return _convert(args[0], value, field)
        errors = []
        for arg in args:
            try:
                return _convert(arg, value, field)
            except ConfigError as err:
                errors.append(err.allowed)
        raise ConfigError(field, value, " or ".join(errors))
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(field, value, "one of " + ", ".join(repr(c) for c in choices))
        return value
    if origin is tuple:
        item_types = get_args(tp)
        if isinstance(value, str | bytes) or not isinstance(value, typing.Sequence | list | tuple):
            if not hasattr(value, "__iter__") or isinstance(value, str | bytes | Mapping):
                raise ConfigError(field, value, "expected a list")
        items = list(value)
        if len(item_types) == 2 and item_types[1] is Ellipsis:
            return tuple(_convert(item_types[0], v, f"{field}[{i}]") for i, v in enumerate(items))
        if len(items) != len(item_types):
            raise ConfigError(field, value, f"expected a list of {len(item_types)} items")
        return tuple(_convert(a, v, f"{field}[{i}]")
                     for i, (a, v) in enumerate(zip(item_types, items, strict=True)))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a hint is a class, never an instance
        return build(tp, value, field)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(field, value, "expected true or false")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_INT:
                return int(value)
            raise ConfigError(field, value, "expected an integer")
        if abs(value) > MAX_INT:
            raise ConfigError(field, value, "expected an integer of magnitude <= 2^53")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(field, value, "expected a number")
        if not math.isfinite(value):  # NaN and infinity pass every ``>`` check the wrong way
            raise ConfigError(field, value, "expected a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(field, value, "expected a string")
        return value
    if tp is Any:
        return value
    raise TypeError(f"schema type {tp!r} of {field} is not supported")  # a bug in our schema, not user input


def positive(field: str, value: float, unit: str = "") -> None:
    """Raise ConfigError unless ``value`` > 0."""
    if not value > 0:
        raise ConfigError(field, value, f"must be > 0{(' ' + unit) if unit else ''}")


def at_least(field: str, value: float, low: float, unit: str = "") -> None:
    """Raise ConfigError unless ``value`` >= ``low``."""
    if not value >= low:
        raise ConfigError(field, value, f"must be >= {low}{(' ' + unit) if unit else ''}")


def at_most(field: str, value: float, high: float, unit: str = "") -> None:
    """Raise ConfigError unless ``value`` <= ``high`` (physical upper limits keep absurd values out of the
    cost models, where they would overflow instead of giving an answer)."""
    if not value <= high:
        raise ConfigError(field, value, f"must be <= {high:g}{(' ' + unit) if unit else ''}")


def in_range(field: str, value: float, low: float, high: float) -> None:
    """Raise ConfigError unless low <= value <= high."""
    if not low <= value <= high:
        raise ConfigError(field, value, f"must be in [{low}, {high}]")


def _walk(cls: type, parts: list[str]) -> Any:
    """The type the dotted path ``parts`` names inside dataclass ``cls`` (None when it names no field)."""
    tp: Any = cls
    for part in parts:
        owner = _dataclass_of(tp)
        if owner is None or part not in {f.name for f in dataclasses.fields(owner) if f.init}:
            return None
        tp = typing.get_type_hints(owner)[part]
    return tp


def _dataclass_of(tp: Any) -> Any:
    args = [a for a in get_args(tp) if a is not type(None)] if get_origin(tp) in (typing.Union, types.UnionType) else [tp]
    return next((a for a in args if dataclasses.is_dataclass(a)), None)


def schema_field_exists(cls: type, parts: list[str]) -> bool:
    """Whether the dotted path ``parts`` names a field of dataclass ``cls`` (whatever its section's defaults)."""
    return bool(parts) and _walk(cls, parts) is not None


def schema_has_key(cls: type, parts: list[str]) -> bool:
    """Whether the dotted path ``parts`` names a field of dataclass ``cls`` inside sections whose every field
    has a default (like ``energy``): a config may set it even where a YAML file leaves that section out. A
    key in a section with required fields (``hbm``) needs the section in the YAML."""
    if not parts or _walk(cls, parts) is None:
        return False
    for i in range(1, len(parts)):
        owner = _dataclass_of(_walk(cls, parts[:i]))
        if owner is None or any(f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                                for f in dataclasses.fields(owner)):
            return False
    return True


def schema_section(cls: type, parts: list[str]) -> list[str] | None:
    """The field names of the nested dataclass section ``parts`` of ``cls`` (None if it is not a section)."""
    tp = _walk(cls, parts) if parts else None
    owner = _dataclass_of(tp) if tp is not None else None
    return [f.name for f in dataclasses.fields(owner) if f.init] if owner is not None else None
