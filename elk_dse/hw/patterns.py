"""The traffic patterns of the cost models, as flows (source core, destination core, weight), in one place.

Both simulators route the same patterns: the analytic model reduces a pattern to the busiest link's bytes per
byte sent (:class:`~elk_dse.hw.topology.Topology` ``ring_shift_share``, ``delivery_share``; ``Chip.chip_port_share``),
the event simulator places the pattern's per-resource demand on the shared resources (:class:`TrafficPatterns`,
built on :class:`~elk_dse.hw.resources.Resources`). Each pattern's flows are built by one function here, so the
two cannot drift apart (issue 18: "routed patterns come from hw only").
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from elk_dse.hw.resources import Resources

EXACT_UNIFORM = 256  # chips up to this many cores route redistribution from every other core
UNIFORM_SOURCES = 32  # sampled sources per receiving core for redistribution traffic on bigger chips

Demand = tuple[np.ndarray, np.ndarray]  # (resource ids, bytes per unit of the pattern)


def ring_shift_flows(stride: int, length: int, cores: int, num_cores: int) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of a compute-shift step: cores ``[0, cores)`` each send to their ring neighbour, rings of
    ``length`` cores ``stride`` apart (the last of a ring wraps to its first); ids clipped to ``num_cores``."""
    c = np.arange(cores, dtype=np.int64)
    pos = (c // stride) % length
    nxt = np.where(pos == length - 1, c - stride * (length - 1), c + stride)
    return c, np.clip(nxt, 0, num_cores - 1)


def chip_pair_flows(num_chips: int, cores_per_chip: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(src, dst, weight) of cross-chip traffic spread evenly over every ordered pair of distinct chips (one
    representative core per chip, the chip's first); weights sum to 1."""
    chips = np.arange(num_chips, dtype=np.int64)
    src = np.repeat(chips, num_chips)
    dst = np.tile(chips, num_chips)
    keep = src != dst
    pairs = int(keep.sum())
    return src[keep] * cores_per_chip, dst[keep] * cores_per_chip, (1.0 / pairs if pairs else 0.0)


def uniform_flows(cores: int, cores_per_chip: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(src, dst, weight) of redistribution traffic to cores ``[0, cores)``: every receiving core gets equal
    shares from the other cores of its own chip - all of them on chips of up to EXACT_UNIFORM cores, else
    UNIFORM_SOURCES deterministic samples. Weights sum to 1 (the Program's noc bytes exclude the local share)."""
    others = cores_per_chip - 1
    if others < 1 or cores < 1:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0.0
    k_count = others if cores_per_chip <= EXACT_UNIFORM else UNIFORM_SOURCES
    dst = np.repeat(np.arange(cores, dtype=np.int64), k_count)
    k = np.tile(np.arange(k_count, dtype=np.int64), cores)
    offset = 1 + (k if k_count == others else (dst * 7919 + (k + 1) * 104729) % others)
    src = (dst // cores_per_chip) * cores_per_chip + (dst % cores_per_chip + offset) % cores_per_chip
    return src, dst, 1.0 / (cores * k_count)


def delivery_flows(attach: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of an HBM delivery: every channel's attach core (repeats count) sends equally to every
    destination core."""
    attach = np.asarray(attach, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    return np.repeat(attach, dst.size), np.tile(dst, attach.size)


class TrafficPatterns:
    """The patterns' per-resource demand on a system's :class:`Resources`, per byte (cached by their shape):
    what the event simulator's jobs place on cores, links, chip ports and HBM channels."""

    def __init__(self, res: Resources):
        self.res = res
        self._ring = lru_cache(maxsize=4096)(self._ring_pattern)
        self._uniform = lru_cache(maxsize=1024)(self._uniform_pattern)
        self._load = lru_cache(maxsize=1024)(self._load_pattern)
        self._chip_ports: Demand | None = None

    def ring(self, stride: int, length: int, cores: int) -> Demand:
        """Per byte each core shifts (ring_shift_flows)."""
        return self._ring(stride, length, cores)

    def _ring_pattern(self, stride: int, length: int, cores: int) -> Demand:
        src, dst = ring_shift_flows(stride, length, cores, self.res.num_cores)
        return self.res.demand(src, dst, 1.0)

    def uniform(self, cores: int) -> Demand:
        """Per byte of redistribution traffic (uniform_flows)."""
        return self._uniform(cores)

    def _uniform_pattern(self, cores: int) -> Demand:
        src, dst, weight = uniform_flows(cores, self.res.cpc)
        if src.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return self.res.demand(src, dst, weight)

    def chip_ports(self, cores: int) -> Demand:
        """Per byte crossing chips: spread evenly over the chips' output and input ports (chip_pair_flows)."""
        if self._chip_ports is None:
            src, dst, weight = chip_pair_flows(self.res.num_chips, self.res.cpc)
            self._chip_ports = self.res.demand(src, dst, weight)
        return self._chip_ports

    def load(self, cores: int) -> tuple[Demand, Demand]:
        """Per delivered byte: links from each chip's channels to that chip's destination cores
        (delivery_flows); and per HBM byte: the channels."""
        return self._load(cores)

    def _load_pattern(self, cores: int) -> tuple[Demand, Demand]:
        res = self.res
        ch = res.channels_per_chip
        dst_all = np.arange(cores, dtype=np.int64)
        chips_used = sorted({int(c) for c in np.unique(dst_all // res.cpc)})
        chan = np.concatenate([res.hbm_base + c * ch + np.arange(ch) for c in chips_used])
        hbm = res.chip.hbm
        if hbm is None:  # a load job is built only for a program that reads HBM
            raise ValueError("an HBM load on a chip without HBM")
        channels = (chan, np.full(chan.size, 1.0 / chan.size))
        if hbm.attach == "all":
            # Every core has its own HBM port: data crosses only the links the topology says a core's own
            # port uses (all_to_all: the destination's ejection port; none on a mesh).
            local = res.topology.local_port_links(dst_all % res.cpc)
            if local.size:
                port = res.link_base + (dst_all // res.cpc) * res.links_per_chip + local
                return (port, np.full(port.size, 1.0 / port.size)), channels
            return (np.zeros(0, dtype=np.int64), np.zeros(0)), channels
        srcs, dsts = [], []
        for chip in range(res.num_chips):
            dst = dst_all[dst_all // res.cpc == chip]
            if dst.size == 0:
                continue
            s, d = delivery_flows(chip * res.cpc + res.channel_attach, dst)
            srcs.append(s)
            dsts.append(d)
        src = np.concatenate(srcs)
        dst = np.concatenate(dsts)
        return res.demand(src, dst, 1.0 / src.size), channels
