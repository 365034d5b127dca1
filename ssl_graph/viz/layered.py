"""Layered (Sugiyama-style) layout of a DAG, with edges routed so that none passes behind a box.

Written here rather than taken from graphviz, which is not a dependency; every step keeps the
picture deterministic (ties broken by a caller-given key) and the no-edge-through-a-box guarantee
cheap:

1. layers: longest path from the sources, then a node slides toward the side with more edges
   (an input read only by a late node sits just above it instead of at the top);
2. an edge spanning several layers gets a dummy node in each layer between, so that row reserves
   a slot for it beside the boxes;
3. crossings: barycenter sweeps down and up (the best ordering is kept), then adjacent swaps;
4. coordinates: each node is pulled toward its neighbours (long edges pull harder, so they run
   straight), then projected back onto its row's order with minimum gaps;
5. routes: inside a row an edge is a straight segment through its slot; between rows it is a
   cubic Bézier whose control points stay in the empty band between the rows, so it cannot reach
   a box either.

Coordinates are abstract: ``cross`` runs along a row, ``depth`` grows from the first layer to the
last; the drawer maps them to x/y for a top-to-bottom or a left-to-right picture.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

import networkx as nx

#: pull of an edge between two real nodes, a real node and a dummy, two dummies (long edges
#: straight first)
WEIGHTS = {0: 1.0, 1: 2.0, 2: 8.0}


class Dummy(NamedTuple):
    """Where long edge (u, v) crosses row ``layer``: a node of the layout, not of the graph."""

    u: object
    v: object
    layer: int


def _dummy(n) -> bool:
    return isinstance(n, Dummy)


@dataclass(frozen=True)
class Box:
    cross: float  # centre along the row
    depth: float  # centre across the rows
    breadth: float  # extent along the row
    thickness: float  # extent across the row

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """(cross0, depth0, cross1, depth1)"""
        return (self.cross - self.breadth / 2, self.depth - self.thickness / 2,
                self.cross + self.breadth / 2, self.depth + self.thickness / 2)


@dataclass(frozen=True)
class Route:
    """An edge's path: ``start``, then segments ``("L", p)`` or ``("C", c1, c2, p)``."""

    start: tuple[float, float]
    segments: tuple

    def points(self, samples: int = 16) -> list[tuple[float, float]]:
        """The path as a polyline, each Bézier sampled at ``samples`` steps."""
        pts = [self.start]
        for seg in self.segments:
            if seg[0] == "L":
                pts.append(seg[1])
                continue
            (x0, y0), (x1, y1), (x2, y2), (x3, y3) = pts[-1], seg[1], seg[2], seg[3]
            for i in range(1, samples + 1):
                t = i / samples
                a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t ** 3
                pts.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3))
        return pts


@dataclass(frozen=True)
class Layout:
    boxes: dict  # node -> Box
    routes: dict  # (u, v) -> Route
    layers: list  # per layer, its nodes (real ones and dummies) in order
    crossings: int  # edge crossings between adjacent layers (= crossings in the picture)
    slots: dict  # Dummy(u, v, layer) -> where edge (u, v) crosses that row: (cross, depth)

    @property
    def size(self) -> tuple[float, float]:
        """(extent along the rows, extent across them), the layout starting at 0, 0."""
        pts = [p for r in self.routes.values() for p in r.points(2)]
        return (max([b.rect[2] for b in self.boxes.values()] + [p[0] for p in pts]),
                max([b.rect[3] for b in self.boxes.values()] + [p[1] for p in pts]))


@dataclass(frozen=True)
class Ordering:
    """Steps 1-3 (they do not depend on box sizes, so one ordering serves several tries)."""

    layers: list  # per layer, real nodes and dummies in order
    chains: dict  # (u, v) -> [u, dummies..., v]
    up: dict  # node -> [(neighbour in the layer above, weight)]
    down: dict
    order: dict  # node -> tie-break key


def order_layers(g: nx.DiGraph, key=None) -> Ordering:
    """Layers, dummies and the order in each row. ``key(n)`` breaks ties (default: the node's
    ``name`` attribute), so the same graph always gives the same picture."""
    if key is None:
        key = lambda n: (str(g.nodes[n].get("name", n)), str(n))  # noqa: E731
    layer = assign_layers(g, key)
    order = {n: (key(n),) for n in g}
    up: dict = {n: [] for n in g}
    down: dict = {n: [] for n in g}
    chains = {}
    for u, v in sorted(g.edges, key=lambda e: (order[e[0]], order[e[1]])):
        chain = [u] + [Dummy(u, v, k) for k in range(layer[u] + 1, layer[v])] + [v]
        for k, d in enumerate(chain[1:-1], start=layer[u] + 1):
            layer[d], up[d], down[d] = k, [], []
            order[d] = (key(u), key(v), k)
        for a, b in zip(chain, chain[1:]):
            w = WEIGHTS[_dummy(a) + _dummy(b)]
            down[a].append((b, w))
            up[b].append((a, w))
        chains[(u, v)] = chain
    layers = _minimise_crossings(_initial_order(layer, up, down, order), up, down)
    return Ordering(layers, chains, up, down, order)


def layered_layout(g: nx.DiGraph, sizes: dict, key=None, node_gap: float = 0.25,
                   edge_gap: float = 0.12, layer_gap: float = 0.4,
                   ordering: Ordering | None = None) -> Layout:
    """Lay out DAG ``g``; ``sizes[n] = (breadth, thickness)`` of node n's box, in any unit (the
    gaps are in the same one). Pass ``ordering`` (from :func:`order_layers`) to reuse one."""
    o = ordering or order_layers(g, key)
    breadth = {n: sizes[n][0] if n in g else 0.0 for row in o.layers for n in row}
    cross = _coordinates(o.layers, o.up, o.down, breadth, node_gap, edge_gap)
    return _route(g, o.layers, o.chains, cross, breadth, sizes, o.order, layer_gap,
                  _total_crossings(o.layers, o.down))


def assign_layers(g: nx.DiGraph, key) -> dict:
    """Longest path from the sources, then each node moves (within what its edges allow) toward
    the side with more edges: that shortens the sum of edge spans at every move, so it ends."""
    topo = list(nx.lexicographical_topological_sort(g, key=key))
    layer = {}
    for n in topo:
        layer[n] = max((layer[p] + 1 for p in g.predecessors(n)), default=0)
    moved = True
    while moved:
        moved = False
        for n in reversed(topo):
            ins, outs = g.in_degree(n), g.out_degree(n)
            if outs > ins:
                to = min(layer[s] for s in g.successors(n)) - 1
            elif ins > outs:
                to = max(layer[p] for p in g.predecessors(n)) + 1
            else:
                continue
            if to != layer[n]:
                layer[n], moved = to, True
    low = min(layer.values(), default=0)
    return {n: d - low for n, d in layer.items()}


def _initial_order(layer: dict, up: dict, down: dict, order: dict) -> list[list]:
    """Depth-first visit order from the sources (keeps chains together), by key at each fork."""
    seen: dict = {}
    for root in sorted((n for n in layer if not up[n]), key=order.get):
        stack = [root]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen[n] = len(seen)
            stack.extend(sorted((c for c, _ in down[n]), key=order.get, reverse=True))
    layers = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in sorted(layer, key=seen.get):
        layers[layer[n]].append(n)
    return layers


def _pair_crossings(edges: list[tuple[int, int]]) -> int:
    """Crossings between two rows: edges (upper position, lower position) sorted, then the
    inversions of the lower positions counted with a Fenwick tree (E log E, not E²)."""
    edges = sorted(edges)
    size = max((b for _, b in edges), default=0) + 2
    tree = [0] * size
    total = 0
    for seen, (_, b) in enumerate(edges):
        i, below = b + 1, 0  # below: how many seen so far have a lower position <= b
        while i:
            below += tree[i]
            i -= i & -i
        total += seen - below
        i = b + 1
        while i < size:
            tree[i] += 1
            i += i & -i
    return total


def _total_crossings(layers: list[list], down: dict) -> int:
    total = 0
    for row, below in zip(layers, layers[1:]):
        pos = {n: i for i, n in enumerate(below)}
        total += _pair_crossings([(i, pos[c]) for i, n in enumerate(row) for c, _ in down[n]])
    return total


def _minimise_crossings(layers: list[list], up: dict, down: dict, starts: int = 48) -> list[list]:
    """Sweeps + transposes from the depth-first order, then from seeded shuffles of it (the
    heuristic is a local search: on the demo graph one start in ten finds 0 crossings); the
    first of the best is kept, so the result is the same on every run."""
    best, best_c = None, None
    for start in range(starts):
        rows = [r[:] for r in layers]
        if start:
            rng = random.Random(start)
            for r in rows:
                rng.shuffle(r)
        rows = _transpose(_sweep(rows, up, down), up, down)
        c = _total_crossings(rows, down)
        if best_c is None or c < best_c:
            best, best_c = rows, c
        if best_c == 0:
            break
    return best


def _sweep(layers: list[list], up: dict, down: dict, sweeps: int = 24) -> list[list]:
    """Barycenter ordering, alternately down and up; the ordering with fewest crossings wins."""
    best, best_c, since = [r[:] for r in layers], _total_crossings(layers, down), 0
    for it in range(sweeps):
        if best_c == 0 or since == 6:  # none, or six sweeps (three down, three up) no better
            break
        rows = range(1, len(layers)) if it % 2 == 0 else range(len(layers) - 2, -1, -1)
        nbrs = up if it % 2 == 0 else down
        for i in rows:
            ref = {n: j for j, n in enumerate(layers[i - 1 if it % 2 == 0 else i + 1])}

            def bary(jn, ref=ref, nbrs=nbrs):
                j, n = jn
                ps = [ref[m] for m, _ in nbrs[n]]
                return (sum(ps) / len(ps) if ps else j, j)
            layers[i] = [n for _, n in sorted(enumerate(layers[i]), key=bary)]
        c = _total_crossings(layers, down)
        since += 1
        if c < best_c:
            best, best_c, since = [r[:] for r in layers], c, 0
    return best


def _transpose(layers: list[list], up: dict, down: dict) -> list[list]:
    """Swap neighbours in a row while that removes crossings (each swap removes some: it ends)."""
    def cost(a, b, pos):  # crossings between a's and b's edges with a left of b
        return sum(1 for nbrs in (up, down) for m, _ in nbrs[a] for k, _ in nbrs[b]
                   if pos[m] > pos[k])
    improved = True
    while improved:
        improved = False
        pos = {n: j for row in layers for j, n in enumerate(row)}
        for row in layers:
            for j in range(len(row) - 1):
                a, b = row[j], row[j + 1]
                if cost(b, a, pos) < cost(a, b, pos):
                    row[j], row[j + 1] = b, a
                    pos[a], pos[b] = j + 1, j
                    improved = True
    return layers


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list] = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [v for v, _, n in blocks for _ in range(n)]


def _coordinates(layers, up, down, breadth, node_gap, edge_gap, sweeps: int = 60) -> dict:
    """Minimise sum of weight * (x_u - x_v)^2 over the edges, row by row (Gauss-Seidel), each row
    solved exactly under its order and minimum gaps: x_i - offset_i must be non-decreasing."""
    offsets = []
    for row in layers:
        off, acc = [0.0], 0.0
        for a, b in zip(row, row[1:]):
            gap = edge_gap if _dummy(a) or _dummy(b) else node_gap
            acc += breadth[a] / 2 + gap + breadth[b] / 2
            off.append(acc)
        offsets.append(off)
    x = {n: off for row, offs in zip(layers, offsets) for n, off in zip(row, offs)}
    order = list(range(len(layers))) + list(range(len(layers) - 2, 0, -1))
    for _ in range(sweeps):
        for i in order:
            row, offs = layers[i], offsets[i]
            targets, weights = [], []
            for n, off in zip(row, offs):
                nbrs = up[n] + down[n]
                w = sum(w for _, w in nbrs)
                t = sum(x[m] * w for m, w in nbrs) / w if w else x[n]
                targets.append(t - off)
                weights.append(w or 1e-3)
            for n, off, y in zip(row, offs, _isotonic(targets, weights)):
                x[n] = y + off
    return _straighten(layers, offsets, x)


def _straighten(layers, offsets, x) -> dict:
    """Put each long edge's slots on one vertical line where its rows leave room (the pull
    toward neighbours leaves them a little wavy)."""
    chains: dict = {}
    for i, row in enumerate(layers):
        for j, n in enumerate(row):
            if _dummy(n):
                chains.setdefault((n.u, n.v), []).append((i, j))
    for slots in chains.values():
        # greedy: the longest runs of consecutive rows that leave room for one straight line
        run, lo, hi = [], float("-inf"), float("inf")
        for i, j in slots:
            row, offs = layers[i], offsets[i]
            a = x[row[j - 1]] + offs[j] - offs[j - 1] if j else float("-inf")
            b = x[row[j + 1]] - offs[j + 1] + offs[j] if j + 1 < len(row) else float("inf")
            if run and max(lo, a) > min(hi, b):
                _align(layers, run, lo, hi, x)
                run, lo, hi = [], float("-inf"), float("inf")
            run.append((i, j))
            lo, hi = max(lo, a), min(hi, b)
        _align(layers, run, lo, hi, x)
    return x


def _align(layers, run, lo, hi, x) -> None:
    if lo > hi:  # only rounding can make a single slot's room negative: leave it
        return
    line = min(max(sum(x[layers[i][j]] for i, j in run) / len(run), lo), hi)
    for i, j in run:
        x[layers[i][j]] = line


def _route(g, layers, chains, cross, breadth, sizes, order, layer_gap, crossings) -> Layout:
    low = min((cross[n] - breadth[n] / 2 for n in cross), default=0.0)
    cross = {n: c - low for n, c in cross.items()}
    thick = [max((sizes[n][1] for n in row if n in g), default=0.0) for row in layers]
    lay = {n: i for i, row in enumerate(layers) for n in row}
    # a band is taller when its edges travel far sideways, so they do not run flat
    drift = [0.0] * len(layers)
    for chain in chains.values():
        for a, b in zip(chain, chain[1:]):
            drift[lay[a]] = max(drift[lay[a]], abs(cross[a] - cross[b]))
    depth, acc = [], 0.0
    for t, d in zip(thick, drift):
        depth.append(acc + t / 2)
        acc += t + max(layer_gap, min(0.25 * d, 2.5 * layer_gap))
    # each box keeps its own thickness, centred in its row; a shorter one's edges reach the row's
    # border straight along the port, inside the box's own stretch of the row
    boxes = {n: Box(cross[n], depth[lay[n]], sizes[n][0], sizes[n][1]) for n in g}
    ports = _ports(g, chains, cross, boxes, order)
    routes = {}
    for (u, v), chain in chains.items():
        i, x = lay[u], ports[(u, v, "out")]
        start, p = (x, boxes[u].rect[3]), (x, depth[i] + thick[i] / 2)
        segs = [("L", p)] if p != start else []
        for n in chain[1:]:
            j = lay[n]
            top = depth[j] - thick[j] / 2
            q = (ports[(u, v, "in")] if n == v else cross[n], top)
            half = (top - p[1]) / 2
            segs.append(("C", (p[0], p[1] + half), (q[0], top - half), q))
            end = (q[0], boxes[v].rect[1] if n == v else top + thick[j])
            if end != q:
                segs.append(("L", end))
            p = end
        routes[(u, v)] = Route(start, tuple(segs))
    slots = {n: (cross[n], depth[lay[n]]) for n in lay if n not in g}
    return Layout(boxes, routes, layers, crossings, slots)


def _ports(g, chains, cross, boxes, order) -> dict:
    """Where each edge leaves/enters a box: spread over its middle, in the order of where the
    edge goes/comes from, so edges of one box never cross one another at the box."""
    ports = {}
    for n in g:
        for side, items in (("out", [(e, c[1]) for e, c in chains.items() if e[0] == n]),
                            ("in", [(e, c[-2]) for e, c in chains.items() if e[1] == n])):
            items.sort(key=lambda it: (cross[it[1]], order[it[1]]))
            span = 0.6 * boxes[n].breadth
            for k, ((u, v), _) in enumerate(items):
                frac = (k + 0.5) / len(items) - 0.5
                ports[(u, v, side)] = boxes[n].cross + span * frac
    return ports
