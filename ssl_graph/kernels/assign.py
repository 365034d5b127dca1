"""Nearest-centroid assignment: BLAS GEMM for x·Cᵀ fused with a Numba argmin.

Same rule as fairseq's ``dump_km_label.py``: ``argmin_j ‖x‖² − 2 x·c_j + ‖c_j‖²``.
The flops are in the GEMM, so each thread hands small row blocks to BLAS and runs the
argmin on the (rows, k) block while it is still in cache.  Alternating numpy's
multi-threaded matmul with a Numba parallel loop instead makes the two thread pools
spin against each other (10x slower on 2 cores with the OpenMP layer), so BLAS is
pinned to one thread while our kernel runs and the parallelism is ours.

Rows are independent, so labels do not depend on the thread count; ties go to the
lowest centroid index like ``np.argmin``.

Developers: ``kmeans.py``'s cached Numba kernels inline code from this module, and Numba only
checks the calling file's timestamp; after editing here, delete
``ssl_graph/kernels/__pycache__/kmeans.*.nb[ic]`` (a fresh checkout has no cache).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import lru_cache

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba's np.dot calls)
from numba import get_num_threads, njit, prange
from threadpoolctl import ThreadpoolController

DEFAULT_CHUNK = 65536
_MIN_TASK_ROWS = 2048  # below this per task, a parallel launch costs more than it saves
# fastmath without nnan/ninf: the kernels see inf sentinels and must keep them exact.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # scanning loaded libraries costs ~1 ms: do it once


def blas_single_thread() -> AbstractContextManager:
    """Pin BLAS to one thread: our Numba kernels call it from every worker."""
    return _controller().limit(limits=1, user_api="blas")


def gemm_rows(k: int) -> int:
    """Rows per BLAS call: the (rows, k) float32 block stays in L1/L2 (~100 KiB)."""
    return max(16, min(512, 25600 // max(k, 1)))


@njit(cache=True, fastmath=FASTMATH)
def row_sqnorms(x: np.ndarray) -> np.ndarray:
    """Squared L2 norm of each row, in float32 (the precision of the GEMM).

    Serial on purpose: it is memory-bound, and every parallel launch is a barrier
    that costs a scheduler slice when the machine is oversubscribed.
    """
    out = np.empty(x.shape[0], dtype=np.float32)
    for i in range(x.shape[0]):
        s = np.float32(0.0)
        for j in range(x.shape[1]):
            s += x[i, j] * x[i, j]
        out[i] = s
    return out


@njit(cache=True, fastmath=FASTMATH)
def _rowwise_min(g, cnorm):
    """In place g[r] += cnorm; return per-row min (vectorised reduction)."""
    m, k = g.shape
    out = np.empty(m, dtype=np.float32)
    for r in range(m):
        mn = g[r, 0] + cnorm[0]
        for j in range(k):
            v = g[r, j] + cnorm[j]
            g[r, j] = v
            mn = min(mn, v)
        out[r] = mn
    return out


@njit(cache=True, fastmath=FASTMATH)
def _min_except(row, skip):
    """min of row[j] for j != skip (vectorised; +inf when the row has one element)."""
    mn = np.float32(np.inf)
    for j in range(row.shape[0]):
        v = row[j] if j != skip else np.float32(np.inf)
        mn = min(mn, v)
    return mn


@njit(cache=True)
def assign_block(x, s, e, ct_m2, cnorm, xnorm, g, labels, dists, second):
    """Assign rows s:e using scratch ``g``; ``ct_m2`` is −2·Cᵀ (exact scaling).

    The min is found with a vectorised pass; the label is then the first column
    holding exactly that value, which is the lowest-index tie like ``np.argmin``.
    If ``second`` is non-empty it receives the squared distance to the runner-up
    (k-means uses it for its pruning bounds).
    """
    gg = g[: e - s]
    np.dot(x[s:e], ct_m2, gg)
    mins = _rowwise_min(gg, cnorm)
    last = gg.shape[1] - 1
    for r in range(e - s):
        mn = mins[r]
        a = 0
        while a < last and gg[r, a] != mn:  # bounded even if a NaN slipped in
            a += 1
        labels[s + r] = a
        dists[s + r] = max(xnorm[s + r] + mn, np.float32(0.0))
        if second.shape[0] > 0:
            second[s + r] = max(xnorm[s + r] + _min_except(gg[r], a), np.float32(0.0))


@njit(cache=True)
def _assign_range(x, s0, e0, ct_m2, cnorm, xnorm, labels, dists, rows):
    """Serial assignment of rows s0:e0 (small inputs, or one parallel task)."""
    g = np.empty((rows, ct_m2.shape[1]), dtype=np.float32)
    no_second = np.empty(0, dtype=np.float32)
    for s in range(s0, e0, rows):
        assign_block(x, s, min(e0, s + rows), ct_m2, cnorm, xnorm, g, labels, dists, no_second)


@njit(parallel=True, cache=True)
def _assign_parallel(x, ct_m2, cnorm, xnorm, labels, dists, rows, n_tasks):
    n = x.shape[0]
    per_task = (n + n_tasks - 1) // n_tasks
    for t in prange(n_tasks):
        _assign_range(
            x, t * per_task, min(n, (t + 1) * per_task), ct_m2, cnorm, xnorm, labels, dists, rows
        )


def assign_into(x, ct_m2, cnorm, xnorm, labels, dists) -> None:
    """Fill labels/dists for float32 C-contiguous ``x``; parallel only if worth it.

    Callers must hold :func:`blas_single_thread`.
    """
    n, k = x.shape[0], ct_m2.shape[1]
    n_tasks = min(4 * get_num_threads(), n // _MIN_TASK_ROWS)
    if n_tasks > 1:
        _assign_parallel(x, ct_m2, cnorm, xnorm, labels, dists, gemm_rows(k), n_tasks)
    else:
        _assign_range(x, 0, n, ct_m2, cnorm, xnorm, labels, dists, gemm_rows(k))


def prepare_centroids(centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(−2·Cᵀ contiguous, ‖c‖²) in float32, the form the kernels consume."""
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    return np.ascontiguousarray(-2.0 * c.T), row_sqnorms(c)


def assign_labels(
    x: np.ndarray, centroids: np.ndarray, *, chunk: int = DEFAULT_CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid for each row of ``x``.

    Returns ``(labels int32 (n,), squared distances float32 (n,))``.  ``x`` is
    converted to float32 ``chunk`` rows at a time, so a float16 or memory-mapped
    array never needs a full float32 copy.
    """
    x, c = np.asarray(x), np.asarray(centroids)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"shape mismatch: x {x.shape}, centroids {c.shape}")
    if c.shape[0] == 0:
        raise ValueError("need at least one centroid")
    n = x.shape[0]
    labels = np.empty(n, dtype=np.int32)
    dists = np.empty(n, dtype=np.float32)
    ct_m2, cnorm = prepare_centroids(c)
    with blas_single_thread():
        for s in range(0, n, chunk):
            xc = np.ascontiguousarray(x[s : s + chunk], dtype=np.float32)
            e = s + len(xc)
            assign_into(xc, ct_m2, cnorm, row_sqnorms(xc), labels[s:e], dists[s:e])
    return labels, dists
