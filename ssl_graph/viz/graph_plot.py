"""Draw a pipeline as a layered DAG with fresh/stale colours and each node's headline number.

Sized for a page: boxes are measured from their labels at the font size the picture is saved with
(1 data unit = 1 inch), the layout flows left to right when that fits ``page_width`` and top to
bottom otherwise, and the font shrinks (not below 7 pt) before the picture grows wider than the
page. The layout (``layered.py``) routes edges between boxes, never behind one.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .layered import Layout, layered_layout, order_layers

COLORS = {"fresh": "#8fd18f", "stale": "#f5b76b"}
HEADLINE = ("pnmi", "cer", "per", "wer", "loss", "inertia")
PAGE_WIDTH = 8.0  # inches: a README column or a printed page
FONT_SIZES = (8.0, 7.5, 7.0)  # tried in turn until the picture fits the page width
PAD = 0.07  # inches between a label and its box's border
MARGIN = 0.15
TITLE = 0.35  # inches above the graph for the title


def _label(name: str, kind: str, record: dict | None) -> str:
    """``name`` (wrapped at dots), the kind, and the first headline metric the node has."""
    if len(name) > 14 and "." in name:
        name = name.replace(".", ".\n", 1)
    metrics = (record or {}).get("metrics", {}) if (record or {}).get("status") == "complete" else {}
    number = next((f"{k} {metrics[k]:.3g}" for k in HEADLINE
                   if isinstance(metrics.get(k), (int, float))), "")
    return f"{name}\n{kind}" + (f"\n{number}" if number else "")


@dataclass
class Plot:
    """The drawn figure and what is on it (for saving, and for checking the geometry)."""

    figure: object  # matplotlib Figure
    layout: Layout
    vertical: bool  # rows stacked top to bottom (else layers run left to right)
    font_size: float
    boxes: dict  # node -> matplotlib patch
    texts: dict  # node -> matplotlib Text
    arrows: dict  # (u, v) -> matplotlib FancyArrowPatch

    def to_xy(self, p: tuple[float, float]) -> tuple[float, float]:
        """Layout (cross, depth) → figure data coordinates, in inches."""
        return (p[0], -p[1]) if self.vertical else (p[1], -p[0])


def draw_plan(pipeline, states: dict, out: str, page_width: float = PAGE_WIDTH) -> None:
    plot = plot_plan(pipeline, states, page_width)
    plot.figure.savefig(out, dpi=150)


def plot_plan(pipeline, states: dict, page_width: float = PAGE_WIDTH) -> Plot:
    g = pipeline.graph
    by_fp = {st.node.fingerprint: st for st in states.values()}
    labels = {n: _label(g.nodes[n]["name"], g.nodes[n]["kind"], by_fp[n].record) for n in g}
    colors = {n: COLORS[by_fp[n].status] for n in g}
    return plot_dag(g, labels, colors, f"{pipeline.spec_name}: green = fresh, orange = stale",
                    page_width)


def _measure(fig, labels: dict, size: float) -> dict:
    """(width, height) in inches of each label drawn at ``size`` points."""
    renderer = fig.canvas.get_renderer()
    out = {}
    for n, text in labels.items():
        t = fig.text(0, 0, text, fontsize=size, multialignment="center", linespacing=1.25)
        bb = t.get_window_extent(renderer)
        out[n] = (bb.width / fig.dpi, bb.height / fig.dpi)
        t.remove()
    return out


def _choose(g: nx.DiGraph, fig, labels: dict, page_width: float):
    """The first (font size, direction) whose layout fits the page; else the narrowest at 7 pt."""
    best, ordering = None, order_layers(g)
    for size in FONT_SIZES:
        text = _measure(fig, labels, size)
        box = {n: (w + 2 * PAD, h + 2 * PAD) for n, (w, h) in text.items()}
        for vertical in (False, True):
            sizes = box if vertical else {n: (h, w) for n, (w, h) in box.items()}
            layout = layered_layout(g, sizes, ordering=ordering)
            wide = layout.size[0] if vertical else layout.size[1]
            if wide + 2 * MARGIN <= page_width:
                return size, vertical, layout
            if size == FONT_SIZES[-1] and (best is None or wide < best[0]):
                best = (wide, size, vertical, layout)
    return best[1:]


def plot_dag(g: nx.DiGraph, labels: dict, colors: dict, title: str,
             page_width: float = PAGE_WIDTH) -> Plot:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path

    fig = Figure()
    FigureCanvasAgg(fig)
    size, vertical, layout = _choose(g, fig, labels, page_width)
    plot = Plot(fig, layout, vertical, size, {}, {}, {})
    along, across = layout.size
    w, h = (along, across) if vertical else (across, along)
    fig_w = max(w + 2 * MARGIN, 3.0)
    fig.set_size_inches(fig_w, h + 2 * MARGIN + TITLE)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    x0 = -(fig_w - w) / 2
    ax.set_xlim(x0, x0 + fig_w)
    ax.set_ylim(-h - MARGIN, MARGIN + TITLE)
    for edge, route in layout.routes.items():
        verts, codes = [plot.to_xy(route.start)], [Path.MOVETO]
        for seg in route.segments:
            verts += [plot.to_xy(p) for p in seg[1:]]
            codes += [Path.LINETO] if seg[0] == "L" else [Path.CURVE4] * 3
        plot.arrows[edge] = FancyArrowPatch(path=Path(verts, codes), arrowstyle="-|>",
                                            mutation_scale=9, shrinkA=0, shrinkB=0,
                                            color="#6b6b6b", lw=0.8, zorder=1)
        ax.add_patch(plot.arrows[edge])
    for n, b in layout.boxes.items():
        (c0, d0), (c1, d1) = plot.to_xy(b.rect[:2]), plot.to_xy(b.rect[2:])
        patch = FancyBboxPatch((min(c0, c1), min(d0, d1)), abs(c1 - c0), abs(d1 - d0),
                               boxstyle="round,pad=0,rounding_size=0.04", fc=colors[n],
                               ec="#4d4d4d", lw=0.6, zorder=2)
        ax.add_patch(patch)
        cx, cy = plot.to_xy((b.cross, b.depth))
        plot.boxes[n] = patch
        plot.texts[n] = ax.text(cx, cy, labels[n], fontsize=size, ha="center", va="center",
                                multialignment="center", linespacing=1.25, zorder=3)
    fig.text(0.5, 1 - (TITLE / 2) / fig.get_size_inches()[1], title, ha="center", va="center",
             fontsize=size + 1)
    return plot
