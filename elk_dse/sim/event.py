"""Event-driven simulator: operators as jobs on shared resources, with contention from max-min fair sharing.

Every operator decomposes into stages run in order: warm-up copies -> redistribution/reduction traffic ->
the compute-shift body (compute on each used core, and each core's shifts routed around its ring on the chip
graph; concurrent when the core overlaps compute and communication, else compute then shifts) -> barriers.
An HBM load is one job: each chip's channels deliver its bytes to that chip's destination cores along routes
from the channels' attach cores. Identical steps of an operator are simulated as one stage (the transfer-level
volume per resource is exact; the per-step interleaving is not).

Events are job starts and ends. Between events every active job progresses at a max-min fair rate: each
resource's capacity is shared by the jobs using it in proportion to their demands (progressive filling), so
a load that crosses the links a running operator shifts on slows both. ``mode="aggregated"`` merges
resources whose demand from every active job is identical (symmetric cores and links) before the filling —
an exact reduction, used by default above 1,024 cores.

Timing dependencies are the Program's, through the one timing rule (cost/timeline.py ``TimingRule``, which
the analytic simulator and the compiler use too): loads in its load order, each after the previous load and
its load_after executions; an operator after its own load, the previous operator and its exec_after operators.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from elk_dse.cost.collectives import Collective, collective_cost, collective_schedule, link_table
from elk_dse.cost.network import (
    chip_link_latency_s,
    layer_starts,
    layer_sync_time_s,
    noc_latency_s,
    op_sync_time_s,
    shift_latency_s,
)
from elk_dse.cost.timeline import TimingRule
from elk_dse.errors import ConfigError
from elk_dse.hw.chip import GB, Chip
from elk_dse.hw.patterns import TrafficPatterns
from elk_dse.hw.resources import CLASS_NAMES, Resources
from elk_dse.program import Program, ProgramOp
from elk_dse.sim.base import OpTiming, SimResult, Simulator, register_simulator

EXACT_MAX_CORES = 1024
EVENT_MAX_CORES = 262_144  # 512 x 512: ~1.3 M resources, ~1 GiB at the ~750 B per resource measured at 850k cores
TRACE_MAX_TRACKS = 64  # trace tracks per resource class (cores, links, chip links, HBM channels): more are grouped
# Resource classes: hw/resources.py's, plus the directed chip-to-chip links collectives route over (appended
# by _CollectiveLinks when a Program has collectives).
EVENT_CLASSES = (*CLASS_NAMES, "chip_wire")
CHIP_WIRE = len(CLASS_NAMES)


@dataclass
class Job:
    """Work on resources: ``ids``/``amounts`` (resource units) or a pure ``delay_s``; ``done`` fraction."""

    name: str
    track: str
    ids: np.ndarray
    amounts: np.ndarray
    delay_s: float = 0.0
    tail_s: float = 0.0  # pipeline latency after the last byte moved (hops, chip links)
    progress: float = 0.0
    rate: float = 0.0
    start_s: float = 0.0
    stage: object = None


@dataclass
class OpRun:
    """Stages of one operator's execution, started one after the other."""

    stages: list[list[Job]]
    next_stage: int = 0
    pending: int = 0
    start_s: float = float("nan")
    end_s: float = float("nan")
    parts: dict[str, float] = field(default_factory=lambda: {"compute": 0.0, "noc": 0.0, "sync": 0.0,
                                                             "stream": 0.0})


def _merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    amounts = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    if ids.size == 0:
        return ids, amounts
    uniq, inv = np.unique(ids, return_inverse=True)
    return uniq, np.bincount(inv, weights=amounts)


@register_simulator("event")
class EventSimulator(Simulator):
    """Event-driven simulation with max-min fair sharing of cores, links, chip links and HBM channels."""

    def __init__(self, mode: str = "auto", trace: str | None = None, max_tracks: int = TRACE_MAX_TRACKS):
        if mode not in ("auto", "exact", "aggregated"):
            from elk_dse.errors import ConfigError

            raise ConfigError("sim.mode", mode, "one of auto, exact, aggregated")
        self.mode = mode
        self.trace = trace
        if max_tracks < 1:
            raise ConfigError("sim.max_tracks", max_tracks, "a positive number of trace tracks per resource class")
        self.max_tracks = int(max_tracks)
        self.stats: dict[str, float | str] = {}

    # ---- decomposition ---------------------------------------------------------------------------
    def _exec_stages(self, op: ProgramOp, chip, pat: TrafficPatterns, layer_sync_s: float = 0.0,
                     coll: _CollectiveLinks | None = None) -> list[list[Job]]:
        w = op.work
        cores = op.plan.cores_used
        stages: list[list[Job]] = []
        warm = [(pat.ring(s, n, cores), b) for kind, s, n, b in w.rings if kind == "warm"]
        if warm:
            tail = float(shift_latency_s(chip, w.warm_bytes, w.warm_link_bytes, 1))
            stages.append([Job(f"{op.name}.warm", "noc", *_scale_merge(warm), tail_s=tail)])
        if w.noc_bytes > 0:
            # Redistribution and reductions: evenly spread core-to-core traffic within each chip, plus the
            # bytes the Program says cross chips, spread over the chips' ports.
            parts = [(pat.uniform(cores), w.noc_bytes)]
            if w.chip_link_bytes > 0 and chip.num_chips > 1:
                parts.append((pat.chip_ports(cores), w.chip_link_bytes))
            cross = w.chip_link_bytes > 0 and chip.num_chips > 1
            tail = noc_latency_s(chip) + (chip_link_latency_s(chip) if cross else 0.0)
            stages.append([Job(f"{op.name}.noc", "noc", *_scale_merge(parts), tail_s=tail)])
        compute_s = w.compute_cycles / chip.clock_hz
        shifts = [(pat.ring(s, n, cores), b) for kind, s, n, b in w.rings if kind == "shift"]
        passes = max(int(w.stream_passes), 1)
        if passes > 1:
            # A double-buffered multi-pass plan (cost/op_time.ExecTime.body_s): passes 2..P stream from HBM
            # beside the compute of passes 1..P-1, then the last pass computes.
            if shifts:
                raise ValueError(f"{op.name}: a streamed plan has no compute-shift rings")
            early = Job(f"{op.name}.compute", "compute", np.arange(cores, dtype=np.int64),
                        np.full(cores, compute_s * (passes - 1) / passes))
            stages.append([early, self._hbm_job(op, pat, (passes - 1) / passes, f"{op.name}.stream")])
            compute_s = compute_s / passes
        compute = Job(f"{op.name}.compute", "compute", np.arange(cores, dtype=np.int64), np.full(cores, compute_s))
        body = [compute]
        if shifts:
            tail = float(shift_latency_s(chip, w.shift_bytes, w.shift_link_bytes, w.steps))
            if w.shift_cross_bytes > 0:
                tail += chip_link_latency_s(chip)
            shift = Job(f"{op.name}.shift", "noc", *_scale_merge(shifts), tail_s=tail)
            if w.overlap:
                body.append(shift)
            else:
                stages.append(body)
                body = [shift]
        stages.append(body)
        if w.collectives and coll is not None:
            for c in w.collectives:
                stages.extend(coll.stages(op.name, c))
        sync = float(op_sync_time_s(chip, w.barriers, w.collective_op)) + layer_sync_s  # barriers, dispatch, layer sync
        if sync > 0:
            stages.append([Job(f"{op.name}.sync", "sync", np.zeros(0, np.int64), np.zeros(0), delay_s=sync)])
        return stages

    def _load_job(self, op: ProgramOp, pat: TrafficPatterns) -> Job | None:
        """The load phase: all HBM traffic, or the first pass's share of a streamed plan."""
        w = op.work
        if w.hbm_read_bytes + w.hbm_write_bytes <= 0 and w.hbm_delivered_bytes <= 0:
            return None
        return self._hbm_job(op, pat, 1.0 / max(int(w.stream_passes), 1), f"{op.name}.load")

    @staticmethod
    def _hbm_job(op: ProgramOp, pat: TrafficPatterns, share: float, name: str) -> Job:
        """``share`` of the operator's HBM traffic, through the channels and over the routes to its cores."""
        w = op.work
        hbm = w.hbm_read_bytes + w.hbm_write_bytes
        (lid, lam), (cid, cam) = pat.load(op.plan.cores_used)
        ids, amounts = _merge([(lid, lam * w.hbm_delivered_bytes * share), (cid, cam * hbm * share)])
        return Job(name, "hbm", ids, amounts)

    # ---- engine ----------------------------------------------------------------------------------
    def check(self, chip) -> None:  # type: ignore[no-untyped-def]
        if chip.num_cores > EVENT_MAX_CORES:
            raise ConfigError("sim", "event", f"{chip.num_cores:,} cores; the event simulator holds every core, "
                              f"link and port as a resource (~5 per core on a mesh, ~750 bytes each in its "
                              f"matrices: 3 GiB at 850,000 cores) and takes at most {EVENT_MAX_CORES:,} cores; "
                              "use sim=analytic, whose regular-network figures are closed forms at any scale")
        if chip.hbm is not None and chip.hbm.delivery_gb_s_per_core > 0:
            # The Elk artifact's per-design load delivery rule (conventions=paper, cost/network.py) is an
            # analytic convention; the event simulator routes loads over the links instead, so it would answer
            # a different question under the same name.
            raise ConfigError("sim", "event", "conventions=paper (the Elk artifact's per-design delivery rates, "
                              "hbm.delivery_gb_s_per_core) is defined for the analytic simulator only; use "
                              "sim=analytic")

    def run(self, program: Program) -> SimResult:
        chip = program.chip
        self.check(chip)
        res = Resources(chip)
        pat = TrafficPatterns(res)
        ops = program.ops
        n = len(ops)
        system = program.whole_system
        coll = (_CollectiveLinks(res, system) if system.num_chips > 1 and any(op.work.collectives for op in ops)
                else None)
        mode = self.mode if self.mode != "auto" else ("exact" if chip.num_cores <= EXACT_MAX_CORES else "aggregated")
        rule = TimingRule([op.load_after for op in ops], [op.exec_after for op in ops],
                          list(program.load_order) or None, [op.concurrent for op in ops])
        layer_sync = layer_sync_time_s(chip, layer_starts(ops))
        runs = [OpRun(self._exec_stages(op, chip, pat, float(ls), coll))
                for op, ls in zip(ops, layer_sync, strict=True)]
        loads = [self._load_job(op, pat) for op in ops]
        load_start = np.full(n, np.nan)
        load_end = np.full(n, np.nan)
        busy = np.zeros(res.size)
        groups = _TraceGroups(res, self.max_tracks) if self.trace else None
        util_series: list[tuple[float, np.ndarray, np.ndarray]] = []  # (time, mean, max) per trace group
        trace_events: list[dict] = []
        active: list[Job] = []
        delays: list[tuple[float, int, Job]] = []
        now = 0.0
        events = 0
        seq = 0

        def start_job(job: Job, owner) -> None:
            nonlocal seq
            job.start_s = now
            job.stage = owner
            if job.delay_s > 0:
                seq += 1
                heapq.heappush(delays, (now + job.delay_s, seq, job))
            elif job.amounts.size == 0 or job.amounts.max() <= 0:
                job.progress = 1.0
                finished.append(job)
            else:
                active.append(job)

        def start_stage(i: int) -> None:
            run = runs[i]
            jobs = run.stages[run.next_stage]
            run.pending = len(jobs)
            for job in jobs:
                start_job(job, ("exec", i))

        finished: list[Job] = []
        while not rule.done:
            # Start whatever the dependencies allow.
            progressed = True
            while progressed:
                progressed = False
                ready = rule.ready_load()
                while ready is not None:  # the timing rule (cost/timeline.py): its start time is now
                    j = ready[0]
                    rule.start_load(j)
                    load_start[j] = now
                    job = loads[j]
                    if job is None:
                        load_end[j] = now
                        rule.end_load(j, now, uses_hbm=False)
                    else:
                        start_job(job, ("load", j))
                    progressed = True
                    ready = rule.ready_load()
                ready = rule.ready_exec()
                if ready is not None:
                    i = ready[0]
                    rule.start_exec(i)
                    runs[i].start_s = now
                    start_stage(i)
                    progressed = True
                if finished:
                    self._complete(finished, runs, load_end, rule, now, start_stage, trace_events)
                    progressed = True
            if rule.done:
                break
            # Rates and the next event: the earliest job end or delay end. Advancing by a duration (not to an
            # absolute time) keeps tiny remainders from vanishing in the float sum.
            rates = _fair_rates(active, res, mode)
            remaining = []
            for job, r in zip(active, rates, strict=True):
                job.rate = r
                remaining.append((1.0 - job.progress) / r if r > 0 else np.inf)
            dt = min(remaining, default=np.inf)
            if delays:
                dt = min(dt, max(delays[0][0] - now, 0.0))
            if not np.isfinite(dt):
                stuck = min(rule.next_exec, n - 1)
                raise RuntimeError(f"event simulation stalled at op {stuck} ({ops[stuck].name})")
            if dt > 0 and (active or groups is not None):
                used = np.zeros(res.size)
                for job in active:
                    np.add.at(used, job.ids, job.amounts * job.rate)
                util = used / np.where(res.capacity > 0, res.capacity, 1.0)
                busy += util * dt
                if groups is not None:  # also while only delays run: the counters drop to 0 then
                    util_series.append((now, *groups.utilization(util)))
            now += dt
            events += 1
            still = []
            for job, left in zip(active, remaining, strict=True):
                if left <= dt * (1 + 1e-9):
                    job.progress = 1.0
                    if job.tail_s > 0:
                        seq += 1
                        heapq.heappush(delays, (now + job.tail_s, seq, job))
                        job.tail_s = 0.0
                    else:
                        finished.append(job)
                else:
                    job.progress += job.rate * dt
                    still.append(job)
            active[:] = still
            while delays and delays[0][0] <= now * (1 + 1e-12) + 1e-18:
                _, _, job = heapq.heappop(delays)
                job.progress = 1.0
                finished.append(job)

        latency = float(max((r.end_s for r in runs), default=0.0))
        timings = []
        for i, run in enumerate(runs):
            timings.append(OpTiming(i, float(load_start[i]), float(load_end[i]), float(run.start_s), float(run.end_s),
                                    float(load_end[i] - load_start[i]), run.parts["compute"], run.parts["noc"],
                                    run.parts["sync"], run.parts["stream"]))
        classes = {}
        for k, name in enumerate(EVENT_CLASSES):
            sel = res.kind == k
            if sel.any():
                classes[name] = (float(busy[sel].mean()), float(busy[sel].max()))
        busy_s = {"compute": classes.get("compute", (0, 0))[1], "noc": classes.get("link", (0, 0))[1],
                  "hbm": classes.get("hbm_channel", (0, 0))[1], "sync": float(sum(t.sync_s for t in timings))}
        hbm_sel = res.kind == 3
        self.stats = {"events": events, "resources": res.size, "mode": mode,
                      "hbm_bytes": float(sum(job.amounts[np.isin(job.ids, np.flatnonzero(hbm_sel))].sum()
                                             for job in [*loads, *(j for r in runs for st in r.stages for j in st
                                                                   if j.track == "hbm")] if job is not None)),
                      "compute_core_s": float(sum(j.amounts.sum() for r in runs for st in r.stages for j in st
                                                  if j.track == "compute")),
                      **{f"busy_mean_s.{k}": v[0] for k, v in classes.items()},
                      **{f"busy_max_s.{k}": v[1] for k, v in classes.items()}}
        if self.trace and groups is not None:
            util_series.append((latency, *groups.utilization(np.zeros(res.size))))  # everything idle at the end
            _write_trace(Path(self.trace), program, timings, trace_events, util_series, groups)
        return SimResult(latency, tuple(timings), busy_s)

    @staticmethod
    def _complete(finished, runs, load_end, rule: TimingRule, now, start_stage, trace_events) -> None:
        while finished:
            job = finished.pop()
            kind, i = job.stage
            trace_events.append({"name": job.name, "track": job.track, "start": job.start_s, "end": now, "op": i})
            if kind == "load":
                load_end[i] = now
                rule.end_load(i, now)
                continue
            run = runs[i]
            part = {"compute": "compute", "noc": "noc", "sync": "sync", "hbm": "stream"}.get(job.track, "noc")
            run.parts[part] += now - job.start_s
            run.pending -= 1
            if run.pending == 0:
                run.next_stage += 1
                if run.next_stage < len(run.stages):
                    start_stage(i)
                else:
                    run.end_s = now
                    rule.end_exec(i, now)


class _CollectiveLinks:
    """The system's directed chip-to-chip links as resources (appended to ``res``: each a share of its source
    chip's ``chips.link_gb_s``, cost/collectives.py ``link_table``) and the chips' output/input ports (the
    Program's own when it was compiled for the whole system, so collectives contend with other cross-chip
    traffic). A collective becomes: its startup as a delay, then one stage per phase of its algorithm (the one
    ``collective_cost`` resolves), each with one job per sending chip carrying its flows' bytes over every link
    and port of their routes for all the phase's steps (max-min fair sharing decides when they drain), its tail
    the steps' hop latency over the phase's longest route."""

    def __init__(self, res: Resources, system: Chip):
        self.system = system
        self.topology = topo = system.chip_topology
        self.src_node, self.dst_node, share = link_table(topo)
        nchips = system.num_chips
        bw = system.chips.link_gb_s * GB
        self.wire_base = res.size
        caps, kinds = [share * bw], [np.full(share.size, CHIP_WIRE, dtype=np.int64)]
        if res.num_chips == nchips and res.num_chips > 1:
            self.port_base = res.chip_link_base
        else:  # the Program is one chip's view: the system's ports are not among its resources yet
            self.port_base = res.size + topo.num_directed_links
            caps.append(np.full(2 * nchips, bw))
            kinds.append(np.full(2 * nchips, CLASS_NAMES.index("chip_link"), dtype=np.int64))
        res.capacity = np.concatenate([res.capacity, *caps])
        res.kind = np.concatenate([res.kind, *kinds])
        res.size = res.capacity.size
        self._cache: dict[tuple, list[list[tuple[np.ndarray, np.ndarray, int]]]] = {}

    def _phases(self, c: Collective, algorithm: str) -> list[list[tuple[np.ndarray, np.ndarray, int]]]:
        """Per phase, per sending chip: (resource ids, bytes per byte of bytes_per_chip per step, max hops)."""
        key = (c.kind, c.group, c.replicas, algorithm)
        if key in self._cache:
            return self._cache[key]
        topo = self.topology
        fabric = self.dst_node < 0
        sched, chips = collective_schedule(c, self.system, algorithm)
        g = np.asarray(chips, dtype=np.int64)
        out = []
        for ph in sched:
            src, dst = g[np.asarray(ph.src, dtype=np.int64)], g[np.asarray(ph.dst, dtype=np.int64)]
            jobs = []
            for chip in np.unique(src):
                sel = src == chip
                loads = topo.link_loads(src[sel], dst[sel], ph.fraction)
                used = np.flatnonzero(loads)
                # Ports: a link's source chip's output and its destination chip's input (a port fabric's
                # resources are already the ports).
                wires = used[~fabric[used]]
                ports = np.concatenate([self.port_base + 2 * self.src_node[wires],
                                        self.port_base + 2 * self.dst_node[wires] + 1])
                ids = np.concatenate([self.wire_base + used, ports])
                amounts = np.concatenate([loads[used], loads[wires], loads[wires]])
                ids, amounts = _merge([(ids, amounts)])
                jobs.append((ids, amounts, int(topo.hops(src[sel], dst[sel]).max())))
            out.append(jobs)
        self._cache[key] = out
        return out

    def stages(self, name: str, c: Collective) -> list[list[Job]]:
        cost = collective_cost(c, self.system)
        if cost.steps == 0:
            return []
        stages: list[list[Job]] = []
        if cost.startup_s > 0:
            stages.append([Job(f"{name}.{c.kind}.startup", "noc", np.zeros(0, np.int64), np.zeros(0),
                               delay_s=cost.startup_s)])
        hop_s = self.system.chips.link_latency_ns * 1e-9
        sched, _ = collective_schedule(c, self.system, cost.algorithm)
        for ph, jobs in zip(sched, self._phases(c, cost.algorithm), strict=True):
            # The alpha-beta step (cost/collectives.py): it ends when its transfers have drained and the longest
            # route's hop latency has passed, so every job of the phase waits for the phase's longest route.
            scale = c.bytes_per_chip * ph.steps
            longest = max(hops for _, _, hops in jobs)
            stages.append([Job(f"{name}.{c.kind}", "noc", ids, amounts * scale, tail_s=ph.steps * longest * hop_s)
                           for ids, amounts, _ in jobs])
        return stages


def _scale_merge(parts: list[tuple[tuple[np.ndarray, np.ndarray], float]]) -> tuple[np.ndarray, np.ndarray]:
    return _merge([(ids, amounts * b) for (ids, amounts), b in parts])


def _fair_rates(active: list[Job], res: Resources, mode: str) -> list[float]:
    """Max-min fair progress rates (fraction of the job per second) by progressive filling."""
    if not active:
        return []
    union = np.unique(np.concatenate([j.ids for j in active]))
    D = np.zeros((len(active), union.size))
    for k, job in enumerate(active):
        D[k, np.searchsorted(union, job.ids)] = job.amounts / res.capacity[job.ids]
    if mode == "aggregated" and union.size > 1:
        # Resources with the same demand from every job are one constraint: simulate one per class.
        D = np.unique(D.round(15), axis=1)
    rates = np.zeros(len(active))
    frozen = np.zeros(len(active), dtype=bool)
    residual = np.ones(D.shape[1])
    for _ in range(len(active) + 1):
        live = ~frozen
        if not live.any():
            break
        load = D[live].sum(axis=0)
        pos = load > 0
        if not pos.any():
            break
        t = float((residual[pos] / load[pos]).min())
        rates[live] += t
        residual -= t * load
        saturated = residual <= 1e-12 * np.maximum(load, 1.0)
        frozen |= (D[:, saturated] > 0).any(axis=1)
    return list(rates)


@dataclass(frozen=True)
class TraceGroup:
    """Contiguous resources of one class drawn as one trace track: ids ``first .. last`` (inclusive)."""

    cls: str
    name: str
    first: int
    last: int


class _TraceGroups:
    """Resources grouped for the trace: every resource of a class alone when the class has at most
    ``max_tracks`` of them, else ``max_tracks`` contiguous groups (ids are chip-major, so a group stays within
    a chip when the chips' counts divide evenly). Utilization per group is its mean and its busiest member."""

    def __init__(self, res: Resources, max_tracks: int):
        self.res = res
        groups: list[TraceGroup] = []
        gid = np.full(res.size, -1, dtype=np.int64)
        self._base: dict[str, int] = {}
        for k, cls in enumerate(EVENT_CLASSES):
            ids = np.flatnonzero(res.kind == k)
            if ids.size == 0:
                continue
            self._base[cls] = int(ids[0])
            for chunk in np.array_split(ids, min(max_tracks, ids.size)):
                gid[chunk] = len(groups)
                groups.append(TraceGroup(cls, self._name(cls, int(chunk[0]), int(chunk[-1])),
                                         int(chunk[0]), int(chunk[-1])))
        self.groups = tuple(groups)
        self._gid = gid
        self._sel = gid >= 0
        self._count = np.bincount(gid[self._sel], minlength=len(groups)).astype(np.float64)

    def _name(self, cls: str, first: int, last: int) -> str:
        res = self.res
        if cls == "compute":
            base, per_chip, label = 0, res.cpc, "cores"
        elif cls == "link":
            base, per_chip, label = res.link_base, res.links_per_chip, "links"
        elif cls == "chip_link":
            # (the class's first id: the chips' ports, or the system's appended for a one-chip Program)
            base, per_chip, label = self._base[cls], 2, "chip ports"
        elif cls == "chip_wire":  # directed chip-to-chip links (collectives), numbered by the chips' topology
            a, b = first - self._base[cls], last - self._base[cls]
            return f"chip links {a}" if a == b else f"chip links {a}-{b}"
        else:
            base, per_chip, label = res.hbm_base, res.channels_per_chip, "HBM channels"
        a, b = first - base, last - base
        chip_a, chip_b = a // per_chip, b // per_chip
        if cls == "chip_link":  # two ports per chip (out, in)
            return f"{label} of chips {chip_a}-{chip_b}" if chip_a != chip_b else f"{label} of chip {chip_a}"
        where = f"chip {chip_a} " if res.num_chips > 1 and chip_a == chip_b else ""
        if chip_a != chip_b:  # a group across chips: global ids
            return f"{label} {a}-{b}"
        a, b = a % per_chip, b % per_chip
        w = len(str(per_chip - 1))  # zero-padded so that tracks sorted by name stay in id order
        return f"{where}{label[:-1] if a == b else label} {a:0{w}d}" + ("" if a == b else f"-{b:0{w}d}")

    def utilization(self, util: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, max) utilization (0..1) per group, from the per-resource utilization."""
        g = self._gid[self._sel]
        u = util[self._sel]
        mean = np.bincount(g, weights=u, minlength=len(self.groups)) / self._count
        peak = np.zeros(len(self.groups))
        np.maximum.at(peak, g, u)
        return mean, peak


def _plan_text(plan) -> str:  # type: ignore[no-untyped-def]
    spatial = " x ".join(f"{d}:{n}" for d, n in plan.spatial) or "-"
    text = f"spatial {spatial} on {plan.cores_used} cores, {plan.steps} step(s)"
    if plan.passes:
        text += ", passes " + " x ".join(f"{d}:{n}" for d, n in plan.passes)
    if plan.rotation:
        text += ", rotates " + ", ".join(f"{t}.{d}/{n}" for t, d, n in plan.rotation)
    return text


def _op_args(op: ProgramOp, t: OpTiming) -> dict:
    """What a slice of this operator says when clicked: its work, its bytes per level, its plan and times."""
    w = op.work
    return {"kind": op.kind, "layer": op.layer, "rep": op.repetition, "flops": op.flops,
            "hbm_bytes": w.hbm_read_bytes + w.hbm_write_bytes, "hbm_read_bytes": w.hbm_read_bytes,
            "hbm_write_bytes": w.hbm_write_bytes, "weight_bytes": op.weight_bytes, "kv_cache_bytes": op.kv_cache_bytes,
            "noc_bytes": w.shift_bytes + w.warm_bytes + w.noc_bytes, "shift_bytes": w.shift_bytes,
            "chip_link_bytes": w.chip_link_bytes, "compute_cycles_busiest_core": w.compute_cycles,
            "cores_used": op.plan.cores_used, "plan": _plan_text(op.plan),
            "dims": " ".join(f"{d}={n}" for d, n in op.dims), "load_s": t.load_s, "compute_s": t.compute_s,
            "noc_s": t.noc_s, "sync_s": t.sync_s}


def _write_trace(path: Path, program: Program, timings, events, util_series, groups: _TraceGroups) -> None:
    """Chrome/Perfetto trace-event JSON (docs/event_sim.md "Traces").

    Process 1 "schedule": the operators (args: FLOPs, bytes per level, plan, times) and their stages per
    class (HBM load, compute, noc, sync). Process 2 "cores": one track per core, or per group of contiguous
    cores on big chips (a slice while the group computes; args: how many of its cores). Process 3
    "utilization": one counter track per link, chip port and HBM channel, or per group of them (mean and
    busiest member, 0..1), sampled at every event of the simulation.
    """
    us = 1e6
    ops = program.ops
    out: list[dict] = [{"ph": "M", "pid": 1, "name": "process_name",
                        "args": {"name": f"elk_dse {program.model} {program.phase} on {program.chip.name}: schedule"}}]
    tracks = {"ops": 1, "hbm load": 2, "compute": 3, "noc": 4, "sync": 5}
    for name, tid in tracks.items():
        out.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_name", "args": {"name": name}})
    for op, t in zip(ops, timings, strict=True):
        out.append({"ph": "X", "pid": 1, "tid": 1, "name": op.name, "cat": op.kind, "ts": t.start_s * us,
                    "dur": max(t.end_s - t.start_s, 0) * us, "args": _op_args(op, t)})
    for e in events:
        tid = tracks["hbm load"] if e["track"] == "hbm" else tracks.get(e["track"], 4)
        op = ops[e["op"]]
        args = {"op": op.name, "kind": op.kind}
        if e["track"] == "hbm":
            args["hbm_bytes"] = op.work.hbm_read_bytes + op.work.hbm_write_bytes
        elif e["track"] == "compute":
            args["flops"] = op.flops
        out.append({"ph": "X", "pid": 1, "tid": tid, "name": e["name"], "cat": op.kind, "ts": e["start"] * us,
                    "dur": max(e["end"] - e["start"], 0) * us, "args": args})
    # Core tracks: an operator's compute stage runs on its cores 0 .. cores_used-1.
    out.append({"ph": "M", "pid": 2, "name": "process_name", "args": {"name": "cores"}})
    core_groups = [g for g in groups.groups if g.cls == "compute"]
    for k, g in enumerate(core_groups):
        out.append({"ph": "M", "pid": 2, "tid": 10 + k, "name": "thread_name", "args": {"name": g.name}})
        out.append({"ph": "M", "pid": 2, "tid": 10 + k, "name": "thread_sort_index", "args": {"sort_index": k}})
    for e in events:
        if e["track"] != "compute":
            continue
        op = ops[e["op"]]
        used = op.plan.cores_used
        for k, g in enumerate(core_groups):
            busy = min(g.last + 1, used) - g.first
            if busy <= 0:
                break
            out.append({"ph": "X", "pid": 2, "tid": 10 + k, "name": op.name, "cat": op.kind, "ts": e["start"] * us,
                        "dur": max(e["end"] - e["start"], 0) * us,
                        "args": {"cores_busy": int(busy), "cores_in_track": g.last - g.first + 1,
                                 "flops_per_core": op.flops / max(used, 1)}})
    # Counter tracks: one per link / chip port / HBM channel (or group of them); a value holds until the next.
    out.append({"ph": "M", "pid": 3, "name": "process_name", "args": {"name": "utilization (0..1)"}})
    for k, g in enumerate(groups.groups):
        if g.cls == "compute":
            continue
        single = g.first == g.last
        last = None
        for t, mean, peak in util_series:
            args = {"util": round(float(mean[k]), 6)} if single else {
                "mean": round(float(mean[k]), 6), "max": round(float(peak[k]), 6)}
            if args != last:  # a counter holds its value until the next sample: write changes only
                out.append({"ph": "C", "pid": 3, "name": f"{g.cls}: {g.name}", "ts": t * us, "args": args})
                last = args
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"traceEvents": out, "displayTimeUnit": "ms"}))
