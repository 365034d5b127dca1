"""The pipeline picture as it was drawn before the layered layout (depth rows sorted by name,
skip edges as arcs, networkx squares), kept only as the reference the new layout is compared
against: its edges and boxes as drawn, in inches on the figure."""

from __future__ import annotations

import networkx as nx

NODE_SIZE = 3000  # points², as the old drawing used


def _positions(g: nx.DiGraph) -> dict:
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


def legacy_geometry(g: nx.DiGraph) -> tuple[dict, dict]:
    """({edge: polyline}, {node: (x0, y0, x1, y1)}) of the old picture, in figure inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layered = _positions(g)
    depth = max(d for d, _ in layered.values())
    rows = max(sum(1 for p in layered.values() if p[0] == d) for d in range(depth + 1))
    vertical = depth > 6
    if vertical:
        pos = {n: (2.4 * off, -d) for n, (d, off) in layered.items()}
        size = (max(6, 2.4 * rows + 2), max(3, 1.3 * (depth + 1)))
    else:
        pos, size = layered, (max(6, 2.6 * (depth + 1)), max(3, 1.5 * rows + 1))
    fig = Figure(figsize=size, dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    patches = {}
    for a, b in g.edges:
        span = abs(layered[b][0] - layered[a][0])
        side = 1 if layered[a][1] + layered[b][1] >= 0 else -1
        rad = 0.0 if span <= 1 else side * min(0.35, 0.7 / span) * (1 if vertical else -1)
        patches[(a, b)] = nx.draw_networkx_edges(
            g, pos, edgelist=[(a, b)], ax=ax, arrows=True, arrowsize=14, node_size=NODE_SIZE,
            connectionstyle=f"arc3,rad={rad}")[0]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=NODE_SIZE, node_shape="s")
    ax.axis("off")
    ax.margins(x=0.12, y=0.12)
    fig.tight_layout()
    fig.canvas.draw()
    dpi = fig.dpi
    edges = {}
    for e, patch in patches.items():
        shaft = patch._get_path_in_displaycoord()[0][0]  # [shaft, head] in display pixels
        edges[e] = [(x / dpi, y / dpi) for x, y in
                    shaft.to_polygons(closed_only=False)[0]]
    half = NODE_SIZE ** 0.5 / 72 / 2  # the square marker's half side, in inches
    boxes = {}
    for n, p in pos.items():
        x, y = ax.transData.transform(p) / dpi
        boxes[n] = (x - half, y - half, x + half, y + half)
    return edges, boxes
