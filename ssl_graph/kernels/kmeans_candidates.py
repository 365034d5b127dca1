"""Per-frame candidate lists that let a Lloyd pass skip most of the distance GEMM.

After a frame's full assignment (one GEMM column against all k centroids) it keeps its
``CANDIDATES`` nearest centroids and a lower bound on its distance to every other one
(the next-nearest distance, less a margin for the GEMM's float32 rounding).  When the
centroids move, the bound drops by the most any one centroid has moved since the frame's
refresh, each centroid's moves summed (triangle inequality).  Next pass
the frame computes its exact distances to its candidates only; if the nearest of them
is closer than the bound, no other centroid can be nearer and that is its label, else
the frame goes back to the full GEMM (which refreshes its list).  Late Lloyd passes move
the centroids little, so most frames take the cheap path.

Labels: a full assignment takes the lowest index of the minimal ‖x‖² − 2x·c + ‖c‖²
(the GEMM form, as :mod:`assign`); a candidate check the lowest index of the minimal
exact ‖x − c‖² among the candidates.  Both are the nearest centroid; they can differ
only between centroids at float32 round-off distance (near-ties).  Every decision is
per frame and depends on that frame's history only, never on chunking or threads.

Memory: ``8 + 2·CANDIDATES`` bytes per frame (``int32`` ids when k ≥ 2¹⁵: ``8 + 4·M``),
used only while that fits ``CANDIDATE_BYTES`` and for frames of at least ``MIN_DIM``
dimensions; other fits run full passes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ssl_graph.kernels.assign import FASTMATH, row_sqnorms_into

CANDIDATES = 8  # nearest centroids kept per frame
CANDIDATE_BYTES = 128 << 20  # per-frame state is kept only up to this size
MIN_DIM = 128  # below, a frame's full GEMM column is too cheap for the lists to pay
# (measured, benchmarks/bench_kmeans.py: 39-d, k=100 Lloyd 1.7x slower with them)
ROUNDING_MARGIN = 1e-4  # × (‖x‖² + max ‖c‖²): bounds the GEMM-form squared-distance error


class Candidates:
    """Each frame's candidate centroid ids, lower bound on the others' distance (as of
    the pass that refreshed it) and that pass's number."""

    def __init__(self, n_frames: int, k: int):
        m = min(CANDIDATES, k - 1)
        self.ids = np.zeros((n_frames, m), dtype=np.int16 if k < (1 << 15) else np.int32)
        self.bound = np.zeros(n_frames, dtype=np.float32)  # ≤ 0: no valid list yet
        self.since = np.zeros(n_frames, dtype=np.int32)
        self.drift = [np.zeros(k)]  # per pass: each centroid's summed moves before it

    @classmethod
    def for_fit(cls, n_frames: int, k: int, dim: int) -> Candidates | None:
        """State for a fit, or None where the lists cannot pay (k = 1, dim < ``MIN_DIM``)
        or would not fit ``CANDIDATE_BYTES``."""
        m = min(CANDIDATES, k - 1)
        per_frame = 8 + m * (2 if k < (1 << 15) else 4)
        if m < 1 or dim < MIN_DIM or n_frames * per_frame > CANDIDATE_BYTES:
            return None
        return cls(n_frames, k)

    def moved(self, old: np.ndarray, new: np.ndarray) -> None:
        """The centroids moved from ``old`` to ``new`` (between two passes)."""
        step = np.sqrt(((new.astype(np.float64) - old) ** 2).sum(axis=1))
        self.drift.append(self.drift[-1] + step)

    def decay(self) -> np.ndarray:
        """Per refresh pass t: how far any one centroid can have moved since (its summed
        moves; the largest over centroids), by which a bound set at t is loosened now."""
        drift = np.stack(self.drift)
        return ((drift[-1] - drift).max(axis=1) * (1 + 1e-6)).astype(np.float32)


@njit(cache=True, fastmath=FASTMATH)
def check_candidates(x, s, e, c, ids, bound, since, decay, labels, todo):
    """Label rows s:e whose nearest candidate beats their bound; the others' row
    numbers go to ``todo`` (returns how many)."""
    m = 0
    for i in range(s, e):
        b = bound[i] - decay[since[i]]
        if bound[i] <= 0 or b <= 0:
            todo[m] = i
            m += 1
            continue
        best, bj = np.float32(np.inf), 0
        for q in range(ids.shape[1]):
            j = ids[i, q]
            dd = np.float32(0.0)
            for t in range(x.shape[1]):
                diff = x[i, t] - c[j, t]
                dd += diff * diff
            if dd < best or (dd == best and j < bj):
                best, bj = dd, j
        if best < b * b:
            labels[i] = bj
        else:
            todo[m] = i
            m += 1
    return m


@njit(cache=True)
def refresh_candidates(x, todo, m, c_m2, cnorm, cmax, xb, gt, xnorm, top_v, top_j,
                       ids, bound, since, now, labels):
    """Full assignment of rows ``todo[:m]``: one GEMM against all centroids, then each
    row's label, nearest ``M`` ids and bound on the rest."""
    k, big_m = c_m2.shape[0], ids.shape[1]
    for r in range(m):
        xb[r] = x[todo[r]]
    rows = xb[:m]
    xn = xnorm[:m]
    row_sqnorms_into(rows, xn)
    g = gt[: k * m].reshape((k, m))
    np.dot(c_m2, rows.T, g)
    _top(g, cnorm, top_v, top_j, m)
    for r in range(m):
        i = todo[r]
        labels[i] = top_j[r, 0]
        for q in range(big_m):
            ids[i, q] = top_j[r, q]
        rest = xn[r] + top_v[r, big_m] - np.float32(ROUNDING_MARGIN) * (xn[r] + cmax)
        bound[i] = np.sqrt(max(rest, np.float32(0.0)))
        since[i] = now


@njit(cache=True)
def _top(g, cnorm, top_v, top_j, m):
    """Per column r < m: the ``M + 1`` smallest ``g[j, r] + cnorm[j]`` in ``top_v[r]``,
    ascending, equal values in index order (so ``top_j[r, 0]`` is the lowest index of
    the minimum)."""
    last = top_v.shape[1] - 1
    for r in range(m):
        for q in range(last + 1):
            top_v[r, q] = np.inf
    for j in range(g.shape[0]):
        cj = cnorm[j]
        row = g[j]
        for r in range(m):
            v = row[r] + cj
            if v < top_v[r, last]:
                tv, tj = top_v[r], top_j[r]
                q = last
                while q > 0 and tv[q - 1] > v:
                    tv[q] = tv[q - 1]
                    tj[q] = tj[q - 1]
                    q -= 1
                tv[q] = v
                tj[q] = j
