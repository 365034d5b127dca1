"""Labels: nearest centroid for every frame, in batches of utterances (one GEMM per batch).

A job names the store, the features node and the centroids, so a worker anywhere that sees the
store reads its own frames; the coordinator only receives the labels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import PerUttOp, RunContext, register


@lru_cache(maxsize=4)
def _open(url: str, key: str, commit: int):
    """A worker's reader of one committed index (a new commit is a new key)."""
    from ..store.ragged import RaggedReader
    from ..store.store import Store

    return RaggedReader(Store(url), key)


@lru_cache(maxsize=2)
def _centroids(url: str, key: str) -> np.ndarray:
    from ..store.store import Store

    return np.asarray(Store(url).read_array(f"{key}/centroids")[...], np.float32)


def labels_job(job) -> list[np.ndarray]:
    from ..kernels.assign import assign_labels

    name, source, url, src_key, commit, km_key, utts, batch_frames = job
    feats = _open(url, src_key, commit).get_many(utts)
    for utt, f in zip(utts, feats):  # a NaN frame would silently get some label
        if f.dtype.kind in "fc" and not np.isfinite(f).all():
            raise ValueError(f"{name}: utterance {utt!r}: input {source} has "
                             f"{int((~np.isfinite(f)).sum())} non-finite (NaN/Inf) values; "
                             "refusing to label it — check its audio and the node's inputs")
    centroids = _centroids(url, km_key)
    lengths = [len(f) for f in feats]
    x = np.ascontiguousarray(np.concatenate(feats, axis=0), dtype=np.float32)
    labels, _ = assign_labels(x, centroids, chunk=batch_frames)
    dtype = np.int16 if len(centroids) < 2**15 else np.int32
    return np.split(labels.astype(dtype), np.cumsum(lengths)[:-1])


@register("Labels")
class LabelsOp(PerUttOp):
    batch_utts = 256
    work = staticmethod(labels_job)

    def setup(self, st, ctx: RunContext) -> None:
        km_key = ctx.state(st.node.kmeans).key
        self.k = int(ctx.store.read_array(f"{km_key}/centroids").shape[0])

    def job(self, utts, st, ctx: RunContext):
        src = ctx.state(st.node.source)
        commit = int((src.record or {}).get("commit", 0))
        return (st.name, src.name, ctx.store.url, src.key, commit, ctx.state(st.node.kmeans).key,
                list(utts), st.node.batch_frames)

    def compute(self, utts, st, ctx: RunContext):
        return labels_job(self.job(utts, st, ctx))

    def finish(self, st, ctx):
        return {"k": self.k, "frame_rate": st.node.frame_rate}
