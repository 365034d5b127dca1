"""Draw a pipeline as a layered DAG with fresh/stale colours and each node's headline number.

Edges that skip layers are drawn as arcs, so they pass beside the boxes of the layers they skip
instead of through them.
"""

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


HEADLINE = ("pnmi", "cer", "per", "wer", "loss", "inertia")


def _label(name: str, kind: str, record: dict | None) -> str:
    """``name`` (wrapped at dots), the kind, and the first headline metric the node has."""
    if len(name) > 14 and "." in name:
        name = name.replace(".", ".\n", 1)
    metrics = (record or {}).get("metrics", {}) if (record or {}).get("status") == "complete" else {}
    number = next((f"{k} {metrics[k]:.3g}" for k in HEADLINE
                   if isinstance(metrics.get(k), (int, float))), "")
    return f"{name}\n{kind}" + (f"\n{number}" if number else "")


def draw_plan(pipeline, states: dict, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = pipeline.graph
    by_fp = {st.node.fingerprint: st for st in states.values()}
    pos = layered_positions(g)
    short = [(a, b) for a, b in g.edges if pos[b][0] - pos[a][0] <= 1]
    # edges skipping layers bow away from the row they would cross (up from the upper half)
    up = [(a, b) for a, b in g.edges if (a, b) not in short and pos[a][1] + pos[b][1] >= 0]
    down = [(a, b) for a, b in g.edges if (a, b) not in short and (a, b) not in up]
    width = max(6, 2.6 * (max(x for x, _ in pos.values()) + 1))
    height = max(3, 1.2 * max(sum(1 for p in pos.values() if p[0] == x) for x, _ in pos.values()))
    fig, ax = plt.subplots(figsize=(width, height))
    nx.draw_networkx_edges(g, pos, edgelist=short, ax=ax, arrows=True, arrowsize=14,
                           node_size=3000, edge_color="#777")
    for edges, rad in ((up, -0.3), (down, 0.3)):
        nx.draw_networkx_edges(g, pos, edgelist=edges, ax=ax, arrows=True, arrowsize=14,
                               node_size=3000, edge_color="#777",
                               connectionstyle=f"arc3,rad={rad}")
    colors = [COLORS[by_fp[n].status] for n in g.nodes]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colors, node_size=3000, node_shape="s")
    labels = {n: _label(g.nodes[n]["name"], g.nodes[n]["kind"], by_fp[n].record) for n in g.nodes}
    nx.draw_networkx_labels(g, pos, labels, ax=ax, font_size=8)
    ax.set_title(f"{pipeline.spec_name}: green = fresh, orange = stale")
    ax.axis("off")
    ax.margins(x=0.06, y=0.45)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
