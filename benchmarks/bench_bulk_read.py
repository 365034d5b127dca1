"""Bulk reads of a ragged node vs reading one fairseq-style ``.npy``: MB/s and the ratio.

    python benchmarks/bench_bulk_read.py [--utts 2000] [--frames 400] [--dim 39] [--repeats 5]

Writes a synthetic ragged node through the real writer (commits of ``COMMIT_BYTES``, parts
streamed in 4 MB chunks, float frames uncompressed, as a run commits them) into a temporary
store, and the same frames as one ``.npy``; then reads all of it, interleaved, with two peers:
``np.load`` of the whole file (a memcpy from the page cache), and fairseq's feature loader
(``np.load(mmap_mode="r")`` sliced per utterance by the ``.len`` offsets, as ``simple_kmeans``
reads its dumps); then ours: ``handle.to_numpy()``, iteration over the handle (bulk, storage
order; a reader reads each chunk file once, checks its CRC-32C and decodes those bytes — once
per reader, so repeated passes, epochs, skip the check while "first read" pays it), and the
per-utterance ``handle.features(utt)`` loop (its repeats hit the reader's chunk cache).
The issue's goal for the bulk path is ≥ 0.5× the ``.npy`` rate. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from ssl_graph.api import NodeHandle, Project
from ssl_graph.specs.nodes import MFCC, Corpus
from ssl_graph.store.ragged import RaggedWriter
from ssl_graph.store.store import Store, node_key


def build(root: Path, n_utts: int, frames: int, dim: int):
    rng = np.random.default_rng(0)
    lengths = rng.integers(frames // 2, frames * 3 // 2, n_utts)
    store = Store(str(root / "store"))
    node = MFCC(corpus=Corpus(root=str(root)))  # any per-utterance node kind; only its key matters
    key = node_key(node.kind, node.fingerprint)
    writer = RaggedWriter(store, key, {"kind": node.kind}, {})
    chunks = []
    for i, n in enumerate(lengths):
        a = rng.standard_normal((int(n), dim)).astype(np.float32)
        chunks.append(a)
        writer.add(f"utt-{i:06d}", a, "v")
    writer.commit(final=True)
    np.save(root / "all.npy", np.concatenate(chunks))
    spec = root / "s.py"
    spec.write_text("")
    handle = NodeHandle(Project(spec, store), "feats", node)
    return handle, sum(a.nbytes for a in chunks)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utts", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--dim", type=int, default=39)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--single", type=int, default=300, help="utterances for the per-utt loop")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        handle, nbytes = build(Path(tmp), args.utts, args.frames, args.dim)
        npy = Path(tmp) / "all.npy"
        utts = handle.utterances()
        mb = nbytes / 1e6
        print(f"{args.utts} utterances, {mb:.0f} MB float32 ({args.dim}-d); cpus={os.cpu_count()}; "
              f"load avg {os.getloadavg()[0]:.2f}")
        for threads in (1, 2):
            with threadpool_limits(threads):
                rows = {"np.load(.npy)": [], "fairseq mmap slices": [], "handle.to_numpy()": [],
                        "iterate handle": [], "iterate, first read": [],
                        f"features(utt) loop ×{args.single}": []}
                offsets = np.concatenate([[0], np.cumsum([handle._reader.length(u) for u in utts])])

                def fairseq_slices(offsets=offsets):
                    mm = np.load(npy, mmap_mode="r")
                    return [np.array(mm[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]

                for _ in range(args.repeats):  # interleaved, best of N each
                    rows["np.load(.npy)"].append(mb / timed(lambda: np.load(npy)))
                    rows["fairseq mmap slices"].append(mb / timed(fairseq_slices))
                    rows["handle.to_numpy()"].append(mb / timed(handle.to_numpy))
                    rows["iterate handle"].append(mb / timed(lambda: sum(len(a) for _, a in handle)))
                    # a new handle verifies every chunk's checksum again (the cold case)
                    fresh = NodeHandle(handle.project, handle.name, handle.node)
                    rows["iterate, first read"].append(
                        mb / timed(lambda f=fresh: sum(len(a) for _, a in f)))
                    sub = utts[: args.single]
                    sub_mb = sum(handle._reader.length(u) for u in sub) * args.dim * 4 / 1e6
                    rows[f"features(utt) loop ×{args.single}"].append(
                        sub_mb / timed(lambda s=sub: [handle.features(u) for u in s]))
                peer, fs = max(rows["np.load(.npy)"]), max(rows["fairseq mmap slices"])
                print(f"threads={threads}")
                for name, rates in rows.items():
                    print(f"  {name:28s} {max(rates):8.1f} MB/s   {max(rates) / peer:5.2f}× .npy"
                          f"   {max(rates) / fs:5.2f}× fairseq")


if __name__ == "__main__":
    main()
