"""k-means: ours (out-of-core) vs faiss vs fairseq's sklearn recipe, 1 and 2 threads.

    python benchmarks/bench_kmeans.py [--cases mfcc,layer200k,layer1m] [--repeats 3]
                                      [--quick] [--methods ours:20,oursx:20,ours:10,ours:5,faiss,sklearn:10]

Every side runs in the environment it needs: faiss-cpu bundles an old OpenBLAS
(0.3.15) that does not recognise recent CPUs and falls back to a slow generic kernel
unless ``OPENBLAS_CORETYPE`` names one (``--faiss-coretype``, default ``SkylakeX``: the
AVX-512 kernel, right for any AVX-512 x86 CPU such as this Zen 5; ``Haswell``/``Zen``
are AVX2).  Ours gets ``--ours-coretype`` (default: unset, i.e. our OpenBLAS detects
the CPU itself; this box's environment forces ``Haswell``, which the default removes).
Each worker reports the BLAS library and kernel it ran (threadpoolctl), printed per
row.  ``--quick``: 50k × 768 (first rows of the 200k set) and 39-d, 2 repeats.

Cases: ``mfcc`` = 200k × 39 HuBERT MFCC frames, k=100 (iteration 1); ``layer200k`` /
``layer1m`` = 200k / 1M × 768 layer-like frames, k=500 (iteration 2; see
``_frames.layer_frames_path``).  Every fit runs in a fresh subprocess (so peak RSS is
its own), with OMP/BLAS/Numba limited to the thread count, and runs are interleaved
(repeat → threads → method) so a noisy neighbour hits every method alike; each cell
is the best of the repeats.  Ours streams the frames from the ``.npy`` file in
bounded chunks; faiss and sklearn need them in RAM.  All centroids are scored the
same way (exact mean squared distance per frame over all frames).

``ours:20`` uses ``max_iter`` = faiss's ``niter`` (20: the same iterations on all
points, plus ours' warm start on a sample and one pass scoring the returned
centroids); ``ours:N`` N of them (``ours:10``/``ours:5`` show the CPU time at which
ours already reaches faiss's 20-iteration inertia); ``ours:tol`` the default stopping
rule (relative gain < 1e-4); ``oursx:N`` the same with the candidate lists off
(``algorithm="lloyd_exhaustive"``: every pass a full GEMM for every frame; from 128-d up
ours keeps per-frame candidate lists and bounds that skip most of a late pass's GEMM and
give the same labels, so ``oursx`` reaches the same centroids, only slower).  ``sklearn`` is fairseq's ``learn_kmeans.py`` MiniBatchKMeans (batch 10000,
max_iter 100, n_init 20, k-means++) on all frames; ``sklearn:P`` the same on a seeded P %
frame sample (fairseq's ``--percent``; HuBERT fits 768-d features on 10 %), still scored
on all frames.  At 768-d sklearn takes very long here, so every sklearn fit is killed
after ``--sklearn-cap`` seconds and reported as ``>cap``.  Prints a table and ratios;
never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _frames import layer_frames_path, load_frames

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name: (frames, dim, k)
    "mfcc": (200_000, 39, 100),
    "layer50k": (50_000, 768, 500),
    "layer200k": (200_000, 768, 500),
    "layer1m": (1_000_000, 768, 500),
}
NITER = 20


def data_path(case: str) -> Path:
    n, dim, _ = CASES[case]
    if dim == 768 and n < 200_000:  # the first n rows of the 200k set
        from _frames import CACHE

        full = layer_frames_path(200_000)
        path = CACHE / f"{full.stem}_first{n}.npy"
        if not path.exists():
            np.save(path, np.load(full, mmap_mode="r")[:n])
        return path
    if dim == 768:
        return layer_frames_path(n)
    from _frames import CACHE

    path = CACHE / f"mfcc_{n}.npy"
    if not path.exists():
        np.save(path, load_frames(n)[0])
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def blas_in_use(method: str) -> str:
    """The BLAS build and kernel this side's GEMMs run (faiss: its bundled OpenBLAS;
    ours: scipy's, which Numba's np.dot calls; sklearn: numpy's/scipy's)."""
    from threadpoolctl import threadpool_info

    libs = [i for i in threadpool_info() if i["user_api"] == "blas"]
    if method == "faiss":
        libs = [i for i in libs if "faiss" in i["filepath"] or "openblaso" in i["filepath"]]
    elif method.startswith("ours"):
        libs = [i for i in libs if "scipy.libs" in i["filepath"]] or libs
    return ", ".join(f"{i['internal_api']} {i['version']} {i.get('architecture')}" for i in libs)


def worker(method: str, path: str, k: int, seed: int) -> dict:
    """One timed fit in this process; returns its measurements."""
    from ssl_graph.kernels.kmeans import fit_kmeans
    from ssl_graph.kernels.kmeans_lloyd import assign_pass
    from ssl_graph.kernels.kmeans_source import NpyFileSource

    for dim in (8, 128):  # load the Numba cache (candidate-list kernels from 128-d) before timing
        warm = np.random.default_rng(0).standard_normal((5000, dim)).astype(np.float32)
        fit_kmeans(warm, 8, max_iter=3)
    base = peak_rss_mb()
    n_iter = NITER
    if method.startswith("ours"):
        source = NpyFileSource(path)
        budget = method.partition(":")[2]  # ours:N = max_iter N; ours:tol = defaults
        kw = {} if budget == "tol" else {"max_iter": int(budget or NITER)}
        if method.startswith("oursx"):  # candidate lists off: every pass exhaustive
            kw["algorithm"] = "lloyd_exhaustive"
        t0, c0 = time.perf_counter(), time.process_time()
        res = fit_kmeans(source, k, seed=seed, **kw)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        centroids, n_iter = res.centroids, res.n_iter
    else:
        x = np.load(path)
        percent = method.partition(":")[2]
        if method.startswith("sklearn") and percent:  # fairseq's --percent, frames not utts
            rng = np.random.default_rng(seed)
            pick = np.sort(rng.choice(len(x), int(len(x) * float(percent) / 100), replace=False))
            x = np.ascontiguousarray(x[pick])
        t0, c0 = time.perf_counter(), time.process_time()
        if method == "faiss":
            import faiss

            km = faiss.Kmeans(x.shape[1], k, niter=NITER, seed=seed, verbose=False,
                              max_points_per_centroid=1 << 30)  # all points, like ours
            km.train(x)
            centroids = km.centroids
            mppc = km.cp.max_points_per_centroid  # faiss subsamples to mppc·k points
            n_iter = f"{NITER} on {min(len(x), mppc * k):,} of {len(x):,} points (mppc {mppc})"
        else:
            from sklearn.cluster import MiniBatchKMeans

            km = MiniBatchKMeans(  # fairseq examples/hubert/simple_kmeans/learn_kmeans.py
                n_clusters=k, init="k-means++", max_iter=100, batch_size=10000, tol=0.0,
                max_no_improvement=100, init_size=None, n_init=20, reassignment_ratio=0.0,
                compute_labels=False, random_state=seed,
            )
            centroids = km.fit(x).cluster_centers_
            n_iter = int(km.n_steps_)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        del x
    peak = peak_rss_mb()
    from ssl_graph.kernels.assign import blas_single_thread

    with blas_single_thread():
        inertia = assign_pass(NpyFileSource(path), np.asarray(centroids, np.float32))[2]
    return {"wall": wall, "cpu": cpu, "inertia": inertia, "n_iter": n_iter,
            "peak_rss_mb": peak, "base_rss_mb": base, "blas": blas_in_use(method)}


def run_worker(method: str, path: Path, k: int, threads: int, seed: int,
               cap: float | None = None, coretype: str = "") -> dict | None:
    """One fit in a fresh subprocess; ``{"capped": cap}`` when it ran past ``cap`` seconds
    (killed; the fit time includes loading the frames, so the cap is an upper bound).
    ``coretype``: ``OPENBLAS_CORETYPE`` for it ("" = unset: OpenBLAS detects the CPU)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=str(ROOT))
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    cmd = [sys.executable, __file__, "--worker", method, "--path", str(path), "--k", str(k),
           "--seed", str(seed)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=cap)
    except subprocess.TimeoutExpired:  # subprocess.run kills (and reaps) the child it started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        print(f"  {method} t={threads}: stopped at the {cap:.0f} s cap after {cpu:.0f} CPU s, "
              "not finished", flush=True)
        return {"capped": cap, "cpu": cpu}
    if out.returncode != 0:
        print(f"  {method} t={threads} failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="mfcc,layer200k")
    ap.add_argument("--methods", default="ours:20,oursx:20,ours:10,ours:5,faiss",
                    help="also sklearn:10,sklearn (fairseq's recipe; slow at 768-d)")
    ap.add_argument("--faiss-coretype", default="SkylakeX",
                    help="OPENBLAS_CORETYPE for faiss's bundled OpenBLAS")
    ap.add_argument("--ours-coretype", default="",
                    help="OPENBLAS_CORETYPE for ours and sklearn (default: unset, autodetect)")
    ap.add_argument("--quick", action="store_true", help="cases mfcc,layer50k; 2 repeats")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sklearn-repeats", type=int, default=1)
    ap.add_argument("--sklearn-cap", type=float, default=900.0,
                    help="seconds after which an sklearn fit is stopped and reported as >cap")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.path, args.k, args.seed)))
        return

    if args.quick:
        args.cases, args.repeats = "mfcc,layer50k", 2
    methods = args.methods.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    print(f"cpus={os.cpu_count()}; load avg before: {os.getloadavg()[0]:.2f}; "
          f"OPENBLAS_CORETYPE faiss={args.faiss_coretype or '(unset)'} "
          f"ours={args.ours_coretype or '(unset)'}")
    for case in args.cases.split(","):
        n, dim, k = CASES[case]
        path = data_path(case)
        best: dict[tuple[str, int], dict] = {}
        capped: dict[tuple[str, int], dict] = {}
        for rep in range(args.repeats):
            for t in threads:
                for m in methods:
                    sk = m.startswith("sklearn")
                    if sk and (rep >= args.sklearn_repeats or (m, t) in capped):
                        continue
                    ct = args.faiss_coretype if m == "faiss" else args.ours_coretype
                    r = run_worker(m, path, k, t, args.seed, args.sklearn_cap if sk else None, ct)
                    if r is None:
                        continue
                    if "capped" in r:
                        capped[(m, t)] = r
                        continue
                    print(f"  {case} rep {rep} t={t} {m:9s} wall {r['wall']:7.2f} "
                          f"cpu {r['cpu']:7.2f} inertia {r['inertia']:.4f} it {r['n_iter']} "
                          f"rss {r['peak_rss_mb']:.0f} MB; BLAS {r['blas']}", flush=True)
                    b = best.setdefault((m, t), dict(r))
                    for key in ("wall", "cpu", "peak_rss_mb"):
                        b[key] = min(b[key], r[key])
        print(f"\n{case}: {n:,} x {dim}, k={k} (best of {args.repeats}; sklearn "
              f"{args.sklearn_repeats})")
        print(f"{'method':10s} {'thr':>3s} {'wall s':>8s} {'CPU s':>8s} {'inertia':>10s} "
              f"{'iters':>6s} {'peak RSS MB':>12s} {'faiss cpu/ours':>15s} {'faiss wall/ours':>16s} "
              f"{'inertia/faiss':>14s} {'inertia/sk':>11s}")
        for (m, t), r in sorted(best.items(), key=lambda kv: (kv[0][1], methods.index(kv[0][0]))):
            fa, sk = best.get(("faiss", t)), best.get(("sklearn", t))
            rc = f"{fa['cpu'] / r['cpu']:15.2f}" if fa else f"{'-':>15s}"
            rt = f"{fa['wall'] / r['wall']:16.2f}" if fa else f"{'-':>16s}"
            ri = f"{r['inertia'] / fa['inertia']:14.4f}" if fa else f"{'-':>14s}"
            rs = f"{r['inertia'] / sk['inertia']:11.4f}" if sk else f"{'-':>11s}"
            print(f"{m:10s} {t:3d} {r['wall']:8.2f} {r['cpu']:8.2f} {r['inertia']:10.4f} "
                  f"{str(r['n_iter']).split()[0]:>6s} {r['peak_rss_mb']:12.0f} {rc} {rt} {ri} {rs}")
        for m in methods:
            kernels = {r["blas"] for (mm, _), r in best.items() if mm == m}
            if kernels:
                print(f"  BLAS {m}: {'; '.join(sorted(kernels))}")
        for (m, t), c in sorted(capped.items(), key=lambda kv: kv[0][1]):
            print(f"{m:10s} {t:3d} {'>' + format(c['capped'], '.0f'):>8s} {c['cpu']:8.0f}  "
                  "(stopped at the wall-clock cap, CPU s used so far; no inertia)")
    print(f"load avg after: {os.getloadavg()[0]:.2f} (timings are noisy on a shared machine)")


if __name__ == "__main__":
    main()
