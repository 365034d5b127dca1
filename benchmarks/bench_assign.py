"""Label assignment throughput: ours vs numpy brute force vs this machine's GEMM rate.

    python benchmarks/bench_assign.py [--k 100] [--frames 200000] [--repeats 7]

The GEMM x·Cᵀ is the unavoidable work, so the ceiling is numpy's (multi-threaded
OpenBLAS) rate on a same-shaped float32 matmul; we print the fraction of it that the
full assignment (GEMM + argmin + distances) reaches.  Prints; never asserts.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _frames import load_frames

from ssl_graph.kernels.assign import assign_labels


def best_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def numpy_brute_force(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """fairseq dump_km_label.py, in numpy: ‖x‖² − 2x·C + ‖C‖², argmin."""
    dist = (x**2).sum(1, keepdims=True) - 2 * x @ c.T + (c**2).sum(1)[None, :]
    return dist.argmin(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    x, source = load_frames(args.frames)
    n, d = x.shape
    c = x[np.random.default_rng(0).choice(n, args.k, replace=False)].copy()
    ct = np.ascontiguousarray(c.T)
    flops = 2.0 * n * d * args.k
    print(
        f"frames: {x.shape} from {source}; k={args.k}; cpus={os.cpu_count()}; "
        f"load avg before: {os.getloadavg()[0]:.2f}"
    )

    t_gemm = best_time(lambda: x @ ct, args.repeats)
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    t_sq = best_time(lambda: a @ a, args.repeats)
    t_ours = best_time(lambda: assign_labels(x, c), args.repeats)
    t_np = best_time(lambda: numpy_brute_force(x, c), args.repeats)
    agree = float(np.mean(assign_labels(x, c)[0] == numpy_brute_force(x, c)))

    print(f"\n{'what':40s} {'best s':>8s} {'Mframes/s':>10s} {'GFLOP/s':>8s} {'of GEMM':>8s}")
    for name, t in [
        ("numpy GEMM x @ C.T only (same shape)", t_gemm),
        ("ours assign_labels", t_ours),
        ("numpy brute force (fairseq formula)", t_np),
    ]:
        print(f"{name:40s} {t:8.4f} {n / t / 1e6:10.2f} {flops / t / 1e9:8.1f} {t_gemm / t:8.0%}")
    print(
        f"{'numpy GEMM 2048^3 (machine reference)':40s} {t_sq:8.4f} {'':>10s} "
        f"{2 * 2048**3 / t_sq / 1e9:8.1f}"
    )
    print(
        f"\nours vs numpy brute force: {t_np / t_ours:.1f}x faster; labels agree on "
        f"{agree:.4%} of frames (float32 round-off decides near-ties)"
    )
    print(f"load avg after: {os.getloadavg()[0]:.2f} (timings are noisy on a shared machine)")


if __name__ == "__main__":
    main()
