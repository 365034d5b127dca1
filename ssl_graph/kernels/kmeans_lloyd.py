"""Out-of-core Lloyd: one streaming pass over the source per iteration.

Each chunk is cut into ``N_PARTS`` fixed row ranges; a parallel task per range assigns
its rows (BLAS GEMM + argmin from :mod:`assign`) and adds them to that range's own
float64 sums.  Sums are combined in range order at the end of the pass, so the
result depends on the chunking (fixed by the source) and never on the thread count.

From 128-d up most frames skip the GEMM in later passes: each keeps a short list of
candidate centroids and bounds that prove which centroid is nearest, the one a full
assignment picks (:mod:`kmeans_candidates`).

State held across a pass: ``N_PARTS`` × k × d float64 sums, the k farthest frames
seen (to reseed empty clusters), one chunk's labels/distances and, while it fits
``CANDIDATE_BYTES``, the candidate state (``Candidates.bytes_per_frame``: 60 bytes at k < 2¹⁵).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange

from ssl_graph.kernels.assign import (
    FASTMATH,
    assign_block,
    even_blocks,
    gemm_rows,
    prepare_centroids,
)
from ssl_graph.kernels.kmeans_candidates import (
    SEEDED_CAP,
    Candidates,
    check_candidates,
    refresh_candidates,
    rounding_margin,
)
from ssl_graph.kernels.kmeans_source import FrameSource, as_source

N_PARTS = 8  # row ranges per chunk: balances 2+ threads, fixed for determinism

Progress = Callable[[int, float], None]


@njit(cache=True, fastmath=FASTMATH)
def _accumulate(x, s, e, c, labels, dists, sm, cnt):
    """Add rows s:e to their clusters' sums; exact ‖x − c‖² (the GEMM form loses
    digits when ‖x‖² ≫ distance).  Returns the rows' summed distance (float64)."""
    acc = 0.0
    for i in range(s, e):
        a = labels[i]
        cnt[a] += 1
        dd = np.float32(0.0)
        for t in range(x.shape[1]):
            v = x[i, t]
            sm[a, t] += v
            diff = v - c[a, t]
            dd += diff * diff
        dists[i] = dd
        acc += dd
    return acc


@njit(cache=True)
def _assign_part(x, c, c_m2, cnorm, labels, dists, sums, counts, inertia, p, rows, ids, bound,
                 since, near, xnorm_f, moved, order, margin):
    n, k = x.shape[0], c_m2.shape[0]
    per = -(-n // sums.shape[0])
    s0, e0 = p * per, min(n, (p + 1) * per)
    rows = even_blocks(e0 - s0, rows)  # no short tail block
    gt = np.empty(k * rows, dtype=np.float32)
    xnorm = np.empty(rows, dtype=np.float32)
    if ids.shape[1]:  # candidate lists: a GEMM only for the rows that fail their check
        big_m = ids.shape[1]
        xb = np.empty((rows, x.shape[1]), dtype=np.float32)
        todo = np.empty(rows, dtype=np.int64)
        top_v = np.empty((rows, big_m + 1), dtype=np.float32)
        top_j = np.empty((rows, big_m + 1), dtype=np.int32)
        prev = np.empty((rows, big_m), dtype=np.int64)
        buf_v = np.empty((rows, SEEDED_CAP), dtype=np.float32)
        buf_j = np.empty((rows, SEEDED_CAP), dtype=np.int32)
        count = np.empty(rows, dtype=np.int64)
        thr = np.empty(rows, dtype=np.float32)
        cmax = cnorm.max()
    acc = 0.0
    for s in range(s0, e0, rows):
        e = min(e0, s + rows)
        if ids.shape[1]:
            m = check_candidates(x, s, e, c, cmax, margin, ids, near, bound, since, xnorm_f,
                                 moved, order, labels, todo)
            if m:
                refresh_candidates(x, todo, m, c_m2, cnorm, cmax, margin, xb, gt, xnorm, top_v,
                                   top_j, prev, buf_v, buf_j, count, thr, ids, near, bound,
                                   since, xnorm_f, len(moved) - 1, labels)
        else:
            assign_block(x, s, e, c_m2, cnorm, gt, xnorm, labels, dists)
        acc += _accumulate(x, s, e, c, labels, dists, sums[p], counts[p])
    inertia[p] += acc


@njit(parallel=True, cache=True)
def _assign_accumulate(x, c, c_m2, cnorm, labels, dists, sums, counts, inertia, rows, ids, bound,
                       since, near, xnorm_f, moved, order, margin):
    for p in prange(sums.shape[0]):
        _assign_part(x, c, c_m2, cnorm, labels, dists, sums, counts, inertia, p, rows, ids, bound,
                     since, near, xnorm_f, moved, order, margin)


class _Farthest:
    """The ``size`` frames farthest from their centroids so far (ties: earliest frame)."""

    def __init__(self, size: int, dim: int):
        self.size = size
        self.dist = np.empty(0, dtype=np.float32)
        self.pos = np.empty(0, dtype=np.int64)
        self.label = np.empty(0, dtype=np.int32)
        self.rows = np.empty((0, dim), dtype=np.float32)

    def offer(self, chunk, start, labels, dists) -> None:
        m = min(self.size, len(chunk))
        top = np.argpartition(-dists, m - 1)[:m] if m < len(chunk) else np.arange(len(chunk))
        dist = np.concatenate([self.dist, dists[top]])
        pos = np.concatenate([self.pos, start + top])
        keep = np.lexsort((pos, -dist))[: self.size]
        rows = np.concatenate([self.rows, chunk[top]])
        label = np.concatenate([self.label, labels[top]])
        self.dist, self.pos, self.rows, self.label = dist[keep], pos[keep], rows[keep], label[keep]


def _reseed_empty(far: _Farthest, sums: np.ndarray, counts: np.ndarray) -> None:
    """Move empty clusters onto the farthest frames (deterministic order)."""
    empty = np.flatnonzero(counts == 0)
    for j, row, old in zip(empty, far.rows, far.label):
        if counts[old] > 1:
            sums[old] -= row
            counts[old] -= 1
        sums[j] = row
        counts[j] = 1


def assign_pass(
    source: FrameSource,
    c: np.ndarray,
    far: _Farthest | None = None,
    cands: Candidates | None = None,
):
    """One E-step over the stream: (sums k×d float64, counts k, inertia per frame).

    ``cands``: per-frame candidate lists (:mod:`kmeans_candidates`), used and updated.
    """
    c = np.ascontiguousarray(c, dtype=np.float32)
    k, d = c.shape
    c_m2, cnorm = prepare_centroids(c)
    sums = np.zeros((N_PARTS, k, d))
    counts = np.zeros((N_PARTS, k), dtype=np.int64)
    inertia = np.zeros(N_PARTS)
    rows, start = gemm_rows(k), 0
    if cands is None:  # no per-frame state: zero-width lists make every block a full assignment
        moved, order = np.zeros((1, k), np.float32), np.zeros((1, k), np.int32)
        ids, near = np.empty((0, 0), np.int16), np.empty((0, 0), np.float32)
        bound, since, xnorm = np.empty(0, np.float32), np.empty(0, np.int32), np.empty(0, np.float32)
    else:
        moved, order = cands.moved_since()
    margin = rounding_margin(d)
    for chunk in source.chunks():
        labels = np.empty(len(chunk), dtype=np.int32)
        dists = np.empty(len(chunk), dtype=np.float32)
        if cands is not None:
            part = slice(start, start + len(chunk))
            ids, bound, since = cands.ids[part], cands.bound[part], cands.since[part]
            xnorm, near = cands.xnorm[part], cands.near[part]
        _assign_accumulate(chunk, c, c_m2, cnorm, labels, dists, sums, counts, inertia, rows,
                           ids, bound, since, near, xnorm, moved, order, margin)
        if far is not None:
            far.offer(chunk, start, labels, dists)
        start += len(chunk)
    return sums.sum(axis=0), counts.sum(axis=0), float(inertia.sum()) / max(start, 1)


def lloyd(
    source: FrameSource | np.ndarray,
    centroids: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    progress: Progress | None = None,
    candidates: bool = True,
) -> tuple[np.ndarray, float, int]:
    """Lloyd from ``centroids``; stops when (prev − inertia) ≤ tol·inertia. ``candidates``:
    per-frame candidate lists (:mod:`kmeans_candidates`) where they pay, which skip most
    GEMM columns and change no label; ``False``: every pass is the exhaustive assignment.

    Returns (centroids, inertia of the returned centroids, iterations): the last pass
    always scores the centroids it returns.  Callers hold ``blas_single_thread``.
    """
    source = as_source(source)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    prev = np.inf
    cands = Candidates.for_fit(source.n_frames, c.shape[0], c.shape[1]) if candidates else None
    for it in range(max_iter + 1):
        far = _Farthest(c.shape[0], c.shape[1])
        sums, counts, inertia = assign_pass(source, c, far, cands)
        if progress is not None:
            progress(it, inertia)
        if it == max_iter or prev - inertia <= tol * inertia:
            return c, inertia, it
        prev = inertia
        _reseed_empty(far, sums, counts)
        new = (sums / counts[:, None]).astype(np.float32)
        if cands is not None:
            cands.moved(c, new)
        c = new
    raise AssertionError("unreachable")
