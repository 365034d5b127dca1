"""Nearest-centroid assignment: BLAS GEMM for C·xᵀ fused with a Numba argmin.

Same rule as fairseq's ``dump_km_label.py``: ``argmin_j ‖x‖² − 2 x·c_j + ‖c_j‖²``.
The flops are in the GEMM, so rows go to BLAS in blocks of :func:`gemm_rows`, one
sgemm per block writing the (k, rows) products ``−2 C·xᵀ`` into a preallocated
cache-sized buffer, and the argmin runs on that block while it is still in cache.
The products are laid out centroid-major so the argmin's inner loop runs across rows
(independent lanes) and vectorises; centroid norms are computed once per call.
Alternating numpy's multi-threaded matmul with a Numba parallel loop instead makes
the two thread pools spin against each other (10x slower on 2 cores with the OpenMP
layer), so BLAS is pinned to one thread while our kernel runs and the parallelism is
ours.

Exact ties go to the lowest centroid index like ``np.argmin``.  Rows are independent,
but OpenBLAS's rounding of a product can depend on where the row falls in a block
with some kernels (measured: not with ``SkylakeX``, yes with ``Haswell``), so the
thread count or the batch split can flip a label only between centroids whose
distances agree to float32 round-off (a near-tie; about 1 frame in 10⁵ at 768-d).

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
    """Rows per BLAS call: the (k, rows) float32 block of products stays in L2 (≤ 1 MiB).

    512 rows amortise packing the centroid operand: ≥ 93 % of the rate of one big
    GEMM at 768-d/k=500 and 39-d/k=100 (``benchmarks/bench_assign.py``).
    """
    return max(64, min(512, (1 << 18) // max(k, 1)))


@njit(cache=True, fastmath=FASTMATH)
def row_sqnorms_into(x: np.ndarray, out: np.ndarray) -> None:
    """``out[i]`` = squared L2 norm of row ``i``, in float32 (the precision of the GEMM)."""
    for i in range(x.shape[0]):
        s = np.float32(0.0)
        for j in range(x.shape[1]):
            s += x[i, j] * x[i, j]
        out[i] = s


@njit(cache=True)
def row_sqnorms(x: np.ndarray) -> np.ndarray:
    """Squared L2 norm of each row, in float32.

    Serial on purpose: it is memory-bound, and every parallel launch is a barrier
    that costs a scheduler slice when the machine is oversubscribed.
    """
    out = np.empty(x.shape[0], dtype=np.float32)
    row_sqnorms_into(x, out)
    return out


@njit(cache=True, fastmath=FASTMATH)
def argmin_columns(gt, cnorm, xnorm, labels, dists):
    """Column-wise nearest centroid of a block of products ``gt[j, r] = −2 c_j·x_r``.

    ``labels[r]`` = the lowest ``j`` minimising ``gt[j, r] + cnorm[j]`` (a strict ``<``
    keeps the first of equal values, like ``np.argmin``); ``dists[r]`` = that minimum
    plus ``xnorm[r]``, clipped at 0.  The inner loop runs along ``r`` (contiguous,
    independent lanes), so it vectorises: one load, add, compare and two blends per
    product, a few percent of the GEMM that made it.
    """
    k, m = gt.shape
    c0 = cnorm[0]
    for r in range(m):
        dists[r] = gt[0, r] + c0
        labels[r] = 0
    for j in range(1, k):
        cj = cnorm[j]
        row = gt[j]
        for r in range(m):
            v = row[r] + cj
            if v < dists[r]:
                dists[r] = v
                labels[r] = j
    for r in range(m):
        dists[r] = max(xnorm[r] + dists[r], np.float32(0.0))


@njit(cache=True)
def assign_block(x, s, e, c_m2, cnorm, gt, xnorm, labels, dists):
    """Assign rows s:e with flat scratch ``gt`` (≥ k·(e−s) floats) and ``xnorm`` (≥ e−s).

    The rows' norms are taken first (that brings them into cache, so neither they nor the
    sgemm read ``x`` from memory twice); one BLAS sgemm ``(−2C)·x[s:e]ᵀ`` then writes the
    (k, e−s) products, contiguous, into ``gt`` while it is cache-sized, and
    :func:`argmin_columns` reads them back from cache.
    """
    m, k = e - s, c_m2.shape[0]
    xn = xnorm[:m]
    row_sqnorms_into(x[s:e], xn)
    g = gt[: k * m].reshape((k, m))
    np.dot(c_m2, x[s:e].T, g)
    argmin_columns(g, cnorm, xn, labels[s:e], dists[s:e])


@njit(cache=True)
def even_blocks(n: int, rows: int) -> int:
    """Rows per block when ``n`` rows are cut into equal blocks of at most ``rows``."""
    if n <= rows:
        return max(n, 1)
    return -(-n // -(-n // rows))


@njit(cache=True)
def _assign_range(x, s0, e0, c_m2, cnorm, labels, dists, rows):
    """Serial assignment of rows s0:e0 (small inputs, or one parallel task)."""
    rows = even_blocks(e0 - s0, rows)  # no short tail block
    gt = np.empty(c_m2.shape[0] * rows, dtype=np.float32)
    xnorm = np.empty(rows, dtype=np.float32)
    for s in range(s0, e0, rows):
        assign_block(x, s, min(e0, s + rows), c_m2, cnorm, gt, xnorm, labels, dists)


@njit(parallel=True, cache=True)
def _assign_parallel(x, c_m2, cnorm, labels, dists, rows, n_tasks):
    n = x.shape[0]
    per_task = (n + n_tasks - 1) // n_tasks
    for t in prange(n_tasks):
        _assign_range(x, t * per_task, min(n, (t + 1) * per_task), c_m2, cnorm, labels, dists, rows)


def assign_into(x, c_m2, cnorm, labels, dists) -> None:
    """Fill labels/dists for float32 C-contiguous ``x``; parallel only if worth it.

    Callers must hold :func:`blas_single_thread`.
    """
    n, k = x.shape[0], c_m2.shape[0]
    n_tasks = min(4 * get_num_threads(), n // _MIN_TASK_ROWS)
    if n_tasks > 1:
        _assign_parallel(x, c_m2, cnorm, labels, dists, gemm_rows(k), n_tasks)
    else:
        _assign_range(x, 0, n, c_m2, cnorm, labels, dists, gemm_rows(k))


def prepare_centroids(centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(−2·C contiguous (k, d), ‖c‖²) in float32, the form the kernels consume."""
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    return np.ascontiguousarray(-2.0 * c), row_sqnorms(c)


def assign_labels(
    x: np.ndarray, centroids: np.ndarray, *, chunk: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid for each row of ``x``.

    Returns ``(labels int32 (n,), squared distances float32 (n,))``.  ``x`` is
    converted to float32 ``chunk`` rows at a time (default ``DEFAULT_CHUNK``), so a
    float16 or memory-mapped array never needs a full float32 copy; a float32
    C-contiguous ``x`` needs no conversion and by default goes in one parallel launch.
    """
    x, c = np.asarray(x), np.asarray(centroids)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"shape mismatch: x {x.shape}, centroids {c.shape}")
    if c.shape[0] == 0:
        raise ValueError("need at least one centroid")
    n = x.shape[0]
    labels = np.empty(n, dtype=np.int32)
    dists = np.empty(n, dtype=np.float32)
    c_m2, cnorm = prepare_centroids(c)
    if chunk is None:
        plain = x.dtype == np.float32 and x.flags.c_contiguous
        chunk = max(n, 1) if plain else DEFAULT_CHUNK
    with blas_single_thread():
        for s in range(0, n, chunk):
            xc = np.ascontiguousarray(x[s : s + chunk], dtype=np.float32)
            e = s + len(xc)
            assign_into(xc, c_m2, cnorm, labels[s:e], dists[s:e])
    return labels, dists
