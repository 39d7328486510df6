"""The shared resources of a chip for the event simulator, and the demand transfers place on them.

Resource ids: every core's compute (capacity 1 s of work per second), every directed on-chip link of every
chip (the topology's link ids, offset per chip; core ports on a port fabric like all_to_all), every chip's
chip-to-chip output and input port, and every HBM channel. Routing belongs to the topologies
(hw/topology.py): on chip the chip's topology routes; a transfer between chips leaves through its chip's
output port and enters the next chip's input port along the route of the chips' own topology.
"""

from __future__ import annotations

import numpy as np

from elk_dse.hw.chip import GB, Chip

COMPUTE, LINK, CHIP_LINK, HBM = 0, 1, 2, 3

_ROUTED: dict[tuple, object] = {}


def routing_key(chip: Chip) -> tuple:
    """What routes depend on: the graphs and the chips' arrangement, not any bandwidth or latency."""
    return (chip.topology.key, chip.cores_per_chip, chip.num_chips, chip.chip_topology.key)


def routed(key: tuple, compute):
    """A figure derived from routes, cached by ``key`` (which must start with routing_key(chip)), so that
    design points that change only bandwidths, clocks or sizes reuse it."""
    value = _ROUTED.get(key)
    if value is None:
        if len(_ROUTED) > 65536:
            _ROUTED.clear()
        value = _ROUTED[key] = compute()
    return value


CLASS_NAMES = ("compute", "link", "chip_link", "hbm_channel")


class Resources:
    """Index space and capacities (per second: seconds of work for compute, bytes otherwise)."""

    def __init__(self, chip: Chip):
        self.chip = chip
        self.topology = chip.topology
        self.num_cores = chip.num_cores
        self.cpc = chip.cores_per_chip
        self.num_chips = chip.num_chips
        caps, kinds = [np.ones(self.num_cores)], [np.full(self.num_cores, COMPUTE)]
        self.link_base = self.num_cores
        self.links_per_chip = self.topology.num_directed_links
        link_caps = self.topology.link_capacity() * chip.link_bytes_per_s
        caps.append(np.tile(link_caps, self.num_chips))
        kinds.append(np.full(self.links_per_chip * self.num_chips, LINK))
        self.chip_link_base = self.link_base + self.links_per_chip * self.num_chips
        n_chip_ports = 2 * self.num_chips if self.num_chips > 1 else 0
        caps.append(np.full(n_chip_ports, chip.chips.link_gb_s * GB))
        kinds.append(np.full(n_chip_ports, CHIP_LINK))
        self.hbm_base = self.chip_link_base + n_chip_ports
        self.channels_per_chip = chip.hbm.channels if chip.hbm else 0
        n_channels = self.channels_per_chip * self.num_chips
        if chip.hbm:
            # per chip, as the analytic model: Chip.hbm_achievable_bytes_per_s (issue 17e: with a per-core DMA limit)
            caps.append(np.full(n_channels, chip.hbm_achievable_bytes_per_s / chip.num_chips / chip.hbm.channels))
            kinds.append(np.full(n_channels, HBM))
        self.capacity = np.concatenate(caps).astype(np.float64)
        self.kind = np.concatenate(kinds).astype(np.int64)
        self.size = len(self.capacity)

    @property
    def channel_attach(self) -> np.ndarray:
        """Local core id where each channel of a chip enters the network (the chip description's placement)."""
        return self.chip.hbm_channel_attach

    def route(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(transfer index, resource id) for every resource each transfer src -> dst (system core ids) uses,
        hop by hop (for tests and small transfer sets; :meth:`demand` sums loads without listing hops)."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        idx = np.arange(src.size)
        out_t: list[np.ndarray] = []
        out_r: list[np.ndarray] = []
        chip_s, chip_d = src // self.cpc, dst // self.cpc
        cross = chip_s != chip_d
        if cross.any():
            self._chip_route(idx[cross], chip_s[cross], chip_d[cross], out_t, out_r)
        same = ~cross & (src != dst)
        if same.any():
            t, r = self.topology.route(src[same] % self.cpc, dst[same] % self.cpc)
            out_t.append(idx[same][t])
            out_r.append(self.link_base + chip_s[same][t] * self.links_per_chip + r)
        if not out_t:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(out_t), np.concatenate(out_r)

    def _chip_route(self, t, src_chip, dst_chip, out_t: list, out_r: list) -> None:
        """Append to out_t / out_r the (transfer, chip port) pairs of the chip-to-chip legs of transfers ``t``:
        every hop of the chips' route leaves through ``here``'s output port and enters ``there``'s input port."""
        k, here, there = self.chip.chip_topology.node_hops(src_chip, dst_chip)
        out_t.extend([t[k], t[k]])
        out_r.extend([self.chip_link_base + 2 * here, self.chip_link_base + 2 * there + 1])

    def busiest_link_share(self, ids: np.ndarray, amounts: np.ndarray) -> float:
        """Largest on-chip link load of a sparse demand, in bytes per reference-link byte (links of their own
        bandwidth count by their capacity relative to ``interconnect.link_bytes_per_cycle``)."""
        links = (ids >= self.link_base) & (ids < self.chip_link_base)
        if not links.any():
            return 0.0
        rel = self.capacity[ids[links]] / self.chip.link_bytes_per_s
        return float((amounts[links] / rel).max())

    def demand(self, src, dst, nbytes) -> tuple[np.ndarray, np.ndarray]:
        """Sparse per-resource bytes of transfers src -> dst of ``nbytes`` each: (resource ids, bytes).

        On-chip legs are summed by the topology's vectorized ``link_loads`` (no per-hop listing)."""
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        scalar = np.ndim(nbytes) == 0
        nb = None if scalar else np.broadcast_to(np.asarray(nbytes, dtype=np.float64).ravel(), src.shape)
        parts_ids, parts_amounts = [], []
        chip_s, chip_d = src // self.cpc, dst // self.cpc
        cross = chip_s != chip_d
        if cross.any():
            t_out: list = []
            r_out: list = []
            idx = np.flatnonzero(cross)
            self._chip_route(idx, chip_s[cross], chip_d[cross], t_out, r_out)
            t, r = np.concatenate(t_out), np.concatenate(r_out)
            w = np.full(t.size, float(nbytes)) if nb is None else nb[t]
            amounts = np.bincount(r - self.chip_link_base, weights=w, minlength=2 * self.num_chips)
            ids = np.flatnonzero(amounts)
            parts_ids.append(self.chip_link_base + ids)
            parts_amounts.append(amounts[ids])
        same = ~cross & (src != dst)
        if same.any():
            for c in np.unique(chip_s[same]):
                sel = same & (chip_s == c)
                loads = self.topology.link_loads(src[sel] % self.cpc, dst[sel] % self.cpc,
                                                 float(nbytes) if nb is None else nb[sel])
                ids = np.flatnonzero(loads)
                parts_ids.append(self.link_base + int(c) * self.links_per_chip + ids)
                parts_amounts.append(loads[ids])
        if not parts_ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        ids = np.concatenate(parts_ids)
        order = np.argsort(ids, kind="stable")
        return ids[order], np.concatenate(parts_amounts)[order]
