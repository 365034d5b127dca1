"""Labels: nearest centroid for every frame, in batches of utterances (one GEMM per batch).

A job names the store, the features node and the centroids, so a worker anywhere that sees the
store reads its own frames; the coordinator only receives the labels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import worker_cache
from .base import PerUttOp, RunContext, content_version, register


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
    feats = worker_cache.reader(url, src_key, src_version).get_many(utts)
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
        return (st.name, src.name, ctx.store.url, src.key,
                content_version(src.record, "index", "parts"),
                km.key, content_version(km.record, "arrays", "seconds"), list(utts),
                st.node.batch_frames)

    def compute(self, utts, st, ctx: RunContext):
        feats = ctx.reader(st.node.source).get_many(utts)
        return assign(st.name, ctx.state(st.node.source).name, utts, feats, self.centroids,
                      st.node.batch_frames)

    def finish(self, st, ctx):
        return {"k": int(len(self.centroids)), "frame_rate": st.node.frame_rate}
