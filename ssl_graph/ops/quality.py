"""ClusterQuality: phone purity, cluster purity and PNMI (HuBERT §IV-E) from frame counts."""

from __future__ import annotations

import numpy as np

from ..audio.annotations import read_alignments
from .base import AggregateOp, RunContext, register


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


@register("ClusterQuality")
class ClusterQualityOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        from ..kernels.quality import cluster_quality, joint_counts

        labels_node = st.node.labels
        reader = ctx.reader(labels_node)
        aset = read_alignments(ctx.store, ctx.state(st.node.alignments).key)
        alignments, phones = aset.utts, aset.phones
        k = int(ctx.state(labels_node).record.get("k") or labels_node.kmeans.k)
        utts = [u for u in reader.utterances() if u in alignments]
        missing = len(reader.utterances()) - len(utts)
        if not utts:
            raise ValueError(
                f"{st.name}: no utterance of {ctx.state(labels_node).name} has a segment in "
                f"{st.node.alignments.file()}; check that the alignments name these utterances"
            )
        joint = np.zeros((len(phones), k), dtype=np.int64)
        src = labels_node.source
        task = ctx.task(f"{st.name}: count frames", total=len(utts))
        for i in range(0, len(utts), 256):
            batch = utts[i:i + 256]
            ys, zs = [], []
            for u, lab in zip(batch, reader.get_many(batch)):
                y = frame_phones(*alignments[u], len(lab), src.frame_rate, src.frame_offset)
                keep = y >= 0
                ys.append(y[keep])
                zs.append(lab[keep].astype(np.int64))
            joint += joint_counts(np.concatenate(ys), np.concatenate(zs), len(phones), k)
            ctx.advance(task, len(batch))
        metrics = cluster_quality(joint)
        ctx.write_array(st, "joint", joint)
        return {
            "metrics": {k_: float(v) for k_, v in metrics.items()},
            "phones": phones, "k": k, "n_utts": len(utts), "utts_without_alignment": missing,
        }
