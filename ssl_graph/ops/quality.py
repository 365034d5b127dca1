"""ClusterQuality: phone purity, cluster purity and PNMI (HuBERT §IV-E) from frame counts.

Counting is a pass over every utterance's labels: it is sharded through ``ctx.map``, so on
``--executor pool|dask`` each worker reads its shard's labels and the alignments from the store
(cached per worker by content version) and returns a (phones × k) int64 count matrix. Integer
sums are exact in any order, so the joint and the metrics are those of an in-process count.
"""

from __future__ import annotations

import numpy as np

from . import worker_cache
from .base import AggregateOp, RunContext, content_version, register

#: utterances per shard, at most (in-process: one ``get_many`` each)
SHARD_UTTS = 256


def frame_phones(starts: np.ndarray, ends: np.ndarray, ids: np.ndarray, n_frames: int,
                 frame_rate: float, offset: float) -> np.ndarray:
    """Phone id at each frame's centre time; -1 where no segment covers it."""
    centres = offset + np.arange(n_frames) / frame_rate
    if len(starts) == 0:
        return np.full(n_frames, -1, dtype=np.int64)
    pos = np.searchsorted(starts, centres, side="right") - 1
    out = np.full(n_frames, -1, dtype=np.int64)
    ok = (pos >= 0) & (centres < ends[np.clip(pos, 0, None)])
    out[ok] = ids[pos[ok]]
    return out


def count_frames(utts: list[str], labels: list[np.ndarray], alignments, n_phones: int, k: int,
                 frame_rate: float, offset: float) -> np.ndarray:
    """(n_phones, k) counts of (phone at frame centre, cluster) over these utterances."""
    from ..kernels.quality import joint_counts

    ys, zs = [], []
    for u, lab in zip(utts, labels):
        y = frame_phones(*alignments.utts[u], len(lab), frame_rate, offset)
        keep = y >= 0
        ys.append(y[keep])
        zs.append(lab[keep].astype(np.int64))
    return joint_counts(np.concatenate(ys), np.concatenate(zs), n_phones, k)


def count_job(job) -> np.ndarray:
    """One shard, anywhere: labels and alignments are read from the store (per-worker cache)."""
    labels, aligned, utts, n_phones, k, frame_rate, offset = job
    return count_frames(utts, worker_cache.reader(*labels).get_many(utts),
                        worker_cache.alignments(*aligned), n_phones, k, frame_rate, offset)


@register("ClusterQuality")
class ClusterQualityOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        from ..kernels.quality import cluster_quality

        labels_node = st.node.labels
        lab_st, al_st = ctx.state(labels_node), ctx.state(st.node.alignments)
        labels = (ctx.store.url, lab_st.key, content_version(lab_st.record, "index", "parts"))
        aligned = (ctx.store.url, al_st.key,
                   content_version(al_st.record, "arrays", "data_version", "phones"))
        # the coordinator reads through the workers' cache, so in-process shards read nothing
        # twice; what it cached here is dropped when the count is done (the finally below)
        aset = worker_cache.alignments(*aligned)
        listed = worker_cache.reader(*labels).utterances()
        k = int(lab_st.record.get("k") or labels_node.kmeans.k)
        utts = [u for u in listed if u in aset.utts]
        if not utts:
            raise ValueError(
                f"{st.name}: no utterance of {lab_st.name} has a segment in "
                f"{st.node.alignments.file()}; check that the alignments name these utterances"
            )
        src = labels_node.source
        per = max(1, min(SHARD_UTTS, -(-len(utts) // (4 * ctx.parallel))))
        shards = [utts[i:i + per] for i in range(0, len(utts), per)]
        jobs = ((labels, aligned, shard, len(aset.phones), k, src.frame_rate, src.frame_offset)
                for shard in shards)
        joint = np.zeros((len(aset.phones), k), dtype=np.int64)
        task = ctx.task(f"{st.name}: count frames", total=len(utts))
        try:
            for shard, counts in zip(shards, ctx.map(count_job, jobs)):
                joint += counts  # exact: the sum is the same in any order and sharding
                ctx.advance(task, len(shard))
        finally:
            worker_cache.alignments.cache_clear()
            worker_cache.reader.cache_clear()
        metrics = cluster_quality(joint)
        ctx.write_array(st, "joint", joint)
        return {
            "metrics": {k_: float(v) for k_, v in metrics.items()},
            "phones": aset.phones, "k": k, "n_utts": len(utts),
            "utts_without_alignment": len(listed) - len(utts),
        }
