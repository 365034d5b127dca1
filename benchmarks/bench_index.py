"""Index bytes written per commit, and index load time: JSON rewritten whole vs columnar segments.

    python benchmarks/bench_index.py [--utts 281241] [--commits 173]

A LibriSpeech-sized per-utterance node (281k utterances, ids like ``103-1240-0000``, one
fingerprint-length version each) committed ``--commits`` times over one pass, as an MFCC pass of
2M-frame commits does. The peer is what earlier versions wrote: the whole index as JSON
(``write_json``: ``indent=1``, sorted keys) at every commit. Ours: one segment per commit holding
its new utterances (``store/index.py``), real files through ``Store.write_index_segment``; then
``Store.index`` of the final record (all segments) vs ``json.loads`` of the final JSON index, on
a fresh ``Store`` each time, interleaved. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from ssl_graph.specs.base import FINGERPRINT_CHARS
from ssl_graph.store.store import Store

KEY = "nodes/mfcc-bench"


def entries(n: int) -> dict[str, list]:
    rng = np.random.default_rng(0)
    out, start = {}, 0
    for i in range(n):
        spk, chap, utt = 100 + i // 1000, 1000 + (i // 50) % 997, i % 50
        frames = int(rng.integers(200, 1700))
        version = f"{rng.integers(0, 2**63):016x}{rng.integers(0, 2**63):016x}"[:FINGERPRINT_CHARS]
        out[f"{spk}-{chap}-{utt:04d}"] = [f"parts/{1 + i * 173 // n:05d}", start, start + frames,
                                          version]
        start += frames
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utts", type=int, default=281_241)
    ap.add_argument("--commits", type=int, default=173)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    index = entries(args.utts)
    utts = list(index)
    bounds = np.linspace(0, len(utts), args.commits + 1).astype(int)
    print(f"{args.utts:,} utterances over {args.commits} commits; cpus={os.cpu_count()}; "
          f"load avg {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        seg_bytes, segments = [], []
        t0 = time.perf_counter()
        for c in range(args.commits):
            batch = {u: index[u] for u in utts[bounds[c]:bounds[c + 1]]}
            segments.append(store.write_index_segment(KEY, c + 1, batch, ()))
            seg_bytes.append(segments[-1]["size"])
        t_seg = time.perf_counter() - t0
        t0 = time.perf_counter()
        final_json = json.dumps(index, indent=1, sort_keys=True).encode()
        t_json = time.perf_counter() - t0
        # the peer rewrote the whole index so far at every commit: its bytes grow with the
        # utterances committed (entries are alike, so proportional to their count)
        json_bytes = [len(final_json) * int(bounds[c + 1]) / len(utts) for c in range(args.commits)]
        store.write_record(KEY, {"kind": "MFCC", "index": {"segments": segments}})
        loads = {"json.loads(whole index)": [], "Store.index(segments)": []}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            a = json.loads(final_json)
            loads["json.loads(whole index)"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            b = Store(tmp).index(KEY)
            loads["Store.index(segments)"].append(time.perf_counter() - t0)
        assert a == b  # same index both ways (a sanity check of the benchmark, not a test)
    mb = 1e6
    print(f"  JSON, whole index per commit: {np.mean(json_bytes) / mb:7.2f} MB/commit mean, "
          f"{json_bytes[-1] / mb:6.2f} MB last, {sum(json_bytes) / 1e9:6.2f} GB per pass "
          f"(encoding the last one: {t_json:.2f} s)")
    print(f"  segments, new utts per commit: {np.mean(seg_bytes) / mb:7.3f} MB/commit mean, "
          f"{sum(seg_bytes) / mb:6.2f} MB per pass (encode+write {t_seg:.1f} s)  "
          f"{sum(json_bytes) / sum(seg_bytes):.0f}× fewer bytes")
    print(f"  per utterance: JSON {len(final_json) / args.utts:.0f} B, "
          f"segments {sum(seg_bytes) / args.utts:.0f} B")
    for name, ts in loads.items():
        print(f"  load {name:26s} {min(ts):6.3f} s")


if __name__ == "__main__":
    main()
