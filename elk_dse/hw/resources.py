"""The shared resources of a chip for the event simulator, and routes over them.

Resource ids: every core's compute (capacity 1 s of work per second), every directed on-chip link (mesh, torus,
ring) or every core's injection and ejection port (all_to_all), every chip's chip-to-chip output and input
port, and every HBM channel. Routes: dimension-ordered on mesh and torus (torus: the shorter way round each
axis), around the ring, two ports on all_to_all; a transfer between chips leaves through its chip's output
port and enters through the destination chip's input port.
"""

from __future__ import annotations

import numpy as np

from elk_dse.hw.chip import GB, Chip

COMPUTE, LINK, CHIP_LINK, HBM = 0, 1, 2, 3

_ROUTED: dict[tuple, object] = {}


def routing_key(chip: Chip) -> tuple:
    """What routes depend on: the graph and the chips' arrangement, not any bandwidth or latency."""
    return (chip.interconnect.topology, chip.grid, chip.cores_per_chip, chip.num_chips, chip.chips.topology,
            chip.chips.grid)


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
        self.num_cores = chip.num_cores
        self.cpc = chip.cores_per_chip
        self.num_chips = chip.num_chips
        self.all_to_all = chip.interconnect.topology == "all_to_all"
        grid = chip.grid if chip.interconnect.topology != "ring" else (chip.cores_per_chip,)
        self.grid = tuple(grid)
        self.wraps = chip.interconnect.topology in ("torus", "ring")
        caps, kinds = [np.ones(self.num_cores)], [np.full(self.num_cores, COMPUTE)]
        self.link_base = self.num_cores
        if self.all_to_all:
            # Per chip: injection ports [0, cpc), ejection ports [cpc, 2 cpc).
            self.links_per_chip = 2 * self.cpc
            self.link_id = None
        else:
            ids = np.arange(self.cpc).reshape(self.grid)
            link_id = np.full((self.cpc, len(self.grid), 2), -1, dtype=np.int64)
            count = 0
            for axis, size in enumerate(self.grid):
                for direction, step in enumerate((1, -1)):
                    src = np.moveaxis(ids, axis, 0)
                    if self.wraps and size > 2:
                        dst = np.roll(src, -step, axis=0)
                        valid = np.ones_like(src, dtype=bool)
                    elif size > 1:
                        dst = np.roll(src, -step, axis=0)
                        valid = np.zeros_like(src, dtype=bool)
                        if step == 1:
                            valid[:-1] = True
                        else:
                            valid[1:] = True
                    else:
                        continue
                    s = src[valid]
                    link_id[s, axis, direction] = count + np.arange(s.size)
                    count += s.size
                    del dst
            self.link_id = link_id
            self.links_per_chip = count
        caps.append(np.full(self.links_per_chip * self.num_chips, chip.link_bytes_per_s))
        kinds.append(np.full(self.links_per_chip * self.num_chips, LINK))
        self.chip_link_base = self.link_base + self.links_per_chip * self.num_chips
        n_chip_ports = 2 * self.num_chips if self.num_chips > 1 else 0
        caps.append(np.full(n_chip_ports, chip.chips.link_gb_s * GB))
        kinds.append(np.full(n_chip_ports, CHIP_LINK))
        self.hbm_base = self.chip_link_base + n_chip_ports
        self.channels_per_chip = chip.hbm.channels if chip.hbm else 0
        n_channels = self.channels_per_chip * self.num_chips
        if chip.hbm:
            caps.append(np.full(n_channels, chip.hbm.bandwidth_gb_s * GB * chip.hbm.efficiency / chip.hbm.channels))
            kinds.append(np.full(n_channels, HBM))
        self.capacity = np.concatenate(caps).astype(np.float64)
        self.kind = np.concatenate(kinds).astype(np.int64)
        self.size = len(self.capacity)

    @property
    def channel_attach(self) -> np.ndarray:
        """Local core id where each channel of a chip enters the network (the chip description's placement)."""
        return self.chip.hbm_channel_attach

    def route(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(transfer index, resource id) for every resource each transfer src -> dst (system core ids) uses."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        idx = np.arange(src.size)
        out_t, out_r = [], []
        chip_s, chip_d = src // self.cpc, dst // self.cpc
        local_s, local_d = src % self.cpc, dst % self.cpc
        cross = chip_s != chip_d
        if cross.any():
            # Chip to chip: out of each chip and into the next along the path: one hop between all_to_all
            # chips; dimension-ordered over the chips' grid otherwise (a ring is a 1-D torus), the shorter way
            # round each wrapping axis (ties go forward).
            t = idx[cross]
            self._chip_route(t, chip_s[cross], chip_d[cross], out_t, out_r)
        same = ~cross & (src != dst)
        if self.all_to_all:
            t = idx[same]
            base = self.link_base + chip_s[same] * self.links_per_chip
            out_t += [t, t]
            out_r += [base + local_s[same], base + self.cpc + local_d[same]]
        else:
            t = idx[same]
            cur = np.stack(np.unravel_index(local_s[same], self.grid), axis=1)
            goal = np.stack(np.unravel_index(local_d[same], self.grid), axis=1)
            base = self.link_base + chip_s[same] * self.links_per_chip
            for axis, size in enumerate(self.grid):
                delta = goal[:, axis] - cur[:, axis]
                if self.wraps and size > 2:
                    delta = np.where(delta > size // 2, delta - size, delta)
                    delta = np.where(delta < -(size // 2), delta + size, delta)
                steps = np.abs(delta)
                direction = np.where(delta >= 0, 0, 1)
                step = np.where(delta >= 0, 1, -1)
                for k in range(int(steps.max()) if steps.size else 0):
                    moving = steps > k
                    node = np.ravel_multi_index(tuple(cur[moving].T), self.grid)
                    lid = self.link_id[node, axis, direction[moving]]
                    out_t.append(t[moving])
                    out_r.append(base[moving] + lid)
                    cur[moving, axis] = (cur[moving, axis] + step[moving]) % size
        if not out_t:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(out_t), np.concatenate(out_r)

    def _chip_route(self, t, src_chip, dst_chip, out_t: list, out_r: list) -> None:
        """Append to out_t / out_r the (transfer, chip port) pairs of the chip-to-chip legs of transfers ``t``."""

        def hop(moving, here, there):
            out_t.extend([t[moving], t[moving]])
            out_r.extend([self.chip_link_base + 2 * here, self.chip_link_base + 2 * there + 1])

        if self.chip.chips.topology == "all_to_all":
            hop(np.ones(t.size, dtype=bool), src_chip, dst_chip)
            return
        topo = self.chip.chip_topology
        grid, wraps = topo.grid, topo.wraps  # ring and torus wrap (hw/topology.py)
        cur = np.stack(np.unravel_index(src_chip, grid), axis=1)
        goal = np.stack(np.unravel_index(dst_chip, grid), axis=1)
        for axis, size in enumerate(grid):
            if wraps:
                fwd = (goal[:, axis] - cur[:, axis]) % size
                step = np.where(fwd <= size - fwd, 1, -1)
                hops = np.minimum(fwd, size - fwd)
            else:
                delta = goal[:, axis] - cur[:, axis]
                step, hops = np.where(delta >= 0, 1, -1), np.abs(delta)
            for k in range(int(hops.max()) if hops.size else 0):
                moving = hops > k
                here = np.ravel_multi_index(tuple(cur[moving].T), grid)
                cur[moving, axis] = (cur[moving, axis] + step[moving]) % size
                hop(moving, here, np.ravel_multi_index(tuple(cur[moving].T), grid))

    def demand(self, src, dst, nbytes) -> tuple[np.ndarray, np.ndarray]:
        """Sparse per-resource bytes of transfers src -> dst of ``nbytes`` each: (resource ids, bytes)."""
        nbytes = np.broadcast_to(np.asarray(nbytes, dtype=np.float64), np.shape(src))
        t, r = self.route(src, dst)
        if r.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        amounts = np.bincount(r, weights=nbytes[t], minlength=self.size)
        ids = np.flatnonzero(amounts)
        return ids, amounts[ids]
