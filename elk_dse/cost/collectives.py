"""Placeholder for issue 17d's collectives module (the agreed interface's record only); replaced by 17d's file
when branch issue17d is merged."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Collective:
    kind: str
    bytes_per_chip: float
    group: tuple[int, ...]
    algorithm: str = "auto"
