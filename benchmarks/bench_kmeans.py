"""k-means on ~200k x 39 MFCC frames: ours vs fairseq's sklearn recipe vs faiss.

    python benchmarks/bench_kmeans.py [--k 100] [--frames 200000] [--repeats 3]

All three are timed in the same process on the same frames, and their centroids are
scored identically (mean squared distance per frame, computed with our
``assign_labels``).  The HuBERT issue goal is: inertia no worse than sklearn's in at
most a fifth of its time.  Prints a table; never asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from _frames import load_frames

from ssl_graph.kernels.assign import assign_labels
from ssl_graph.kernels.kmeans import fit_kmeans


def score(x: np.ndarray, c: np.ndarray) -> float:
    return float(assign_labels(x, c)[1].mean(dtype=np.float64))


def timed(fn, repeats: int) -> tuple[list[float], np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def run_ours(x, k, seed, **kw):
    return fit_kmeans(x, k, seed=seed, **kw).centroids


def run_sklearn(x, k, seed):
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(  # fairseq examples/hubert/simple_kmeans/learn_kmeans.py
        n_clusters=k,
        init="k-means++",
        max_iter=100,
        batch_size=10000,
        tol=0.0,
        max_no_improvement=100,
        init_size=None,
        n_init=20,
        reassignment_ratio=0.0,
        compute_labels=False,
        random_state=seed,
    )
    return km.fit(x).cluster_centers_


def run_faiss(x, k, seed, niter):
    import faiss

    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, verbose=False)
    km.train(x)
    return km.centroids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3, help="runs of ours and faiss (median)")
    ap.add_argument("--sklearn-repeats", type=int, default=1)
    ap.add_argument("--faiss-niter", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    x, source = load_frames(args.frames)
    print(
        f"frames: {x.shape} from {source}; k={args.k}; cpus={os.cpu_count()}; "
        f"load avg before: {os.getloadavg()[0]:.2f}"
    )
    t0 = time.perf_counter()
    fit_kmeans(x[:5000], 8, max_iter=2)  # numba cache load / compile, not timed below
    print(f"numba load/compile warm-up: {time.perf_counter() - t0:.2f} s")

    rows = []
    for name, fn, reps in [
        ("ours (fit_kmeans defaults)", lambda: run_ours(x, args.k, args.seed), args.repeats),
        (
            "ours algorithm='minibatch'",
            lambda: run_ours(x, args.k, args.seed, algorithm="minibatch"),
            args.repeats,
        ),
        (
            "sklearn MiniBatchKMeans (HuBERT)",
            lambda: run_sklearn(x, args.k, args.seed),
            args.sklearn_repeats,
        ),
        (
            f"faiss Kmeans niter={args.faiss_niter}",
            lambda: run_faiss(x, args.k, args.seed, args.faiss_niter),
            args.repeats,
        ),
    ]:
        try:
            times, c = timed(fn, reps)
        except ImportError as err:
            print(f"skip {name}: {err}")
            continue
        rows.append((name, statistics.median(times), min(times), score(x, c)))

    ref = next((r for r in rows if r[0].startswith("sklearn")), None)
    print(
        f"\n{'method':36s} {'median s':>9s} {'min s':>8s} {'inertia':>10s} "
        f"{'sk time / t':>12s} {'inertia / sk':>13s}"
    )
    for name, med, best, inertia in rows:
        ratio_t = f"{ref[1] / med:12.1f}" if ref else f"{'-':>12s}"
        ratio_i = f"{inertia / ref[3]:13.4f}" if ref else f"{'-':>13s}"
        print(f"{name:36s} {med:9.2f} {best:8.2f} {inertia:10.2f} {ratio_t} {ratio_i}")
    print(f"load avg after: {os.getloadavg()[0]:.2f} (timings are noisy on a shared machine)")
    if ref:
        ours = rows[0]
        print(
            f"goal (>= 5x faster, inertia ratio <= 1): {ref[1] / ours[1]:.1f}x, "
            f"{ours[3] / ref[3]:.4f}"
        )


if __name__ == "__main__":
    main()
