"""Explicit registries for extension points (topologies, core models, simulators, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol, TypeVar


class _Named(Protocol):
    """A registrable class: it has a ``name`` class attribute, which registration sets."""

    name: ClassVar[str]


T = TypeVar("T", bound="type[_Named]")


def registrar(registry: dict[str, T]) -> Callable[[str], Callable[[T], T]]:
    """A class decorator factory: ``@register("name")`` stores the class in ``registry`` and sets its ``name``."""

    def register(name: str) -> Callable[[T], T]:
        def deco(cls: T) -> T:
            cls.name = name
            registry[name] = cls
            return cls

        return deco

    return register
