"""Plane geometry for checking pictures: polyline crossings and polyline-rectangle contact."""

from __future__ import annotations

import numpy as np


def _segments(line) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(line, dtype=float)
    return pts[:-1], pts[1:]


def _orient(a, b, c) -> np.ndarray:
    return np.sign((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                   - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))


def crossing_points(line1, line2) -> int:
    """How many points two polylines meet at (collinear overlaps aside). A crossing exactly at a
    sample point meets up to four segment pairs: the points are merged, so it counts once."""
    p1, p2 = _segments(line1)
    q1, q2 = _segments(line2)
    p1, p2 = p1[:, None], p2[:, None]
    q1, q2 = q1[None], q2[None]
    o1, o2 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    o3, o4 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    hit = (o1 * o2 <= 0) & (o3 * o4 <= 0) & ~((o1 == 0) & (o2 == 0))
    i, j = np.nonzero(hit)
    if not len(i):
        return 0
    a, b = p1[i, 0], p2[i, 0]
    c, d = q1[0, j], q2[0, j]
    r, s = b - a, d - c
    den = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    t = ((c - a)[:, 0] * s[:, 1] - (c - a)[:, 1] * s[:, 0]) / den
    pts = a + t[:, None] * r
    return len({(round(x, 6), round(y, 6)) for x, y in pts})


def crossings(lines: dict) -> int:
    """Points where two of the edges ``{(u, v): polyline}`` cross (edges of one node too: they
    meet at the node only by touching, which is not a proper crossing)."""
    keys = list(lines)
    return sum(crossing_points(lines[a], lines[b]) for i, a in enumerate(keys) for b in keys[i + 1:])


def segment_hits_rect(p, q, rect, eps: float = 0.0) -> bool:
    """Whether segment pq meets the rectangle (x0, y0, x1, y1) grown by ``eps`` (Liang-Barsky)."""
    x0, y0, x1, y1 = rect[0] - eps, rect[1] - eps, rect[2] + eps, rect[3] + eps
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for d, lo, hi, v in ((dx, x0, x1, p[0]), (dy, y0, y1, p[1])):
        if d == 0:
            if not lo <= v <= hi:
                return False
            continue
        a, b = (lo - v) / d, (hi - v) / d
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
        if t0 > t1:
            return False
    return True


def line_hits_rect(line, rect, eps: float = 0.0) -> bool:
    return any(segment_hits_rect(p, q, rect, eps) for p, q in zip(line, line[1:]))


def rects_overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def flatten(path, samples: int = 24) -> list[tuple[float, float]]:
    """A matplotlib Path as a polyline, each Bézier piece sampled at ``samples`` steps."""
    t = np.linspace(0, 1, samples + 1)
    return [tuple(p) for seg, _ in path.iter_bezier() for p in np.atleast_2d(seg(t))]
