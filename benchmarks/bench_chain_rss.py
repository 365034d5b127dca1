"""Peak RSS of a LayerFeatures → KMeans → Labels chain at 768-d: memory must not grow with data.

    python benchmarks/bench_chain_rss.py [--frames 1000000] [--dim 768] [--k 500]

A model forward over 1M frames would take hours on a laptop CPU, so the features node is
*synthesized*: clustered 768-d float32 frames written through the real ``RaggedWriter`` in
batches of utterances, as the LayerFeatures op hands them to the runner (commits sized in bytes,
parts streamed in chunk-aligned blocks). Then the same code the KMeans and Labels ops run:
``SampledFrames`` (seeded per-utterance sample, streamed from the store every pass) into
``fit_kmeans``, and ``RaggedReader.get_many`` per Labels batch of 256 utterances into ``assign``,
written through a second ``RaggedWriter``. Each stage runs in its own process, so its peak RSS
(``ru_maxrss``) is its own; the baseline is a process that only imported the same modules.
Prints; never asserts. The stated bound is in README.md (section "Memory at scale").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KEY, LABELS = "nodes/layerfeatures-synthetic", "nodes/labels-synthetic"
UTT_FRAMES = 400  # ~8 s at 50 Hz
BATCH_UTTS = 16  # LayerFeatures op batch (runtime knob)
LABEL_BATCH = 256  # LabelsOp.batch_utts


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _imports():
    from ssl_graph.kernels.kmeans import fit_kmeans
    from ssl_graph.ops.kmeans import SampledFrames
    from ssl_graph.ops.labels import assign
    from ssl_graph.store.ragged import RaggedReader, RaggedWriter
    from ssl_graph.store.store import Store

    return Store, RaggedWriter, RaggedReader, SampledFrames, fit_kmeans, assign


def stage_baseline(root: Path, args) -> dict:
    _imports()
    return {}


def stage_write(root: Path, args) -> dict:
    Store, RaggedWriter, *_ = _imports()
    store = Store(str(root / "store"))
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((64, args.dim)).astype(np.float32) * 3
    w = RaggedWriter(store, KEY, {"kind": "LayerFeatures", "name": "feats"}, {})
    n_utts = args.frames // UTT_FRAMES
    for b in range(0, n_utts, BATCH_UTTS):
        for i in range(b, min(n_utts, b + BATCH_UTTS)):
            x = rng.standard_normal((UTT_FRAMES, args.dim), dtype=np.float32)
            x += centers[rng.integers(0, len(centers), UTT_FRAMES)]
            w.add(f"utt-{i:07d}", x, "v")
    w.commit(final=True)
    rec = store.record(KEY)
    return {"commits": rec["commit"], "parts": len(rec["parts"]),
            "index_bytes": sum(s["size"] for s in rec["index"]["segments"]),
            "segments": len(rec["index"]["segments"])}


def stage_kmeans(root: Path, args) -> dict:
    Store, _, RaggedReader, SampledFrames, fit_kmeans, _ = _imports()
    store = Store(str(root / "store"))
    reader = RaggedReader(store, KEY)
    x = SampledFrames(reader, reader.utterances(), args.fit_fraction, 0, args.dim)
    res = fit_kmeans(x, args.k, seed=0, max_iter=args.max_iter)
    np.save(root / "centroids.npy", np.asarray(res.centroids, np.float32))
    return {"fit_frames": x.n_frames, "n_iter": int(res.n_iter)}


def stage_labels(root: Path, args) -> dict:
    Store, RaggedWriter, RaggedReader, _, _, assign = _imports()
    store = Store(str(root / "store"))
    reader = RaggedReader(store, KEY)
    centroids = np.load(root / "centroids.npy")
    w = RaggedWriter(store, LABELS, {"kind": "Labels", "name": "labels"}, {})
    utts = reader.utterances()
    for b in range(0, len(utts), LABEL_BATCH):
        batch = utts[b:b + LABEL_BATCH]
        for u, lab in zip(batch, assign("labels", "feats", batch, reader.get_many(batch),
                                        centroids, 100_000)):
            w.add(u, lab, "v")
    w.commit(final=True)
    return {"labelled": len(utts)}


STAGES = {"baseline": stage_baseline, "write": stage_write, "kmeans": stage_kmeans,
          "labels": stage_labels}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--fit-fraction", type=float, default=0.1)
    ap.add_argument("--max-iter", type=int, default=3)
    ap.add_argument("--stage", choices=list(STAGES))
    ap.add_argument("--root")
    args = ap.parse_args()
    if args.stage:  # one stage, in its own process
        t0 = time.perf_counter()
        out = STAGES[args.stage](Path(args.root), args)
        print(json.dumps({**out, "peak_mb": _peak_mb(), "seconds": time.perf_counter() - t0}))
        return
    data_gb = args.frames * args.dim * 4 / 1e9
    print(f"{args.frames:,} frames × {args.dim}-d float32 = {data_gb:.2f} GB of features; "
          f"k={args.k}, fit_fraction={args.fit_fraction}; cpus={os.cpu_count()}; "
          f"load avg {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        base = None
        for stage in STAGES:
            cmd = [sys.executable, __file__, "--stage", stage, "--root", tmp,
                   *sum(([f"--{k.replace('_', '-')}", str(v)] for k, v in vars(args).items()
                         if k not in ("stage", "root")), [])]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                sys.exit(f"stage {stage} failed:\n{res.stderr[-3000:]}")
            out = json.loads(res.stdout.strip().splitlines()[-1])
            base = out["peak_mb"] if stage == "baseline" else base
            extra = ", ".join(f"{k}={v}" for k, v in out.items() if k not in ("peak_mb", "seconds"))
            print(f"  {stage:9s} peak RSS {out['peak_mb']:8.0f} MB  (+{out['peak_mb'] - base:6.0f} "
                  f"MB over imports)  {out['seconds']:6.1f} s  {extra}")


if __name__ == "__main__":
    main()
