"""Pictures of the shipped graph networks (docs/img/topology_graphs.png), drawn from the graph files themselves:
cores (small dots), crossbar switches (squares), links (line width = link width), express links (curved),
HBM attach cores (red). Run: python benchmarks/plot_graphs.py"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from elk_dse.hw.topologies.graph import load_graph  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "topology_graphs.png"
FILES = [("graphs/mesh8x8_edge_hbm.yaml", "mesh64 as a graph file"),
         ("graphs/clusters_mesh.yaml", "clusters on crossbars, clusters on a 4x4 mesh"),
         ("graphs/mesh_express.yaml", "8x8 mesh with express links")]


def layout(g) -> np.ndarray:
    """(x, y) per node: its pos (row, col); a cluster's cores on a small circle around their switch."""
    xy = np.stack([g.pos[:, 1], -g.pos[:, 0]], axis=1) * 3.0
    for switch in range(g.num_cores, len(g.names)):
        members = [i for i in range(g.num_cores) if g.names[i].startswith(g.names[switch] + ".")]
        for k, i in enumerate(members):
            angle = 2 * np.pi * k / len(members) + np.pi / 4
            xy[i] = xy[switch] + 0.9 * np.array([np.cos(angle), np.sin(angle)])
    return xy


def main() -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    for ax, (path, title) in zip(axes, FILES, strict=True):
        g = load_graph(path)
        xy = layout(g)
        done = set()
        for u, v, w in zip(g.src.tolist(), g.dst.tolist(), g.width.tolist(), strict=True):
            if (v, u) in done:
                continue
            done.add((u, v))
            (x0, y0), (x1, y1) = xy[u], xy[v]
            span = np.hypot(x1 - x0, y1 - y0)
            if span > 3.5:  # an express link: draw it as an arc
                mid = (xy[u] + xy[v]) / 2 + np.array([y1 - y0, x0 - x1]) * 0.12
                t = np.linspace(0, 1, 20)[:, None]
                curve = (1 - t) ** 2 * xy[u] + 2 * (1 - t) * t * mid + t**2 * xy[v]
                ax.plot(curve[:, 0], curve[:, 1], color="tab:orange", lw=0.8, alpha=0.7, zorder=1)
            else:
                ax.plot([x0, x1], [y0, y1], color="0.4", lw=0.8 * w, zorder=1)
        cores = np.arange(g.num_cores)
        hbm = np.zeros(g.num_cores, dtype=bool)
        hbm[g.hbm] = True
        ax.scatter(*xy[cores[~hbm]].T, s=18, color="tab:blue", zorder=2, label="core")
        ax.scatter(*xy[cores[hbm]].T, s=30, color="tab:red", zorder=3, label="core with HBM attach")
        if len(g.names) > g.num_cores:
            ax.scatter(*xy[g.num_cores:].T, s=60, marker="s", color="tab:green", zorder=2, label="crossbar")
        ax.set_title(f"{title}\n{path} ({g.num_cores} cores, {g.src.size} directed links)", fontsize=9)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=7, frameon=False)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(OUT)


if __name__ == "__main__":
    main()
