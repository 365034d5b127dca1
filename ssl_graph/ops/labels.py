"""Labels: nearest centroid for every frame, in batches of utterances (one GEMM per batch).

A job names the store, the features node and the centroids, so a worker anywhere that sees the
store reads its own frames; the coordinator only receives the labels.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

import numpy as np

from .base import PerUttOp, RunContext, register


def _version(record: dict, *fields: str) -> str:
    """Identity of a stored result's content (checksum manifests), for worker-side caches that
    outlive a run (a long-lived Dask worker): a rewritten node never hits a stale entry."""
    blob = json.dumps([record.get(f) for f in fields], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@lru_cache(maxsize=4)
def _reader(url: str, key: str, version: str):
    from ..store.ragged import RaggedReader
    from ..store.store import Store

    return RaggedReader(Store(url), key)


@lru_cache(maxsize=2)
def _centroids(url: str, key: str, version: str) -> np.ndarray:
    from ..store.store import Store

    return np.asarray(Store(url).read_array(f"{key}/centroids")[...], np.float32)


def assign(name: str, source: str, utts: list[str], feats: list[np.ndarray],
           centroids: np.ndarray, batch_frames: int) -> list[np.ndarray]:
    from ..kernels.assign import assign_labels

    for utt, f in zip(utts, feats):  # a NaN frame would silently get some label
        if f.dtype.kind in "fc" and not np.isfinite(f).all():
            raise ValueError(f"{name}: utterance {utt!r}: input {source} has "
                             f"{int((~np.isfinite(f)).sum())} non-finite (NaN/Inf) values; "
                             "refusing to label it — check its audio and the node's inputs")
    lengths = [len(f) for f in feats]
    x = np.ascontiguousarray(np.concatenate(feats, axis=0), dtype=np.float32)
    labels, _ = assign_labels(x, centroids, chunk=batch_frames)
    dtype = np.int16 if len(centroids) < 2**15 else np.int32
    return np.split(labels.astype(dtype), np.cumsum(lengths)[:-1])


def labels_job(job) -> list[np.ndarray]:
    """One batch in a worker: reads its frames from the store itself."""
    name, source, url, src_key, src_version, km_key, km_version, utts, batch_frames = job
    feats = _reader(url, src_key, src_version).get_many(utts)
    return assign(name, source, utts, feats, _centroids(url, km_key, km_version), batch_frames)


@register("Labels")
class LabelsOp(PerUttOp):
    batch_utts = 256
    work = staticmethod(labels_job)

    def setup(self, st, ctx: RunContext) -> None:
        km_key = ctx.state(st.node.kmeans).key
        self.centroids = np.asarray(ctx.store.read_array(f"{km_key}/centroids")[...], np.float32)

    def job(self, utts, st, ctx: RunContext):
        src, km = ctx.state(st.node.source), ctx.state(st.node.kmeans)
        return (st.name, src.name, ctx.store.url, src.key, _version(src.record, "index", "parts"),
                km.key, _version(km.record, "arrays", "seconds"), list(utts),
                st.node.batch_frames)

    def compute(self, utts, st, ctx: RunContext):
        feats = ctx.reader(st.node.source).get_many(utts)
        return assign(st.name, ctx.state(st.node.source).name, utts, feats, self.centroids,
                      st.node.batch_frames)

    def finish(self, st, ctx):
        return {"k": int(len(self.centroids)), "frame_rate": st.node.frame_rate}
