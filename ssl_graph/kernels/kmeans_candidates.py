"""Per-frame candidate lists and bounds that let a Lloyd pass skip most of the GEMM, exactly.

A frame's full assignment (one GEMM column against all k centroids) also leaves it its
``CANDIDATES`` nearest centroids, a lower bound on the distance to each of them and one
lower bound on the distance to every other centroid (GEMM-form values less their
worst-case float32 rounding).  When the centroids move, a centroid can have come nearer
by at most its own summed moves since that refresh (triangle inequality), so each bound
drops by its centroid's moves only.  Next pass the frame computes exact distances to the
centroids its bounds cannot rule out: its candidates whose bound is not already past the
nearest distance found, and the other centroids in order of how far they moved, until the
next one's bound rules out it and all that moved less (at most ``MAX_CHECKED`` of them).
A frame whose nearest computed centroid beats every other computed one and every bound,
each by more than the worst-case rounding of both distance forms, takes it without the
GEMM; any other frame goes back to the full GEMM, which refreshes its state.

Labels are therefore the full assignment's: the lowest index of the minimal
‖x‖² − 2x·c + ‖c‖² (the GEMM form, as :mod:`assign`).  A frame the check labels has no
other centroid within rounding distance, so the GEMM form picks the same one; a frame it
cannot decide takes the GEMM.  That GEMM runs on a block of such frames, so on a BLAS
kernel whose rounding depends on a row's place in the block (``assign.py``: Haswell, not
SkylakeX) a float32 near-tie can still resolve differently from an all-frames pass, as it
can between thread counts there.  Every decision is per frame and depends on that frame's
history only, never on chunking or threads.

Memory: :meth:`Candidates.bytes_per_frame` (60 bytes at k < 2¹⁵), used only while that
fits ``CANDIDATE_BYTES`` and for frames of at least ``MIN_DIM`` dimensions; other fits run
full passes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ssl_graph.kernels.assign import FASTMATH, row_sqnorms_into

CANDIDATES = 8  # nearest centroids kept per frame
MAX_CHECKED = 16  # other centroids a check may compute before it gives up for the GEMM
CANDIDATE_BYTES = 128 << 20  # per-frame state is kept only up to this size
MIN_DIM = 128  # below, a frame's full GEMM column is too cheap for the lists to pay
# (measured, benchmarks/bench_kmeans.py: 39-d, k=100 Lloyd 1.7x slower with them)
# Worst-case float32 error of either squared-distance form, as a multiple of
# ‖x‖² + max ‖c‖²: 2·d·u (d = 768, u = 2⁻²⁴) < 1e-4; ``rounding_margin`` scales it with d.
ROUNDING_MARGIN = 1e-4


def rounding_margin(dim: int) -> float:
    return ROUNDING_MARGIN * max(1.0, dim / 768)


class Candidates:
    """Each frame's candidate centroid ids with lower bounds on their distances, a lower
    bound on every other centroid's distance (all as of the pass that refreshed it), that
    pass's number and the frame's ‖x‖²."""

    def __init__(self, n_frames: int, k: int):
        m = min(CANDIDATES, k - 1)
        self.ids = np.zeros((n_frames, m), dtype=np.int16 if k < (1 << 15) else np.int32)
        self.near = np.zeros((n_frames, m), dtype=np.float32)  # candidates' lower bounds
        self.bound = np.zeros(n_frames, dtype=np.float32)  # ≤ 0: no valid list yet
        self.since = np.zeros(n_frames, dtype=np.int32)
        self.xnorm = np.zeros(n_frames, dtype=np.float32)
        self.drift = [np.zeros(k)]  # per pass: each centroid's summed moves before it

    @staticmethod
    def bytes_per_frame(k: int) -> int:
        m = min(CANDIDATES, k - 1)
        return 12 + m * (6 if k < (1 << 15) else 8)

    @classmethod
    def for_fit(cls, n_frames: int, k: int, dim: int) -> Candidates | None:
        """State for a fit, or None where the lists cannot pay (k = 1, dim < ``MIN_DIM``)
        or would not fit ``CANDIDATE_BYTES``."""
        if k < 2 or dim < MIN_DIM or n_frames * cls.bytes_per_frame(k) > CANDIDATE_BYTES:
            return None
        return cls(n_frames, k)

    def moved(self, old: np.ndarray, new: np.ndarray) -> None:
        """The centroids moved from ``old`` to ``new`` (between two passes)."""
        step = np.sqrt(((new.astype(np.float64) - old) ** 2).sum(axis=1))
        self.drift.append(self.drift[-1] + step)

    def moved_since(self) -> tuple[np.ndarray, np.ndarray]:
        """Per refresh pass t: how far each centroid can have moved since (its summed
        moves, rounded up to float32) and the centroids in order of that, farthest first."""
        drift = np.stack(self.drift)
        since = ((drift[-1] - drift) * (1 + 1e-6)).astype(np.float32)  # (passes, k)
        order = np.argsort(-since, axis=1, kind="stable").astype(np.int32)
        return since, order


@njit(cache=True, fastmath=FASTMATH)
def _sq_dist(x, i, c, j):
    dd = np.float32(0.0)
    for t in range(x.shape[1]):
        diff = x[i, t] - c[j, t]
        dd += diff * diff
    return dd


@njit(cache=True)
def check_candidates(x, s, e, c, cmax, margin, ids, near, bound, since, xnorm, moved, order,
                     labels, todo):
    """Label rows s:e whose nearest centroid the bounds prove to be the full assignment's,
    computing exact distances only to centroids the bounds cannot rule out; the others'
    row numbers go to ``todo`` (returns how many)."""
    m, k = 0, order.shape[1]
    for i in range(s, e):
        if bound[i] <= 0:
            todo[m] = i
            m += 1
            continue
        t = since[i]
        mv = moved[t]
        gap = np.float32(4.0 * margin) * (xnorm[i] + cmax)
        best, second, bj = np.float32(np.inf), np.float32(np.inf), -1
        for q in range(ids.shape[1]):  # nearest first (refresh order)
            j = ids[i, q]
            lb = near[i, q] - mv[j]
            if lb > 0 and lb * lb > best + gap:
                continue  # can be neither the nearest nor within rounding of it
            dd = _sq_dist(x, i, c, j)
            if dd < best:
                best, second, bj = dd, best, j
            elif dd < second:
                second = dd
        ok, extra, row = True, 0, order[t]
        for p in range(k):  # the others, farthest moved first
            j = row[p]
            lb = bound[i] - mv[j]
            if lb > 0 and lb * lb > best + gap:
                break  # and so for every centroid that moved less
            listed = False
            for q in range(ids.shape[1]):
                if ids[i, q] == j:
                    listed = True
            if listed:
                continue
            extra += 1
            if extra > MAX_CHECKED:
                ok = False
                break
            dd = _sq_dist(x, i, c, j)
            if dd < best:
                best, second, bj = dd, best, j
            elif dd < second:
                second = dd
        if ok and best + gap < second:
            labels[i] = bj
        else:
            todo[m] = i
            m += 1
    return m


SEEDED_CAP = 32  # values a seeded top-M selection collects per frame before it rescans


@njit(cache=True)
def refresh_candidates(x, todo, m, c_m2, cnorm, cmax, margin, xb, gt, xn_block, top_v, top_j,
                       prev, buf_v, buf_j, count, thr, ids, near, bound, since, xnorm, now,
                       labels):
    """Full assignment of rows ``todo[:m]``: one GEMM against all centroids, then each
    row's label, nearest ``M`` ids with lower bounds on their distances and a lower
    bound on the rest (each GEMM-form value less its worst-case rounding)."""
    k, big_m = c_m2.shape[0], ids.shape[1]
    seeded = False
    for r in range(m):
        xb[r] = x[todo[r]]
        i = todo[r]
        listed = bound[i] > 0
        seeded = seeded or listed
        for q in range(big_m):
            prev[r, q] = ids[i, q] if listed else -1
    rows = xb[:m]
    xn = xn_block[:m]
    row_sqnorms_into(rows, xn)
    g = gt[: k * m].reshape((k, m))
    np.dot(c_m2, rows.T, g)
    if seeded:
        _top_seeded(g, cnorm, top_v, top_j, m, prev, buf_v, buf_j, count, thr)
    else:
        _top(g, cnorm, top_v, top_j, m)
    for r in range(m):
        i = todo[r]
        labels[i] = top_j[r, 0]
        slack = xn[r] - np.float32(margin) * (xn[r] + cmax)
        for q in range(big_m):
            ids[i, q] = top_j[r, q]
            near[i, q] = np.sqrt(max(slack + top_v[r, q], np.float32(0.0)))
        bound[i] = np.sqrt(max(slack + top_v[r, big_m], np.float32(0.0)))
        since[i] = now
        xnorm[i] = xn[r]


@njit(cache=True)
def _top(g, cnorm, top_v, top_j, m):
    """Per column r < m: the ``M + 1`` smallest ``g[j, r] + cnorm[j]`` in ``top_v[r]``,
    ascending, equal values in index order (so ``top_j[r, 0]`` is the lowest index of
    the minimum, as :func:`~assign.argmin_columns` picks)."""
    last = top_v.shape[1] - 1
    for r in range(m):
        for q in range(last + 1):
            top_v[r, q] = np.inf
    for j in range(g.shape[0]):
        cj = cnorm[j]
        row = g[j]
        for r in range(m):
            _insert(top_v[r], top_j[r], row[r] + cj, j)


@njit(cache=True, inline="always")
def _insert(tv, tj, v, j):
    """Insert value ``v`` of centroid ``j`` into the ascending list ``tv`` (dropping its
    last), after any equal value (which has the lower index)."""
    last = len(tv) - 1
    if v < tv[last]:
        q = last
        while q > 0 and tv[q - 1] > v:
            tv[q] = tv[q - 1]
            tj[q] = tj[q - 1]
            q -= 1
        tv[q] = v
        tj[q] = j


@njit(cache=True)
def _top_seeded(g, cnorm, top_v, top_j, m, prev, buf_v, buf_j, count, thr):
    """:func:`_top` for columns whose previous candidates ``prev[r]`` (−1: none) are
    likely still near: their largest value now, ``T``, is at least the M-th smallest, so
    one scan collects the values ≤ T (mostly a compare that fails) and a short insertion
    sorts them.  When only the M previous ones are ≤ T, every other value is above T,
    which becomes the (M + 1)-th entry: a lower bound on the rest, as the bound needs.
    Columns without a list, or with more than ``SEEDED_CAP`` values ≤ T, are rescanned."""
    last = top_v.shape[1] - 1
    for r in range(m):
        t = -np.inf
        if prev[r, 0] >= 0:
            for q in range(prev.shape[1]):
                j = prev[r, q]
                t = max(t, g[j, r] + cnorm[j])
        thr[r] = t
        count[r] = 0
    cap = buf_v.shape[1]
    for j in range(g.shape[0]):
        cj = cnorm[j]
        row = g[j]
        for r in range(m):
            v = row[r] + cj
            if v <= thr[r]:
                n = count[r]
                if n < cap:
                    buf_v[r, n] = v
                    buf_j[r, n] = j
                count[r] = n + 1
    for r in range(m):
        tv, tj = top_v[r], top_j[r]
        for q in range(last + 1):
            tv[q] = np.inf
        if prev[r, 0] < 0 or count[r] > cap:
            for j in range(g.shape[0]):
                _insert(tv, tj, g[j, r] + cnorm[j], j)
            continue
        for n in range(count[r]):
            _insert(tv, tj, buf_v[r, n], buf_j[r, n])
        if tv[last] > thr[r]:  # only the previous M are ≤ T: the rest all exceed it
            tv[last] = thr[r]
