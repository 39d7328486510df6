"""Transfer-time formulas: on-chip network, chip-to-chip links, HBM. The one place these costs live.

Both the compiler (to choose plans) and the simulators (to time a Program) call these; arguments may be numpy
arrays (one entry per candidate plan). Traffic is modelled as spread evenly over the cores it touches, which
the event-driven simulator (issue 5) replaces with routed transfers.
"""

from __future__ import annotations

import numpy as np

from elk_dse.hw.chip import Chip
from elk_dse.hw.resources import routed, routing_key


def directed_links(chip: Chip) -> float:
    """Directed on-chip link channels of one chip, in reference links (core ports on a port fabric such as
    all_to_all; links of their own bandwidth on a graph count by their capacity)."""
    return chip.directed_link_capacity


def noc_bytes_per_s(chip: Chip) -> float:
    """Aggregate on-chip network bandwidth of the whole system, bytes/s (the network roof)."""
    return directed_links(chip) * chip.link_bytes_per_s * chip.num_chips


def core_ports(chip: Chip) -> float:
    """Network ports (reference links' worth) through which one core can send (and receive) at the same time."""
    return chip.topology.core_ports()


def noc_time_s(chip: Chip, total_bytes, max_core_bytes, cross_chip_bytes=0.0):
    """Seconds to move core-to-core traffic: ``total_bytes`` spread over the cores of all chips, no core
    sending or receiving more than ``max_core_bytes``, of which ``cross_chip_bytes`` cross chip boundaries.

    The slowest of: link capacity (every byte crosses ``mean_hops`` links), the bisection (half of uniform
    traffic crosses it), the busiest core's ports, and the chip-to-chip links; plus the network diameter's
    hop latency once.
    """
    total = np.asarray(total_bytes, dtype=np.float64)
    per_chip = total / chip.num_chips
    link_bw = chip.link_bytes_per_s
    links = directed_links(chip)
    t_links = per_chip * max(chip.mean_hops, 1.0) / (links * link_bw) if links else 0.0 * total
    # Half of evenly spread traffic crosses the bisection, half of that in each direction.
    t_bisection = (per_chip / 4.0) / chip.bisection_bytes_per_s if chip.cores_per_chip > 1 else 0.0 * total
    t_ports = np.asarray(max_core_bytes, dtype=np.float64) / (core_ports(chip) * link_bw)
    t = np.maximum(np.maximum(t_links, t_bisection), t_ports)
    if chip.num_chips > 1:
        t = np.maximum(t, chip_link_time_s(chip, cross_chip_bytes))
    return np.where(total > 0, t + noc_latency_s(chip), 0.0)


def noc_latency_s(chip: Chip) -> float:
    """Pipeline latency of one spread-out transfer phase: the network diameter's hops."""
    return chip.topology.diameter_latency_cycles(chip.interconnect.hop_latency_cycles) / chip.clock_hz


def chip_link_latency_s(chip: Chip) -> float:
    """Latency of one chip-to-chip transfer."""
    return chip.chips.link_latency_ns * 1e-9


def chip_link_time_s(chip: Chip, cross_chip_bytes):
    """Seconds for traffic crossing chip boundaries, spread evenly over all pairs of chips: the busiest chip
    port's share of it (``Chip.chip_port_share``: mean chip distance / chips on a ring, torus or all_to_all;
    from the routes on a mesh, whose middle chips carry through-traffic) at ``chips.link_gb_s``.
    """
    cross = np.asarray(cross_chip_bytes, dtype=np.float64)
    if chip.num_chips < 2:
        return 0.0 * cross
    t = cross * chip.chip_port_share / chip.chip_link_bytes_per_s
    return np.where(cross > 0, t + chip_link_latency_s(chip), 0.0)


def remote_fraction(chip: Chip) -> float:
    """Share of receivers for which data laid out evenly over the cores is not already local."""
    return 1.0 - 1.0 / chip.num_cores


def cross_chip_fraction(chip: Chip) -> float:
    """Share of evenly spread all-core traffic whose destination is on another chip."""
    return (chip.num_chips - 1) / chip.num_chips


def hbm_time_s(chip: Chip, hbm_bytes, delivered_bytes):
    """Seconds to move ``hbm_bytes`` across the HBM interface and deliver ``delivered_bytes`` (with on-chip
    multicast copies) from the HBM attach cores to their destination cores.

    The slowest of: HBM bandwidth, injection of every delivered copy at the channels' attach cores, link capacity
    over the mean distance from the nearest attach core, and ejection at the receiving cores' ports. Raises ValueError if bytes must move on a
    chip without HBM (the compiler must not produce that).
    """
    hbm = np.asarray(hbm_bytes, dtype=np.float64)
    delivered = np.asarray(delivered_bytes, dtype=np.float64)
    if chip.hbm is None:
        if np.any(hbm > 0):
            raise ValueError(f"chip {chip.name} has no HBM but {float(np.max(hbm))} bytes must cross it")
        return 0.0 * hbm
    t_hbm = hbm / chip.hbm_achievable_bytes_per_s  # the achievable fraction of the peak (hbm.efficiency)
    if chip.hbm.delivery_gb_s_per_core:  # the Elk artifact's rule (conventions=paper): DNNProgram.py:637-644
        return np.maximum(t_hbm, _artifact_delivery_s(chip.num_cores, chip.hbm.delivery_gb_s_per_core, delivered)
                          / chip.hbm.delivery_share)
    if _hbm_is_local(chip):
        return t_hbm  # every core reads through its own HBM port: nothing crosses the network
    t_inject = delivered / chip.hbm_injection_bytes_per_s  # every delivered copy leaves an attach core
    link_capacity = directed_links(chip) * chip.link_bytes_per_s * chip.num_chips
    t_links = delivered * chip.mean_hbm_hops / link_capacity if chip.mean_hbm_hops else 0.0 * delivered
    t_eject = delivered / (chip.num_cores * core_ports(chip) * chip.link_bytes_per_s)
    t_cut = _cut_time_s(chip, delivered)
    return np.maximum(np.maximum(np.maximum(t_hbm, t_inject), np.maximum(t_links, t_eject)), t_cut)


def _cut_time_s(chip: Chip, delivered):
    """Data for cores without an HBM port crosses the links around the attach cores; and the busiest link of
    the routed delivery pattern (hw.chip.hbm_delivery_link_share) carries its share of every byte."""
    cut = chip.hbm_cut_bytes_per_s
    t_cut = delivered * chip.hbm_interior_fraction / cut if cut else 0.0 * delivered
    share = chip.hbm_delivery_link_share / chip.num_chips
    return np.maximum(t_cut, delivered * share / chip.link_bytes_per_s)


def _artifact_delivery_s(num_cores: int, gb_s_per_core: float, delivered):
    """The Elk artifact's on-chip delivery time of a load (conventions=paper only): bytes per receiving core
    over ``hbm.delivery_gb_s_per_core``. Its ``noc_time = hbm_time x broadcast_ratio / noc_hbm_bw_ratio`` with
    ``noc_hbm_bw_ratio = GBPS_PER_CORE x cores / hbm_GBps`` (platformxlab/elk@8c6e814 DNNProgram.py:617-644)
    is cold bytes per core / GBPS_PER_CORE; its load takes max(hbm_time, noc_time / threshold)."""
    return delivered / num_cores / (gb_s_per_core * 1e9)


def _hbm_is_local(chip: Chip) -> bool:
    """HBM attached at every core of a network whose cores' own ports bypass it (mesh/torus/ring): data needs
    no network hop to reach its core. (On all_to_all the exchange port stays the way in, as on the IPU.)"""
    return chip.hbm is not None and chip.hbm.attach == "all" and chip.topology.io_bypasses_network


def hbm_network_time_s(chip: Chip, delivered_bytes):
    """The on-chip part of an HBM load: seconds the network needs to carry ``delivered_bytes`` from the HBM
    attach cores to their destinations (link capacity over the mean distance, and the receivers' ports).
    This is the traffic that competes with a running operator's own network use."""
    delivered = np.asarray(delivered_bytes, dtype=np.float64)
    if chip.hbm is not None and chip.hbm.delivery_gb_s_per_core:  # the artifact's NoC time (no share)
        return _artifact_delivery_s(chip.num_cores, chip.hbm.delivery_gb_s_per_core, delivered)
    if chip.hbm is None or _hbm_is_local(chip):
        return 0.0 * delivered
    link_capacity = directed_links(chip) * chip.link_bytes_per_s * chip.num_chips
    t_links = delivered * chip.mean_hbm_hops / link_capacity if chip.mean_hbm_hops else 0.0 * delivered
    t_eject = delivered / (chip.num_cores * core_ports(chip) * chip.link_bytes_per_s)
    return np.maximum(np.maximum(t_links, t_eject), _cut_time_s(chip, delivered))


def barrier_time_s(chip: Chip, barriers):
    """Seconds spent in ``barriers`` chip-wide synchronizations (plus one chip-link latency per barrier
    on multi-chip systems)."""
    b = np.asarray(barriers, dtype=np.float64)
    per = chip.interconnect.barrier_cycles / chip.clock_hz
    if chip.num_chips > 1:
        per += chip.chips.link_latency_ns * 1e-9
    return b * per


def op_sync_time_s(chip: Chip, barriers, collective_op=False):
    """Fixed seconds of one operator instance: its ``barriers`` synchronizations plus its dispatch (launch)
    cost ``chip.overheads.dispatch_us_per_op``. ``collective_op`` (bools like ``barriers``): the operation runs
    only chip-to-chip collectives (OpWork.collective_op); it pays ``overheads.ccl_dispatch_s`` instead (issue
    17c, sixth session: the stack's ``ccl_dispatch_us_per_op``, else the same dispatch)."""
    o = chip.overheads
    dispatch = o.dispatch_s if o.ccl_dispatch_us_per_op is None else np.where(collective_op, o.ccl_dispatch_s,
                                                                               o.dispatch_s)
    return barrier_time_s(chip, barriers) + dispatch


def layer_starts(ops) -> np.ndarray:
    """Bools, one per operator instance (anything with ``layer`` and ``repetition``, in execution order):
    whether it is the first operator of a layer instance."""
    keys = [(op.layer, op.repetition) for op in ops]
    return np.array([i == 0 or keys[i] != keys[i - 1] for i in range(len(keys))], dtype=bool)


def layer_sync_time_s(chip: Chip, starts_layer):
    """Seconds of the synchronization between repeated layers (``chip.overheads.sync_us_per_layer``) paid by
    the operators that start a layer instance (``starts_layer``: bools, one per operator instance)."""
    return np.asarray(starts_layer, dtype=np.float64) * chip.overheads.layer_sync_s


def ring_hops(chip: Chip, stride: int, length: int) -> tuple[float, float]:
    """(mean hops per shift, share of shifts that cross chips) for a rotation ring of ``length`` cores whose
    members are ``stride`` apart in the system's core numbering (core id = chip * cores_per_chip + local id).

    Computed on the real topology from the ring's edges, closing edge included.
    """
    key = (*routing_key(chip), "ring_hops", int(stride), int(length))
    return routed(key, lambda: _ring_hops(chip.topology, chip.cores_per_chip, chip.num_chips, int(stride),
                                          int(length)))


def _ring_hops(topology, cores_per_chip: int, num_chips: int, stride: int, length: int) -> tuple[float, float]:
    if length < 2:
        return 0.0, 0.0
    members = (np.arange(length, dtype=np.int64) * stride) % (cores_per_chip * num_chips)
    nxt = np.roll(members, -1)
    chip_a, chip_b = members // cores_per_chip, nxt // cores_per_chip
    local_a, local_b = members % cores_per_chip, nxt % cores_per_chip
    hops = topology.hops(local_a, local_b).astype(np.float64)
    crossing = chip_a != chip_b
    # A shift to another chip leaves through the chip's link port: count one on-chip hop to reach it.
    hops = np.where(crossing, np.maximum(hops, 1.0), hops)
    return float(hops.mean()), float(crossing.mean())


def ring_link_share(chip: Chip, stride: int, length: int, cores: int) -> float:
    """Bytes on the busiest on-chip link per byte each core sends, when cores [0, cores) all shift to their
    ring neighbour (rings of ``length`` cores ``stride`` apart), routed on the chip graph."""
    key = (*routing_key(chip), "ring_share", int(stride), int(length), int(cores))
    return routed(key, lambda: _ring_link_share(chip, int(stride), int(length), int(cores)))


def _ring_link_share(chip: Chip, stride: int, length: int, cores: int) -> float:
    if length < 2 or cores < 2:
        return 0.0
    c = np.arange(cores, dtype=np.int64)
    pos = (c // stride) % length
    nxt = np.clip(np.where(pos == length - 1, c - stride * (length - 1), c + stride), 0, chip.num_cores - 1)
    if chip.num_chips == 1:  # one network: the topology's own pattern (no sparse per-resource demand)
        return chip.topology.ring_shift_share(stride, length, cores)
    res = chip.resources
    ids, amounts = res.demand(c, nxt, 1.0)
    return res.busiest_link_share(ids, amounts)


def shift_time_s(chip: Chip, shift_bytes, shift_core_bytes, shift_link_bytes, shift_cross_bytes, steps,
                 shift_maxlink_bytes=0.0):
    """Seconds spent rotating tensor pieces around their rings (compute-shift plans).

    The slowest of: the busiest core's outgoing link (each core sends each piece to one ring neighbour),
    the links' capacity (bytes x hops over all directed links), the busiest link of the routed rings
    (``shift_maxlink_bytes``, from ring_link_share) and the chip-to-chip links; plus the hop latency of every
    step's transfer.
    """
    total = np.asarray(shift_bytes, dtype=np.float64)
    link_bw = chip.link_bytes_per_s
    t_port = np.asarray(shift_core_bytes, dtype=np.float64) / link_bw
    links = directed_links(chip) * chip.num_chips
    t_links = np.asarray(shift_link_bytes, dtype=np.float64) / (links * link_bw) if links else 0.0 * total
    t = np.maximum(np.maximum(t_port, t_links), np.asarray(shift_maxlink_bytes, dtype=np.float64) / link_bw)
    if chip.num_chips > 1:
        t = np.maximum(t, chip_link_time_s(chip, shift_cross_bytes))
    return np.where(total > 0, t + shift_latency_s(chip, shift_bytes, shift_link_bytes, steps), 0.0)


def shift_latency_s(chip: Chip, shift_bytes, shift_link_bytes, steps):
    """Hop latency paid once per compute-shift step, over the rings' mean hop count."""
    total = np.asarray(shift_bytes, dtype=np.float64)
    mean_hops = np.divide(np.asarray(shift_link_bytes, dtype=np.float64), total,
                          out=np.zeros_like(total), where=total > 0)
    return np.asarray(steps) * np.maximum(mean_hops, 1.0) * chip.interconnect.hop_latency_cycles / chip.clock_hz
