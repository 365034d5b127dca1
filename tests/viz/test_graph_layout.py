"""The pipeline picture, checked as geometry: no edge behind a box, no boxes on top of each other,
no more crossings than the layout it replaced (none at all on the demo's k=50 variant), labels
inside their boxes at a legible size on an 8-inch page, and the same picture on every run."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import networkx as nx
import pytest

from ssl_graph.api import Project
from ssl_graph.graph.pipeline import load_pipeline
from ssl_graph.viz.graph_plot import _label, plot_dag, plot_plan
from ssl_graph.viz.layered import Dummy, _pair_crossings, assign_layers, layered_layout

from ..conftest import ROOT
from .geometry import crossings, flatten, line_hits_rect, rects_overlap
from .legacy_layout import legacy_geometry

PAGE = 8.0


def synthetic_dag(chains: int = 5, depth: int = 9, seed: int = 0) -> nx.DiGraph:
    """Parallel chains with edges between them and skip edges of 2-6 layers, like a pipeline
    with several variants sharing inputs (wider and deeper than the demo)."""
    rng = random.Random(seed)
    g = nx.DiGraph()
    name = lambda c, d: f"c{c}.step{d:02d}"  # noqa: E731
    for c in range(chains):
        for d in range(depth):
            g.add_node(name(c, d), name=name(c, d), kind="Synthetic")
            if d:
                g.add_edge(name(c, d - 1), name(c, d))
    for _ in range(chains * depth // 2):
        c1, c2, d = rng.randrange(chains), rng.randrange(chains), rng.randrange(depth - 2)
        g.add_edge(name(c1, d), name(c2, min(depth - 1, d + rng.choice((1, 2, 3, 4, 6)))))
    g.add_node("inputs", name="inputs", kind="Corpus")  # one source read by many, far down
    for c in range(chains):
        g.add_edge("inputs", name(c, 0))
        g.add_edge("inputs", name(c, depth - 1))
    assert nx.is_directed_acyclic_graph(g)
    return g


def _plot_spec(spec: str, store):
    project = Project(ROOT / "specs" / spec, str(store))
    return project.pipeline.graph, plot_plan(project.pipeline, project.plan(), PAGE)


@pytest.fixture(scope="module")
def plots(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    out = {spec: _plot_spec(f"{spec}.py", store) for spec in ("demo", "demo_k50")}
    for name, args in SYNTHETIC.items():
        g = synthetic_dag(*args)
        out[name] = (g, plot_dag(g, {n: f"{n}\nSynthetic" for n in g},
                                 {n: "#8fd18f" for n in g}, name, PAGE))
    return out


#: (chains, depth, seed): 41-49 nodes, 64-78 edges, most of them skipping layers
SYNTHETIC = {"synthetic0": (5, 9, 0), "synthetic1": (5, 9, 1), "synthetic2": (6, 8, 2),
             "synthetic3": (4, 10, 3)}
GRAPHS = ("demo", "demo_k50", *SYNTHETIC)


def _routes(plot) -> dict:
    return {e: r.points(24) for e, r in plot.layout.routes.items()}


@pytest.mark.parametrize("name", GRAPHS)
def test_no_edge_passes_behind_a_box(plots, name):
    g, plot = plots[name]
    boxes = {n: b.rect for n, b in plot.layout.boxes.items()}
    assert set(boxes) == set(g)
    for (u, v), line in _routes(plot).items():
        for n, rect in boxes.items():
            if n not in (u, v):  # a clearance of 0.03 in: more than the line's width
                assert not line_hits_rect(line, rect, eps=0.03), (name, u, v, "through", n)
        # and it leaves its source from the border and reaches its target's border from outside
        inner = [(p, q) for p, q in zip(line[1:-2], line[2:-1])]
        for n in (u, v):
            x0, y0, x1, y1 = boxes[n]
            assert not line_hits_rect([p for pq in inner for p in pq],
                                      (x0 + 0.01, y0 + 0.01, x1 - 0.01, y1 - 0.01)), (u, v, n)


def _shallow_dag() -> nx.DiGraph:
    """The demo's first steps: shallow enough to be drawn left to right."""
    g = nx.DiGraph([("corpus", "mfcc"), ("mfcc", "km"), ("km", "labels"), ("mfcc", "labels"),
                    ("labels", "quality"), ("corpus", "quality.alignments"),
                    ("quality.alignments", "quality"), ("labels", "it1"), ("corpus", "it1")])
    for n in g:
        g.nodes[n]["name"] = n
    return g


@pytest.mark.parametrize("name", ["demo", "shallow"])
def test_the_saved_picture_is_the_layout(plots, name):
    """What the figure draws (arrow paths, box patches, in figure inches) keeps the layout's
    guarantee, in both directions: top to bottom (demo) and left to right (shallow)."""
    from matplotlib.path import Path

    if name == "shallow":
        g = _shallow_dag()
        plot = plot_dag(g, {n: f"{n}\nKind" for n in g}, {n: "#8fd18f" for n in g}, "s", PAGE)
        assert not plot.vertical
    else:
        g, plot = plots[name]
        assert plot.vertical
    plot.figure.canvas.draw()
    rects = {n: (p.get_x(), p.get_y(), p.get_x() + p.get_width(), p.get_y() + p.get_height())
             for n, p in plot.boxes.items()}
    for n, b in plot.layout.boxes.items():
        (x0, y0), (x1, y1) = plot.to_xy(b.rect[:2]), plot.to_xy(b.rect[2:])
        assert rects[n] == pytest.approx((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    for (u, v), arrow in plot.arrows.items():
        path = arrow.get_path()  # the shaft's vertices, then the head's
        route = plot.layout.routes[(u, v)]
        k = 1 + sum(len(seg) - 1 for seg in route.segments)
        assert path.vertices[0] == pytest.approx(plot.to_xy(route.start))
        shaft = flatten(Path(path.vertices[:k], path.codes[:k]))
        assert len(shaft) > k
        for n, rect in rects.items():
            if n not in (u, v):
                assert not line_hits_rect(shaft, rect, eps=0.03), (u, v, n)


@pytest.mark.parametrize("name", GRAPHS)
def test_boxes_never_overlap(plots, name):
    _, plot = plots[name]
    rects = [b.rect for b in plot.layout.boxes.values()]
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            grown = (a[0] - 0.1, a[1] - 0.1, a[2] + 0.1, a[3] + 0.1)  # 0.1 in apart at least
            assert not rects_overlap(grown, b), (a, b)


def test_fewer_crossings_than_the_layout_it_replaced(plots):
    counts = {}
    for name, (g, plot) in plots.items():
        ours = crossings(_routes(plot))
        old_edges, old_boxes = legacy_geometry(g)
        # what the layout counts between its rows is what the picture shows
        assert ours == plot.layout.crossings, name
        behind = sum(any(line_hits_rect(line, r) for n, r in old_boxes.items() if n not in e)
                     for e, line in old_edges.items())
        counts[name] = (ours, crossings(old_edges), behind)
    print("crossings (new, old, old edges passing behind a box):", counts)
    for name, (ours, before, behind) in counts.items():
        assert ours <= before and behind > 0, (name, counts[name])
    # the k=50 variant can be drawn level-planar (no crossings), and the layout finds it; the
    # demo's six probes read the corpus, its alignments and three upstreams each, which leaves
    # some crossings (13 of the old layout's 106 when they were added)
    assert counts["demo_k50"][0] == 0 < counts["demo_k50"][1], counts["demo_k50"]
    assert counts["demo"][0] * 5 <= counts["demo"][1], counts["demo"]


@pytest.mark.parametrize("name", GRAPHS)
def test_labels_fit_their_boxes_at_page_width(plots, name):
    _, plot = plots[name]
    fig = plot.figure
    assert fig.get_size_inches()[0] <= PAGE
    assert plot.font_size >= 7
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for n, text in plot.texts.items():
        assert text.get_fontsize() == plot.font_size
        t, b = text.get_window_extent(renderer), plot.boxes[n].get_window_extent(renderer)
        assert b.x0 + 1 <= t.x0 and t.x1 <= b.x1 - 1 and b.y0 + 1 <= t.y0 and t.y1 <= b.y1 - 1, \
            (text.get_text(), t, b)


def test_layers_keep_edges_short():
    """Each node sits tight against the side with more edges: an input read only by late
    nodes (the alignments, read by cluster-quality nodes and PR probes) sits right above its first
    reader instead of at the top."""
    for g in (load_pipeline(ROOT / "specs" / "demo.py").graph, synthetic_dag()):
        layer = assign_layers(g, lambda n, g=g: g.nodes[n]["name"])
        for n in g:
            ups = [layer[n] - layer[p] for p in g.predecessors(n)]
            downs = [layer[s] - layer[n] for s in g.successors(n)]
            assert all(d >= 1 for d in ups + downs)
            if len(downs) > len(ups):
                assert min(downs) == 1, g.nodes[n]["name"]
            if len(ups) > len(downs):
                assert min(ups) == 1, g.nodes[n]["name"]
        names = {g.nodes[n]["name"]: n for n in g}
        if "quality.alignments" in names:  # right above its first reader (a PR probe)
            al = names["quality.alignments"]
            assert layer[al] == min(layer[s] for s in g.successors(al)) - 1 > 0


def test_long_edges_get_a_slot_in_every_row_they_cross():
    g = synthetic_dag()
    lay = layered_layout(g, {n: (1.0, 0.4) for n in g}, edge_gap=0.12)
    row = {n: i for i, r in enumerate(lay.layers) for n in r}
    assert set(lay.slots) == {n for r in lay.layers for n in r if n not in g}
    assert all(isinstance(n, Dummy) for n in lay.slots)
    assert len(lay.slots) == sum(row[v] - row[u] - 1 for u, v in g.edges) > 0
    for slot, (x, depth) in lay.slots.items():
        u, v, k = slot
        assert row[u] < k < row[v] and row[slot] == k
        # the edge runs straight through its slot, across the whole row ...
        top, bottom = depth - 0.2, depth + 0.2
        pts = lay.routes[(u, v)].points(4)
        assert any(abs(p[0] - x) < 1e-9 and abs(p[1] - top) < 1e-9 for p in pts), slot
        assert any(abs(p[0] - x) < 1e-9 and abs(p[1] - bottom) < 1e-9 for p in pts), slot
        # ... at least edge_gap away from every box of that row
        for n in lay.layers[k]:
            if n in g:
                b = lay.boxes[n]
                assert abs(b.cross - x) >= b.breadth / 2 + 0.12 - 1e-9, (slot, n)


def test_two_row_crossing_count_matches_counting_every_pair():
    rng = random.Random(0)
    for _ in range(300):
        edges = [(rng.randrange(6), rng.randrange(6)) for _ in range(rng.randrange(15))]
        brute = sum(1 for i, (a, b) in enumerate(edges) for c, d in edges[i + 1:]
                    if (a - c) * (b - d) < 0)
        assert _pair_crossings(edges) == brute, edges


def test_headline_number_on_the_node():
    assert _label("quality", "ClusterQuality",
                  {"status": "complete", "metrics": {"pnmi": 0.5723}}) == \
        "quality\nClusterQuality\npnmi 0.572"
    assert _label("quality", "ClusterQuality", {"status": "running", "metrics": {"pnmi": 1}}) == \
        "quality\nClusterQuality"  # no number for what is not complete


PRINT_LAYOUT = """
import sys
from ssl_graph.api import Project
from ssl_graph.graph.pipeline import load_pipeline
from ssl_graph.viz.graph_plot import plot_plan
p = Project(sys.argv[1], sys.argv[2])
plot = plot_plan(p.pipeline, p.plan())
lay = plot.layout
names = p.pipeline.graph.nodes
print(sorted((names[n]["name"], b) for n, b in lay.boxes.items()))
print(sorted(((names[u]["name"], names[v]["name"]), r) for (u, v), r in lay.routes.items()))
"""


def test_same_graph_same_picture(plots, tmp_path):
    """Same layout whatever the hash seed (no set order leaks in), same PNG bytes in a run."""
    outs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        res = subprocess.run([sys.executable, "-c", PRINT_LAYOUT, str(ROOT / "specs" / "demo.py"),
                              str(tmp_path / "store")], capture_output=True, text=True, env=env,
                             timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        outs.append(res.stdout)
    assert outs[0] == outs[1] and "Box(" in outs[0]
    _, first = _plot_spec("demo.py", tmp_path / "store")
    _, second = _plot_spec("demo.py", tmp_path / "store")
    for i, plot in enumerate((first, second)):
        plot.figure.savefig(tmp_path / f"{i}.png", dpi=100, metadata={"Software": None})
    assert (tmp_path / "0.png").read_bytes() == (tmp_path / "1.png").read_bytes()
