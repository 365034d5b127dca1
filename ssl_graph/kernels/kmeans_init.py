"""Greedy k-means++ seeding on a sample, with the distances done by BLAS.

Each of the k steps draws ``2 + ln k`` candidates (like sklearn) and needs their
distances to every sample frame: one (m, d) × (d, trials) product per step, in the
expanded ‖x‖² + ‖c‖² − 2x·c form, so a step costs one streaming read of the sample.  The sample size is
fixed by the caller (not by k), so the whole seeding is linear in k.

Determinism: the rows are cut into parts that depend on m only; each part runs its
own single-threaded GEMM and float64 sums, combined in part order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ssl_graph.kernels.assign import FASTMATH, row_sqnorms

PART_ROWS = 2048  # rows per parallel task (fixed: sums do not depend on thread count)


@njit(cache=True, fastmath=FASTMATH)
def _part_potentials(x, xnorm, closest, cand, cand_norm, dist, pots, p):
    """dist[:, rows of p] = min(closest, ‖x − cand‖²); pots[p] = their sums.

    A register-blocked (rows × trials) product: each frame is loaded once for all
    trials, which beats BLAS for so few columns.
    """
    n, d, t = x.shape[0], x.shape[1], cand.shape[0]
    s, e = p * PART_ROWS, min(n, (p + 1) * PART_ROWS)
    acc = np.zeros(t)
    for i in range(s, e):
        for c in range(t):
            g = np.float32(0.0)
            for j in range(d):
                g += x[i, j] * cand[c, j]
            v = max(xnorm[i] + cand_norm[c] - np.float32(2.0) * g, np.float32(0.0))
            v = min(v, closest[i])
            dist[c, i] = v
            acc[c] += v
    for c in range(t):
        pots[p, c] = acc[c]


@njit(parallel=True, cache=True)
def _potentials(x, xnorm, closest, cand_t, cand_norm, dist, pots):
    for p in prange(pots.shape[0]):
        _part_potentials(x, xnorm, closest, cand_t, cand_norm, dist, pots, p)


def _candidate_distances(x, xnorm, closest, cand, dist, pots) -> np.ndarray:
    """Per-candidate potential (float64, summed in part order); fills ``dist``."""
    c = np.ascontiguousarray(x[cand])
    _potentials(x, xnorm, closest, c, row_sqnorms(c), dist, pots)
    return pots[:, : len(cand)].sum(axis=0)


def kmeans_plusplus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k rows of ``x`` (float32, C-contiguous) chosen by greedy k-means++.

    Callers hold :func:`~ssl_graph.kernels.assign.blas_single_thread`.
    """
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    xnorm = row_sqnorms(x)
    closest = np.full(n, np.inf, dtype=np.float32)
    dist = np.empty((trials, n), dtype=np.float32)
    pots = np.empty((-(-n // PART_ROWS), trials))
    idx = np.empty(k, dtype=np.int64)
    idx[0] = rng.integers(n)
    pot = float(_candidate_distances(x, xnorm, closest, idx[:1], dist[:1], pots)[0])
    closest[:] = dist[0]
    for j in range(1, k):
        if pot <= 0.0:  # fewer distinct frames than k: any frame will do
            cand = rng.integers(0, n, trials)
        else:
            cum = np.cumsum(closest, dtype=np.float64)
            cand = np.searchsorted(cum, rng.random(trials) * cum[-1], side="right")
            cand = cand.clip(max=n - 1)
        totals = _candidate_distances(x, xnorm, closest, cand, dist, pots)
        best = int(np.argmin(totals))
        idx[j] = cand[best]
        closest[:] = dist[best]
        pot = float(totals[best])
    return x[idx].copy()
