"""Labels: nearest centroid for every frame, in batches of utterances (one GEMM per batch)."""

from __future__ import annotations

import numpy as np

from .base import PerUttOp, RunContext, check_finite, register


@register("Labels")
class LabelsOp(PerUttOp):
    batch_utts = 256

    def setup(self, st, ctx: RunContext) -> None:
        km_key = ctx.state(st.node.kmeans).key
        self.centroids = np.asarray(ctx.store.read_array(f"{km_key}/centroids")[...], np.float32)

    def compute(self, utts, st, ctx: RunContext):
        from ..kernels.assign import assign_labels

        feats = ctx.reader(st.node.source).get_many(utts)
        # a NaN frame would silently get some label: refuse it, naming the utterance
        check_finite(st, utts, feats, ctx, what=f"input {ctx.state(st.node.source).name}",
                     hint="refusing to label it")
        lengths = [len(f) for f in feats]
        x = np.ascontiguousarray(np.concatenate(feats, axis=0), dtype=np.float32)
        labels, _ = assign_labels(x, self.centroids, chunk=st.node.batch_frames)
        dtype = np.int16 if len(self.centroids) < 2**15 else np.int32
        return np.split(labels.astype(dtype), np.cumsum(lengths)[:-1])

    def finish(self, st, ctx):
        return {"k": int(len(self.centroids)), "frame_rate": st.node.frame_rate}
