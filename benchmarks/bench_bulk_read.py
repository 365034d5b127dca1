"""Bulk reads of a ragged node vs fairseq's feature reader: MB per CPU-s, every public path.

    python benchmarks/bench_bulk_read.py [--dims 39,768] [--mb 400] [--frames 400]
                                         [--repeats 5] [--batch 256] [--hugepages both]

For each feature dimension, writes a synthetic ragged node of about ``--mb`` MB through the
real writer (commits of ``COMMIT_BYTES``, parts streamed in 4 MB chunks, float frames
uncompressed, as a run commits them) into a temporary store, and the same frames as one
``.npy`` + its lengths (fairseq's dump layout). Then reads all of it, interleaved (each path
once per round, ``--repeats`` rounds, median), at 1 and 2 threads:

* peers: fairseq's reader — ``np.load(mmap_mode="r")`` sliced per utterance by the ``.len``
  offsets, each slice copied out (as ``simple_kmeans``/HuBERT's dataset read dumps); its k-means
  loader, ``learn_kmeans.py``'s ``load_feature_shard``, which concatenates the slices into one
  array as ``to_numpy()`` returns (all utterances, in file order); and a plain ``np.load`` of
  the whole file (a memcpy from the page cache);
* ours, every public bulk path: ``to_numpy()``, and into one buffer reused at every pass
  (``to_numpy(out=...)``, as an epoch loop would); ``features_many`` in batches of ``--batch``
  utterances (a data loader's pattern) and of all utterances at once; iteration over the
  handle; and the first pass of a new handle (``to_numpy``, iteration), which checks every
  chunk's CRC-32C (a reader checks a chunk once); plus the per-utterance ``features(utt)``
  loop for scale.

CPU-s is user + sys of this process (``getrusage``): fresh memory is paid in sys time as page
faults, so each row also gives the minor faults of one pass.  Within one process the fairseq
reader's per-utterance copies reuse the heap its previous pass freed (glibc raises its mmap
threshold after the first free), while one large array is always fresh pages; so the script
also measures each side's *first* read in a fresh process (``--fresh N`` rounds, interleaved,
each call in its own child), where both get new memory, as a script that loads a node once does. Whether the kernel backs large
arrays with 2 MB pages (transparent huge pages, which numpy requests with ``madvise``) changes
that cost ~10×: with ``--hugepages both`` every row is measured with numpy's request on and
off (off = what a kernel with THP disabled, or memory too fragmented for huge pages, gives).
The issue's goal: ``to_numpy()`` and ``features_many()`` ≥ 0.5× the fairseq reader. Prints;
never asserts. The machine's THP setting is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from ssl_graph.api import NodeHandle, Project
from ssl_graph.specs.nodes import MFCC, Corpus
from ssl_graph.store.ragged import RaggedWriter
from ssl_graph.store.store import Store, node_key

PEER = "fairseq mmap + .len slices"
SHARD = "fairseq load_feature_shard"  # its k-means loader: one concatenated array


def build(root: Path, n_utts: int, frames: int, dim: int):
    rng = np.random.default_rng(0)
    lengths = rng.integers(frames // 2, frames * 3 // 2, n_utts)
    store = Store(str(root / "store"))
    node = MFCC(corpus=Corpus(root=str(root)))  # any per-utterance node kind; only its key matters
    key = node_key(node.kind, node.fingerprint)
    writer = RaggedWriter(store, key, {"kind": node.kind}, {})
    npy = np.lib.format.open_memmap(root / "all.npy", mode="w+", dtype=np.float32,
                                    shape=(int(lengths.sum()), dim))
    at = 0
    for i, n in enumerate(lengths):
        a = rng.standard_normal((int(n), dim)).astype(np.float32)
        writer.add(f"utt-{i:06d}", a, "v")
        npy[at:at + n] = a
        at += n
    writer.commit(final=True)
    npy.flush()
    del npy
    (root / "all.len").write_text("".join(f"{int(n)}\n" for n in lengths))
    spec = root / "s.py"
    spec.write_text("")
    handle = NodeHandle(Project(spec, store), "feats", node)
    return handle, int(lengths.sum()) * dim * 4


def cost(fn) -> tuple[float, int]:
    """(CPU-s = user + sys, minor page faults) of one call."""
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    out = fn()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    del out  # freed after the measurement, as a caller drops it after use
    return (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt)


def paths(handle: NodeHandle, npy: Path, batch: int, single: int, reuse: bool = True) -> dict:
    """name -> (callable, fraction of the node's bytes it reads); ``reuse=False``: no
    preallocated buffer (a fresh process measures one call)."""
    utts = handle.utterances()
    lengths = [int(x) for x in (npy.with_suffix(".len")).read_text().split()]
    offsets = np.concatenate([[0], np.cumsum(lengths)])

    def fairseq():
        mm = np.load(npy, mmap_mode="r")
        return [np.array(mm[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]

    def fairseq_shard():  # learn_kmeans.py's load_feature_shard (all utterances, file order)
        mm = np.load(npy, mmap_mode="r")
        return np.concatenate([mm[a:b] for a, b in zip(offsets[:-1], offsets[1:])], axis=0)

    def many_batched():
        return [handle.features_many(utts[i:i + batch]) for i in range(0, len(utts), batch)]

    def fresh():
        return NodeHandle(handle.project, handle.name, handle.node)

    reused = handle.to_numpy()[0] if reuse else None  # one buffer, read into at every pass

    sub = utts[:single]
    sub_frac = sum(lengths[:single]) / offsets[-1]
    return {
        PEER: (fairseq, 1.0),
        SHARD: (fairseq_shard, 1.0),
        "np.load(.npy) whole": (lambda: np.load(npy), 1.0),
        "to_numpy()": (handle.to_numpy, 1.0),
        "to_numpy(out=reused buffer)": (lambda: handle.to_numpy(out=reused), 1.0),
        f"features_many ×{batch}": (many_batched, 1.0),
        "features_many (all)": (lambda: handle.features_many(utts), 1.0),
        "iterate handle": (lambda: sum(len(a) for _, a in handle), 1.0),
        "to_numpy(), first read": (lambda: fresh().to_numpy(), 1.0),
        "iterate, first read": (lambda: sum(len(a) for _, a in fresh()), 1.0),
        f"features(utt) loop ×{single}": (lambda: [handle.features(u) for u in sub], sub_frac),
    }


FRESH = (PEER, SHARD, "to_numpy()", "features_many ×{batch}")


def open_handle(root: Path) -> NodeHandle:
    """The node :func:`build` wrote under ``root``, opened as a new process would."""
    node = MFCC(corpus=Corpus(root=str(root)))
    return NodeHandle(Project(root / "s.py", Store(str(root / "store"))), "feats", node)


def child(root: Path, name: str, hugepages: bool, batch: int) -> None:
    """One call of ``name`` as the first read of a fresh process; prints its cost."""
    np._core.multiarray._set_madvise_hugepage(hugepages)
    fn = paths(open_handle(root), root / "all.npy", batch, 1, reuse=False)[name][0]
    cpu, faults = cost(fn)
    print(json.dumps({"cpu": cpu, "faults": faults}))


def fresh_rounds(root: Path, mb: float, batch: int, repeats: int, hugepages: bool) -> None:
    names = [n.format(batch=batch) for n in FRESH]
    got: dict[str, list[dict]] = {n: [] for n in names}
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for _ in range(repeats):  # interleaved: each path once a round, each call its own process
        for name in names:
            out = subprocess.run([sys.executable, __file__, "--child", str(root), "--name", name,
                                  "--hp", str(int(hugepages)), "--batch", str(batch)],
                                 env=env, capture_output=True, text=True, check=True)
            got[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rate = {n: mb / max(1e-9, statistics.median(r["cpu"] for r in v)) for n, v in got.items()}
    print(f" first read in a fresh process, huge pages {'requested' if hugepages else 'off'}: "
          f"MB/CPU-s (median of {repeats}), × fairseq reader, × its shard loader, page faults")
    for name, r in rate.items():
        faults = int(statistics.median(x["faults"] for x in got[name]))
        print(f"   {name:28s} {r:9.0f}  {r / rate[PEER]:6.2f}×  {r / rate[SHARD]:6.2f}×  "
              f"{faults:8d}")


def thp_setting() -> str:
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="39,768")
    ap.add_argument("--mb", type=float, default=400, help="size of the node, MB of float32")
    ap.add_argument("--frames", type=int, default=400, help="mean frames per utterance")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256, help="utterances per features_many call")
    ap.add_argument("--single", type=int, default=300, help="utterances for the per-utt loop")
    ap.add_argument("--hugepages", choices=["on", "off", "both"], default="both",
                    help="numpy's madvise(MADV_HUGEPAGE) for large arrays (numpy's default: on)")
    ap.add_argument("--fresh", type=int, default=5,
                    help="rounds of first reads, each in a fresh process (0: skip)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    ap.add_argument("--hp", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child), args.name, bool(args.hp), args.batch)
        return
    madvise = np._core.multiarray._set_madvise_hugepage  # returns the previous setting
    default_hp = madvise(True)
    madvise(default_hp)
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.hugepages]
    print(f"cpus={os.cpu_count()} load avg {os.getloadavg()[0]:.2f}; transparent huge pages: "
          f"{thp_setting()}; numpy requests them: {default_hp}")
    for dim in [int(d) for d in args.dims.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            n_utts = max(1, int(args.mb * 1e6 / (args.frames * dim * 4)))
            handle, nbytes = build(Path(tmp), n_utts, args.frames, dim)
            mb = nbytes / 1e6
            print(f"\n{dim}-d: {n_utts} utterances, {mb:.0f} MB float32")
            todo = paths(handle, Path(tmp) / "all.npy", args.batch, args.single)
            for threads in (1, 2):
                for hp in modes:
                    madvise(hp)
                    got: dict[str, list[tuple[float, int]]] = {k: [] for k in todo}
                    with threadpool_limits(threads):
                        for _ in range(args.repeats):  # interleaved: each path once a round
                            for name, (fn, _) in todo.items():
                                got[name].append(cost(fn))
                    rate = {k: mb * todo[k][1] / max(1e-9, statistics.median(c for c, _ in v))
                            for k, v in got.items()}
                    print(f" threads={threads} huge pages {'requested' if hp else 'off'}: "
                          f"MB/CPU-s (median of {args.repeats}), × fairseq reader, × its shard "
                          "loader, × np.load, page faults a pass")
                    for name, r in rate.items():
                        faults = int(statistics.median(f for _, f in got[name]))
                        print(f"   {name:28s} {r:9.0f}  {r / rate[PEER]:6.2f}×  "
                              f"{r / rate[SHARD]:6.2f}×  "
                              f"{r / rate['np.load(.npy) whole']:6.2f}×  {faults:8d}")
            madvise(default_hp)
            if args.fresh:
                del todo
                for hp in modes:
                    fresh_rounds(Path(tmp), mb, args.batch, args.fresh, hp)


if __name__ == "__main__":
    main()
