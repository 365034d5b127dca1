"""Out-of-core mini-batch k-means (sklearn-style online means).

Batches are drawn without replacement from one chunk at a time (seeded shuffle of
the chunk), so a pass needs no random access to the store; ``max_iter`` counts
passes.  Sources that stream in storage order should mix utterances within a chunk
(the KMeans op's chunks span many utterances).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from ssl_graph.kernels.assign import assign_into, prepare_centroids
from ssl_graph.kernels.kmeans_source import FrameSource, as_source

PATIENCE = 10  # steps without improvement of the smoothed inertia (max_no_improvement)

Progress = Callable[[int, float], None]


@njit(cache=True)
def _online_update(xb, labels, centers, weights):
    """c ← (c·w + Σ batch) / (w + n_batch), in float64."""
    k, d = centers.shape
    sums = np.zeros((k, d))
    cnt = np.zeros(k)
    for i in range(xb.shape[0]):
        a = labels[i]
        cnt[a] += 1.0
        for t in range(d):
            sums[a, t] += xb[i, t]
    for j in range(k):
        if cnt[j] > 0:
            w = weights[j] + cnt[j]
            for t in range(d):
                centers[j, t] = (centers[j, t] * weights[j] + sums[j, t]) / w
            weights[j] = w


def _batches(source: FrameSource, batch_size: int, rng: np.random.Generator):
    for chunk in source.chunks():
        order = rng.permutation(len(chunk))
        for s in range(0, len(chunk), batch_size):
            yield chunk[np.sort(order[s : s + batch_size])]


def minibatch(
    source: FrameSource | np.ndarray,
    centroids: np.ndarray,
    rng: np.random.Generator,
    *,
    max_iter: int,
    tol: float,
    batch_size: int,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """Mini-batch k-means from ``centroids``; returns (centroids, steps).

    Stops early when the exponentially smoothed batch inertia has not improved by a
    relative ``tol`` for ``PATIENCE`` steps.  Callers hold ``blas_single_thread``.
    """
    source = as_source(source)
    n = source.n_frames
    k = centroids.shape[0]
    batch_size = min(batch_size, n)
    centers = centroids.astype(np.float64)
    weights = np.zeros(k)
    alpha = min(1.0, 2.0 * batch_size / (n + 1))
    ewa, best, stale, step = np.inf, np.inf, 0, 0
    for _ in range(max_iter):
        for xb in _batches(source, batch_size, rng):
            step += 1
            labels = np.empty(len(xb), dtype=np.int32)
            dists = np.empty(len(xb), dtype=np.float32)
            c_m2, cnorm = prepare_centroids(centers)
            assign_into(xb, c_m2, cnorm, labels, dists)
            _online_update(xb, labels, centers, weights)
            batch_inertia = float(dists.sum(dtype=np.float64)) / len(xb)
            ewa = batch_inertia if step == 1 else ewa * (1 - alpha) + batch_inertia * alpha
            if progress is not None:
                progress(step, ewa)
            if ewa < best * (1.0 - tol):
                best, stale = ewa, 0
            else:
                stale += 1
                if stale >= PATIENCE:
                    return centers.astype(np.float32), step
    return centers.astype(np.float32), step
