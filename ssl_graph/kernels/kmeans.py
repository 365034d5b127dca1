"""Deterministic out-of-core k-means for HuBERT targets (k-means++ then Lloyd).

fairseq clusters MFCCs with sklearn's ``MiniBatchKMeans(n_init=20, batch_size=10000)``.
Full-batch Lloyd with a BLAS distance GEMM reaches a lower inertia in a fraction of
that time, so the default recipe is:

1. one streaming pass gathers a seeded warm-start sample (at most ``WARM_PER_CLUSTER·k``
   frames and ``WARM_BYTES``),
2. greedy k-means++ (:mod:`kmeans_init`, blocked ‖x‖²+‖c‖²−2x·c products) on ``PP_FRAMES``
   of those frames, then Lloyd on the warm sample (cheap iterations, a good start),
3. streaming Lloyd (:mod:`kmeans_lloyd`) over all frames until the relative inertia
   gain per iteration drops below ``tol``.

From 128-d up the Lloyd passes keep per-frame candidate lists and bounds
(:mod:`kmeans_candidates`) that skip most of a late pass's GEMM without changing any label;
``algorithm="lloyd_exhaustive"`` turns them off (to compare), ``"lloyd_candidates"`` is the
same as ``"lloyd"`` (its name from when the lists were opt-in).
``algorithm="minibatch"`` (:mod:`kmeans_minibatch`) is the sklearn-style variant.

Memory: the frames are read from a :class:`~kmeans_source.FrameSource` one chunk at a
time, so a fit holds the warm sample (≤ min(WARM_PER_CLUSTER·k·d·4 B, WARM_BYTES)), one
or two chunks (CHUNK_BYTES each), the Lloyd sums (N_PARTS·k·d·8 B) and O(k·d) more:
≈ 0.2 GB at k=500, 768-d (≈ 0.45 GB peak RSS with the interpreter), plus the Lloyd
candidate state (60 bytes per frame, ≥ 128-d only, and only up to ``CANDIDATE_BYTES`` =
128 MB, about 2.2M frames; beyond that the passes run without it), for any number of frames
and any fit fraction.

Determinism: all randomness comes from one seeded ``numpy`` Generator and every
parallel reduction uses row partitions fixed by the data shape, never the thread
count.  Same frames (and chunking) + seed ⇒ bit-identical output.

Developers: the cached Numba kernels of ``kmeans_lloyd``/``kmeans_init``/``kmeans_minibatch``
inline code from ``assign.py`` (``kmeans_lloyd``'s also from ``kmeans_candidates.py``); after
editing those, delete
``ssl_graph/kernels/__pycache__/kmeans*.nb[ic]`` (``assign.py``'s note predates the split).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ssl_graph.kernels.assign import blas_single_thread
from ssl_graph.kernels.kmeans_init import kmeans_plusplus
from ssl_graph.kernels.kmeans_lloyd import assign_pass, lloyd
from ssl_graph.kernels.kmeans_minibatch import minibatch
from ssl_graph.kernels.kmeans_source import ArraySource, FrameSource, as_source, gather

__all__ = [
    "KMeansResult", "blas_single_thread", "fit_kmeans", "kmeans_plusplus", "lloyd", "minibatch"
]

WARM_PER_CLUSTER = 64  # warm-start Lloyd sample, frames per cluster ...
WARM_BYTES = 256 << 20  # ... and at most this much float32
PP_FRAMES = 8192  # k-means++ sample: fixed, so seeding is linear in k ...
PP_PER_CLUSTER = 16  # ... unless k is so large that this is more
WARM_STARTS = 1  # (k-means++, warm Lloyd) runs; the best one seeds the full Lloyd
WARM_TOL = 1e-3  # warm starts stop at this relative gain (the full run refines)

Progress = Callable[[int, float], None]


@dataclass
class KMeansResult:
    centroids: np.ndarray  # (k, d) float32
    inertia: float  # mean squared distance per frame on the fit data
    n_iter: int  # Lloyd iterations (warm + full) or mini-batch steps of the best run
    n_init: int


def _numbered(progress: Progress | None) -> Progress | None:
    """Renumber callbacks as one running count over all phases of a fit."""
    if progress is None:
        return None
    count = itertools.count()
    return lambda _, inertia: progress(next(count), inertia)


def _sample_idx(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if m >= n else np.sort(rng.choice(n, m, replace=False))


def _seed(sample: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    m = max(PP_FRAMES, PP_PER_CLUSTER * k)
    return kmeans_plusplus(sample[_sample_idx(len(sample), m, rng)], k, rng)


def _fit_once(source, k, rng, *, max_iter, tol, algorithm, batch_size, progress) -> KMeansResult:
    n, d = source.n_frames, source.dim
    progress = _numbered(progress)
    m = min(WARM_PER_CLUSTER * k, max(k, WARM_BYTES // (4 * d)))
    idx = _sample_idx(n, m, rng)
    sample = gather(source, idx)
    if algorithm == "minibatch":
        c = _seed(sample, k, rng)
        c, n_iter = minibatch(
            source, c, rng, max_iter=max_iter, tol=tol, batch_size=batch_size, progress=progress
        )
        return KMeansResult(c, assign_pass(source, c)[2], n_iter, 1)
    n_iter, best = 0, None
    candidates = algorithm != "lloyd_exhaustive"  # the lists change no label: on where they pay
    if len(idx) < n:
        warm = ArraySource(sample)
        for _ in range(WARM_STARTS):
            c = _seed(sample, k, rng)
            run = lloyd(warm, c, max_iter=max_iter, tol=max(tol, WARM_TOL), progress=progress,
                        candidates=candidates)
            if best is None or run[1] < best[1]:
                best = run
        c, n_iter = best[0], best[2]
    else:  # small data: k-means++ on (a sample of) it, then Lloyd
        c = _seed(sample, k, rng)
    del sample
    c, inertia, it = lloyd(source, c, max_iter=max_iter, tol=tol, progress=progress,
                           candidates=candidates)
    return KMeansResult(c, inertia, n_iter + it, 1)


def fit_kmeans(
    x: np.ndarray | FrameSource,
    k: int,
    *,
    seed: int = 0,
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-4,
    algorithm: str = "lloyd",
    batch_size: int = 10000,
    progress: Progress | None = None,
) -> KMeansResult:
    """Cluster the frames of ``x`` (an (n, d) array or a streaming source) into ``k``.

    Best of ``n_init`` runs.  ``tol`` is a relative inertia gain per iteration (Lloyd)
    or per ``PATIENCE`` steps (mini-batch); ``max_iter`` is iterations per Lloyd phase
    or passes for mini-batch.  ``progress(iteration, inertia)`` is called after every
    E-step or mini-batch step with a running count; the inertia is the warm sample's
    during the warm start, then that of all frames (mini-batch: smoothed batch inertia).
    """
    if algorithm not in ("lloyd", "lloyd_candidates", "lloyd_exhaustive", "minibatch"):
        raise ValueError(f"unknown algorithm {algorithm!r}")
    source = as_source(x)
    if not 1 <= k <= source.n_frames:
        raise ValueError(f"need 1 <= k <= n_frames, got k={k}, n={source.n_frames}")
    if n_init < 1 or max_iter < 0 or batch_size < 1:
        raise ValueError("n_init and batch_size must be >= 1, max_iter >= 0")
    opts = {"max_iter": max_iter, "tol": tol, "algorithm": algorithm, "batch_size": batch_size}
    best: KMeansResult | None = None
    with blas_single_thread():
        for child in np.random.SeedSequence(seed).spawn(n_init):
            res = _fit_once(source, k, np.random.default_rng(child), progress=progress, **opts)
            if best is None or res.inertia < best.inertia:
                best = res
    assert best is not None
    best.n_init = n_init
    return best
