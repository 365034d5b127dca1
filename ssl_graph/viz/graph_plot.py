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
    layered = layered_positions(g)  # (depth, offset within the layer)
    depth = max(d for d, _ in layered.values())
    rows = max(sum(1 for p in layered.values() if p[0] == d) for d in range(depth + 1))
    # a deep pipeline flows top to bottom, so the picture stays readable at page width
    vertical = depth > 6
    if vertical:
        pos = {n: (2.4 * off, -d) for n, (d, off) in layered.items()}
        width, height = max(6, 2.4 * rows + 2), max(3, 1.3 * (depth + 1))
    else:
        pos = layered
        width, height = max(6, 2.6 * (depth + 1)), max(3, 1.5 * rows + 1)
    fig, ax = plt.subplots(figsize=(width, height))
    for a, b in g.edges:
        span = abs(layered[b][0] - layered[a][0])
        # edges skipping layers bow away from the middle, gently over long spans
        side = 1 if layered[a][1] + layered[b][1] >= 0 else -1
        rad = 0.0 if span <= 1 else side * min(0.35, 0.7 / span) * (1 if vertical else -1)
        nx.draw_networkx_edges(g, pos, edgelist=[(a, b)], ax=ax, arrows=True, arrowsize=14,
                               node_size=3000, edge_color="#777",
                               connectionstyle=f"arc3,rad={rad}")
    colors = [COLORS[by_fp[n].status] for n in g.nodes]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colors, node_size=3000, node_shape="s")
    labels = {n: _label(g.nodes[n]["name"], g.nodes[n]["kind"], by_fp[n].record) for n in g.nodes}
    nx.draw_networkx_labels(g, pos, labels, ax=ax, font_size=8)
    ax.set_title(f"{pipeline.spec_name}: green = fresh, orange = stale")
    ax.axis("off")
    ax.margins(x=0.12, y=0.12)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
