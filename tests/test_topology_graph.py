"""topology: graph (elk_dse/hw/topologies/graph.py): a graph file reproduces mesh64 exactly; clusters, express
links, asymmetric and directed links route as described; shipped examples evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.errors import ConfigError
from elk_dse.evaluate import DesignPoint, evaluate
from elk_dse.hw.chip import chip_from_dict
from elk_dse.hw.topology import make_topology
from elk_dse.models import ModelConfig
from elk_dse.sim import SimConfig
from elk_dse.testing.topology import check_topology

CONF = Path(__file__).resolve().parents[1] / "conf" / "chip"


def shipped(name: str):
    return chip_from_dict(yaml.safe_load((CONF / f"{name}.yaml").read_text()))


@pytest.mark.parametrize("sim", ["analytic", "event"])
def test_mesh64_as_a_graph_file_reproduces_mesh64_exactly(sim):
    model = ModelConfig("llama2_7b", batch=2, kv_len=256)
    ref, graph = shipped("mesh64"), shipped("mesh64_graph")
    a = evaluate(DesignPoint(ref, model, SchedulerConfig(), SimConfig(sim)), include_ops=False)
    b = evaluate(DesignPoint(graph, model, SchedulerConfig(), SimConfig(sim)), include_ops=False)
    assert a["feasible"] and b["feasible"]
    assert b["latency_s"] == a["latency_s"]  # exactly: same routes, same figures
    for key in ("noc_busy_s", "hbm_busy_s", "compute_busy_s", "sync_busy_s"):
        assert b[key] == a[key], key


def test_mesh64_graph_figures_and_routes_equal_the_mesh():
    ref, graph = shipped("mesh64"), shipped("mesh64_graph")
    for attr in ("mean_hops", "mean_hbm_hops", "bisection_bytes_per_s", "hbm_cut_bytes_per_s",
                 "hbm_injection_bytes_per_s", "hbm_delivery_link_share", "directed_link_capacity"):
        assert getattr(graph, attr) == getattr(ref, attr), attr
    assert graph.topology.diameter == ref.topology.diameter
    assert np.array_equal(graph.hbm_channel_attach, ref.hbm_channel_attach)
    # Node-by-node, every route of every pair is the mesh's dimension-ordered route.
    c = np.arange(64)
    s, d = (x.ravel() for x in np.meshgrid(c, c, indexing="ij"))
    def hops(topo):
        t, a, b = topo.node_hops(s, d)
        order = np.lexsort((a, t))  # a canonical order: each flow's hops sorted by the node they leave
        return np.stack([t[order], a[order], b[order]])

    got, want = hops(graph.topology), hops(ref.topology)
    assert got.shape == want.shape and np.array_equal(got, want)


def test_clusters_express_links_and_latency():
    clusters = make_topology("graph", (64,), path="graphs/clusters_mesh.yaml")
    assert clusters.num_cores == 64 and clusters.num_nodes == 80  # 16 crossbar switches
    assert clusters.hops(np.array([0]), np.array([3]))[0] == 2  # core -> crossbar -> core
    assert clusters.hops(np.array([0]), np.array([4]))[0] == 3  # next cluster: + one mesh hop
    # Crossbar links are 1 cycle, mesh links default to the interconnect's hop latency (here 5).
    assert clusters.diameter_latency_cycles(5.0) == 1 + 6 * 5 + 1
    express = make_topology("graph", (64,), path="graphs/mesh_express.yaml")
    assert express.hops(np.array([0]), np.array([4]))[0] == 1  # c0_0 -> c0_4 over the express link
    assert express.mean_hops() < make_topology("mesh", (8, 8)).mean_hops()


def write(tmp_path, doc) -> str:
    p = tmp_path / "g.yaml"
    p.write_text(yaml.safe_dump(doc))
    return str(p)


def test_asymmetric_and_directed_links(tmp_path):
    # A ring of 3 one way (width 2) plus a slow way back on one link.
    path = write(tmp_path, {"nodes": ["a", "b", "c"], "links": [
        {"a": "a", "b": "b", "directed": True, "width": 2}, {"a": "b", "b": "c", "directed": True, "width": 2},
        {"a": "c", "b": "a", "width": 2, "reverse_width": 0.5}], "hbm": ["a"]})
    topo = make_topology("graph", (3,), path=path)
    assert topo.num_directed_links == 4
    assert topo.hops(np.array([0, 1, 0]), np.array([1, 0, 2]))[:].tolist() == [1, 2, 1]  # b->a goes b->c->a
    loads = topo.link_loads(np.array([1]), np.array([0]))
    assert loads.sum() == 2
    # The slow way back (a -> c, width 0.5) carries a -> c: its share counts double per byte.
    assert topo.busiest_link_share(np.array([0]), np.array([2])) == pytest.approx(2.0)
    assert topo.directed_link_capacity() == pytest.approx(6.5)


def test_tie_break_follows_file_order(tmp_path):
    # A square: a-b-d and a-c-d are both shortest; listing a-c first sends a -> d through c.
    links = [["a", "c"], ["a", "b"], ["b", "d"], ["c", "d"]]
    path = write(tmp_path, {"nodes": ["a", "b", "c", "d"], "links": links})
    t, frm, to = make_topology("graph", (4,), path=path).node_hops(np.array([0]), np.array([3]))
    assert frm.tolist() == [0, 2] and to.tolist() == [2, 3]


def test_graph_file_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="disconnected"):
        make_topology("graph", (4,), path=write(tmp_path, {"nodes": ["a", "b", "c", "d"],
                                                            "links": [["a", "b"], ["c", "d"]]}))
    with pytest.raises(ConfigError, match="defined twice"):
        make_topology("graph", (2,), path=write(tmp_path, {"nodes": ["a", "a"], "links": [["a", "a"]]}))


@pytest.mark.parametrize("name", ["cluster_mesh64", "express_mesh64"])
def test_shipped_examples_evaluate(name):
    chip = shipped(name)
    model = ModelConfig("llama2_7b", batch=2, kv_len=256)
    a = evaluate(DesignPoint(chip, model, SchedulerConfig()), include_ops=False)
    assert a["feasible"] and a["latency_s"] >= a["roofline_latency_s"]


@st.composite
def random_graph(draw):
    """A random connected graph file: a bidirectional spanning tree (so every node reaches every other) plus
    extra links, some one-way, some asymmetric, with random widths; optional switches."""
    cores = draw(st.integers(2, 10))
    switches = draw(st.integers(0, 2))
    names = [f"c{i}" for i in range(cores)] + [f"s{i}" for i in range(switches)]
    order = draw(st.permutations(names))
    links, seen = [], set()
    for i in range(1, len(order)):
        a, b = order[draw(st.integers(0, i - 1))], order[i]
        links.append({"a": a, "b": b, "width": draw(st.sampled_from([0.5, 1, 2]))})
        seen |= {(a, b), (b, a)}
    for _ in range(draw(st.integers(0, 6))):
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        directed = draw(st.booleans())
        if a == b or (a, b) in seen or (not directed and (b, a) in seen):  # a two-way link covers both
            continue
        link = {"a": a, "b": b, "width": draw(st.sampled_from([0.5, 1, 3]))}
        if directed:
            link["directed"] = True
            seen.add((a, b))
        else:
            link["reverse_width"] = draw(st.sampled_from([0.25, 1, 2]))
            seen |= {(a, b), (b, a)}
        links.append(link)
    nodes = [{"name": n} for n in names[:cores]] + [{"name": n, "kind": "switch"} for n in names[cores:]]
    return {"nodes": nodes, "links": links, "hbm": [names[0]]}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=random_graph())
def test_random_graph_files_pass_the_conformance_suite(tmp_path, doc):
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(doc))
    topo = make_topology("graph", (len([n for n in doc["nodes"] if "kind" not in n]),), path=str(path))
    check_topology(topo)


@pytest.mark.slow
def test_graph_networks_sweep_and_report(tmp_path, capsys):
    """sweeps/graph_networks.yaml on cluster_mesh64: every shipped graph file is evaluated, rows are feasible,
    and the report is built."""
    import pandas as pd

    from elk_dse.cli import main

    out = tmp_path / "s"
    assert main(["sweep", "+chip=cluster_mesh64", "sweep=graph_networks", f"out={out}", "search.n_trials=12",
                 "search.batch_size=12", "search.workers=0", "progress=false"]) == 0
    rows = pd.read_parquet(out / "results.parquet")
    graphs = set(rows["param.chip.interconnect.graph"])
    assert graphs == {"graphs/clusters_mesh.yaml", "graphs/mesh_express.yaml", "graphs/mesh8x8_edge_hbm.yaml"}
    assert rows["metric.latency_s"].notna().all()
    assert (out / "report" / "report.html").exists()
