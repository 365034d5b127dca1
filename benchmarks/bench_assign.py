"""Label assignment against the GEMM rate of the same shape, 39-d/k=100 and 768-d/k=500.

    python benchmarks/bench_assign.py [--check] [--threads 1,2] [--rounds 5]
                                      [--frames39 200000] [--frames768 50000]
                                      [--coretype SkylakeX]

The GEMM x·Cᵀ is the unavoidable work of nearest-centroid assignment, so the bound is
this machine's GEMM rate on the same shape.  Two references are timed, interleaved
with ours in every round (round → threads → method; each cell the best CPU time of
the rounds, the median in brackets):

* ``gemm numpy``: numpy's ``x @ Cᵀ`` in one call (numpy's BLAS, writing the full
  n × k product to memory);
* ``gemm blocks``: the very sgemm calls ours makes (Numba ``np.dot`` → scipy's BLAS),
  512-row blocks into a cache-sized buffer, without the argmin.

``of GEMM`` is our rate over the *faster* of the two (GFLOP per CPU second, so a loaded
machine does not bias it; wall-clock rates are printed too).  The BLAS library and the
kernel OpenBLAS picked for each side are printed (threadpoolctl); ``--coretype`` reruns
the script with ``OPENBLAS_CORETYPE`` set (e.g. ``SkylakeX``: this box's environment
forces ``Haswell``, i.e. AVX2).  Labels are compared with fairseq's formula in numpy:
frames that differ must be near-ties (their two distances within float32 round-off).

``--check``: one thread only, and the last line is
``gemm_fraction_39=<fraction> gemm_fraction_768=<fraction>``.  Prints; never asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
from _frames import layer_frames_path, load_frames
from numba import njit, prange, set_num_threads
from threadpoolctl import threadpool_info, threadpool_limits

from ssl_graph.kernels.assign import (
    assign_labels,
    blas_single_thread,
    gemm_rows,
    prepare_centroids,
)


@njit(cache=False)
def _gemm_range(x, c_m2, s0, e0, rows):
    gt = np.empty((c_m2.shape[0], rows), dtype=np.float32)
    for s in range(s0, e0 - rows + 1, rows):
        np.dot(c_m2, x[s : s + rows].T, gt)


@njit(parallel=True, cache=False)
def gemm_blocks(x, c_m2, rows, n_tasks):
    """The sgemm calls of ``assign_labels`` (full blocks only), nothing else."""
    per = -(-x.shape[0] // n_tasks)
    for t in prange(n_tasks):
        _gemm_range(x, c_m2, t * per, min(x.shape[0], (t + 1) * per), rows)


def numpy_brute_force(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """fairseq dump_km_label.py, in numpy: ‖x‖² − 2x·C + ‖C‖², argmin."""
    dist = (x**2).sum(1, keepdims=True) - 2 * x @ c.T + (c**2).sum(1)[None, :]
    return dist.argmin(axis=1)


def blas_kernels() -> str:
    """Which OpenBLAS build and kernel each side calls (numpy's; scipy's = Numba's)."""
    import scipy.linalg.cython_blas  # noqa: F401  (loaded by assign.py anyway)

    out = []
    for i in threadpool_info():
        if i["user_api"] == "blas":
            who = "numpy" if "numpy" in i["filepath"] else "scipy/Numba" if "scipy" in i[
                "filepath"] else os.path.basename(i["filepath"])
            out.append(f"{who}: {i['internal_api']} {i['version']} {i.get('architecture')}")
    return "; ".join(out)


def timed(fn) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - t0


def near_tie_report(x, c, ours, ref) -> str:
    """Agreement with fairseq's formula; for differing frames, how close the two were."""
    bad = np.flatnonzero(ours != ref)
    if not len(bad):
        return "labels identical to fairseq's formula on all frames"
    xb = x[bad].astype(np.float64)
    d_ours = ((xb - c[ours[bad]]) ** 2).sum(1)
    d_ref = ((xb - c[ref[bad]]) ** 2).sum(1)
    scale = (xb**2).sum(1) + (c[ours[bad]].astype(np.float64) ** 2).sum(1)
    gap = np.abs(d_ours - d_ref) / scale
    return (f"labels agree with fairseq's formula on {1 - len(bad) / len(x):.4%} of frames; "
            f"the {len(bad)} others are near-ties: the two distances differ by at most "
            f"{gap.max():.1e} of ‖x‖²+‖c‖² (float32 round-off of the GEMM is ~1e-7·√d)")


def bench_shape(name, x, k, threads, rounds, brute):
    n, d = x.shape
    c = x[np.random.default_rng(0).choice(n, k, replace=False)].copy()
    ct = np.ascontiguousarray(c.T)
    c_m2, _ = prepare_centroids(c)
    flops = 2.0 * n * d * k
    rows = gemm_rows(k)

    def gemm_numpy(t):
        with threadpool_limits(t, user_api="blas"):
            return timed(lambda: x @ ct)

    def gemm_blk(t):
        set_num_threads(t)
        with blas_single_thread():
            return timed(lambda: gemm_blocks(x, c_m2, rows, t))

    def ours(t):
        set_num_threads(t)
        return timed(lambda: assign_labels(x, c))

    def brute_force(t):
        with threadpool_limits(t, user_api="blas"):
            return timed(lambda: numpy_brute_force(x, c))

    methods = {"gemm numpy (one call)": gemm_numpy, "gemm blocks (our sgemm calls)": gemm_blk,
               "ours assign_labels": ours}
    if brute:
        methods["numpy brute force (fairseq)"] = brute_force
    for t in threads:  # warm up: compile, page in, spin up BLAS threads
        for fn in methods.values():
            fn(t)
    cpu: dict = {}
    wall: dict = {}
    for _ in range(rounds):
        for t in threads:
            for m, fn in methods.items():
                cs, ws = fn(t)
                cpu.setdefault((m, t), []).append(cs)
                wall.setdefault((m, t), []).append(ws)
    print(f"\n{name}: {n:,} x {d}, k={k}, {rows}-row blocks; {flops / 1e9:.1f} GFLOP per pass; "
          f"best of {rounds} interleaved rounds [median]")
    print(f"{'method':31s} {'thr':>3s} {'CPU s':>17s} {'GFLOP/CPU-s':>12s} {'GFLOP/wall-s':>13s} "
          f"{'of GEMM (CPU)':>14s} {'of GEMM (wall)':>15s}")
    fractions = {}
    for t in threads:
        best_ref_cpu = min(min(cpu[(m, t)]) for m in list(methods)[:2])
        best_ref_wall = min(min(wall[(m, t)]) for m in list(methods)[:2])
        for m in methods:
            bc, bw = min(cpu[(m, t)]), min(wall[(m, t)])
            med = statistics.median(cpu[(m, t)])
            print(f"{m:31s} {t:3d} {bc:8.3f} [{med:6.3f}] {flops / bc / 1e9:12.1f} "
                  f"{flops / bw / 1e9:13.1f} {best_ref_cpu / bc:14.0%} {best_ref_wall / bw:15.0%}")
        fractions[t] = best_ref_cpu / min(cpu[("ours assign_labels", t)])
    set_num_threads(threads[0])
    print(near_tie_report(x, c, assign_labels(x, c)[0], numpy_brute_force(x, c)))
    return fractions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="one thread; end with the fractions")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames39", type=int, default=200_000)
    ap.add_argument("--frames768", type=int, default=50_000)
    ap.add_argument("--coretype", help="rerun with OPENBLAS_CORETYPE set to this")
    args = ap.parse_args()
    if args.coretype and os.environ.get("OPENBLAS_CORETYPE") != args.coretype:
        env = dict(os.environ, OPENBLAS_CORETYPE=args.coretype)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    threads = [1] if args.check else [int(t) for t in args.threads.split(",")]

    x39, source = load_frames(args.frames39)
    x768 = np.load(layer_frames_path(max(args.frames768, 200_000)), mmap_mode="r")
    x768 = np.ascontiguousarray(x768[: args.frames768])
    print(f"cpus={os.cpu_count()}; load avg before: {os.getloadavg()[0]:.2f}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"BLAS: {blas_kernels()}")
    print(f"39-d frames: {source}; 768-d: layer-like frames (benchmarks/_frames.py)")
    f39 = bench_shape("39-d MFCC, k=100", x39, 100, threads, args.rounds, not args.check)
    f768 = bench_shape("768-d layer, k=500", x768, 500, threads, args.rounds, not args.check)
    print(f"\nload avg after: {os.getloadavg()[0]:.2f} (CPU-s rates; the box is shared)")
    for t in threads[1:]:
        print(f"gemm_fraction_39_t{t}={f39[t]:.3f} gemm_fraction_768_t{t}={f768[t]:.3f}")
    print(f"gemm_fraction_39={f39[1]:.3f} gemm_fraction_768={f768[1]:.3f}"
          if 1 in threads else "")


if __name__ == "__main__":
    main()
