"""Draw a pipeline as a layered DAG with fresh/stale colours."""

from __future__ import annotations

import networkx as nx

COLORS = {"fresh": "#8fd18f", "stale": "#f5b76b"}


def layered_positions(g: nx.DiGraph) -> dict:
    """x = depth in the DAG, y spread within each depth (no graphviz needed)."""
    depth = {}
    for n in nx.topological_sort(g):
        depth[n] = max((depth[p] + 1 for p in g.predecessors(n)), default=0)
    layers: dict[int, list] = {}
    for n, d in depth.items():
        layers.setdefault(d, []).append(n)
    pos = {}
    for d, nodes in layers.items():
        for i, n in enumerate(sorted(nodes, key=lambda n: g.nodes[n]["name"])):
            pos[n] = (d, -(i - (len(nodes) - 1) / 2))
    return pos


def draw_plan(pipeline, states: dict, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = pipeline.graph
    by_fp = {st.node.fingerprint: st for st in states.values()}
    pos = layered_positions(g)
    width = max(6, 2.6 * (max(x for x, _ in pos.values()) + 1))
    height = max(3, 1.2 * max(sum(1 for p in pos.values() if p[0] == x) for x, _ in pos.values()))
    fig, ax = plt.subplots(figsize=(width, height))
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=14, node_size=3000,
                           edge_color="#777")
    colors = [COLORS[by_fp[n].status] for n in g.nodes]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colors, node_size=3000, node_shape="s")
    labels = {n: f"{g.nodes[n]['name']}\n{g.nodes[n]['kind']}" for n in g.nodes}
    nx.draw_networkx_labels(g, pos, labels, ax=ax, font_size=8)
    ax.set_title(f"{pipeline.spec_name}: green = fresh, orange = stale")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
