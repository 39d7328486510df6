"""parallelism=auto's operator floors on a view of several chips come from plan tables without routes (issue 17a).

Routing every ring over the whole system was most of a cold ``auto``'s excess on the Galaxy, spent only to rule
all_core out. The floors now use the same plans costed without the routed busiest-link term: for every
operator of a model on every small system here, the floor is never above the routed one (so it is still a floor
of the compiled time; tests/test_parallel_auto.py checks bounds against compiled latencies), the fixed charge
and the smallest plan's memory are the routed ones, and the routed plan tables the compiler reads are not
touched by the unrouted ones.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_parallel_auto import _model, _system

from elk_dse.compiler import t10
from elk_dse.compiler.compile import _op_choices
from elk_dse.compiler.parallel import ParallelPlan, Workload
from elk_dse.compiler.parallel.auto import _unrouted_floor_s, candidates, op_floor_s
from elk_dse.cost.network import op_sync_time_s
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import build_model


def _routed_floor_s(op, chip, rotation):
    c = _op_choices(op, chip, rotation, {"hits": 0, "computed": 0})
    fastest = min(min(c.exec_s, default=np.inf), min(c.ideal_exec_s, default=np.inf))
    fixed = np.inf
    for w in (c.work, c.ideal_work):
        cs = np.asarray(w.compute_cycles, dtype=np.float64) / chip.clock_hz
        fixed = min(fixed, float(np.min(cs + op_sync_time_s(chip, w.barriers))))
    return fastest, fixed, max(c.mem[0], c.ideal_mem[0])


@pytest.mark.parametrize("chips,topology,link_gb_s,arch", [(4, "mesh", 5.0, "decoder"), (4, "ring", 50.0, "moe"),
                                                            (2, "ring", 5.0, "encoder")])
def test_unrouted_floor_is_at_most_the_routed_one(chips, topology, link_gb_s, arch):
    model = _model(arch, 4)
    work = Workload(build_model(model), lambda b: build_model(replace(model, batch=b)))
    system = chip_from_dict(_system(chips, topology, 1024, 16, link_gb_s, 2.0, "auto"))
    views = [p.view for _, name, p in candidates(work, system) if isinstance(p, ParallelPlan) and name == "all_core"]
    assert views and views[0].num_chips == chips  # the all_core candidate plans on the whole system
    view = views[0]
    ops = {op.signature: op for _, _, op in work.graph.instances()}
    for op in ops.values():
        for rotation in (True, False):
            fast_u, fixed_u, small_u = _unrouted_floor_s(op, view, rotation)
            fast_r, fixed_r, small_r = _routed_floor_s(op, view, rotation)
            assert fast_u <= fast_r * (1 + 1e-12), (op.name, fast_u, fast_r)
            assert fixed_u == pytest.approx(fixed_r, rel=1e-12) and small_u == small_r
            assert op_floor_s(op, view, rotation) == (fast_u, fixed_u, small_u)  # auto reads the unrouted one
            routed = t10.plan_table(op, view, rotation)  # the compiler's table keeps its routed term
            rebuilt = t10.build_table(op, view, rotation)
            np.testing.assert_array_equal(routed.shift_maxlink_bytes, rebuilt.shift_maxlink_bytes)
            unrouted = t10.plan_table(op, view, rotation, routed=False)
            assert not unrouted.shift_maxlink_bytes.any() and not unrouted.warm_maxlink_bytes.any()
            np.testing.assert_array_equal(unrouted.mem_bytes, routed.mem_bytes)  # the same plans
    assert ops


def test_a_single_chip_view_keeps_the_compilers_choices():
    """On one chip's view (tp, pp, tp2d) the floors are the compiler's cached choices, which its compile reuses."""
    model = _model("decoder", 4)
    work = Workload(build_model(model), lambda b: build_model(replace(model, batch=b)))
    system = chip_from_dict(_system(4, "mesh", 1024, 16, 5.0, 2.0, "auto"))
    plan = next(p for _, name, p in candidates(work, system) if name == "tp" and isinstance(p, ParallelPlan))
    assert plan.view.num_chips == 1
    op = next(op for _, _, op in plan.stages[0].graph.instances())
    assert op_floor_s(op, plan.view, True) == pytest.approx(_routed_floor_s(op, plan.view, True), rel=1e-12)
