"""MFCC features per utterance (HuBERT iteration-1 recipe), optionally in worker processes."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..audio.io import read_audio
from .base import PerUttOp, RunContext, refuse_short, register


def _mfcc_file(args) -> np.ndarray:
    from ..audio.mfcc import mfcc_hubert

    path, utt, sr, resample, dim = args
    feats = mfcc_hubert(read_audio(path, utt, sr, resample))
    return np.ascontiguousarray(feats[:, :dim])


@register("MFCC")
class MFCCOp(PerUttOp):
    batch_utts = 64

    def setup(self, st, ctx: RunContext) -> None:
        refuse_short(st, ctx, st.node.min_samples, "one 25 ms MFCC window")
        self.pool = ProcessPoolExecutor(st.node.workers) if st.node.workers > 1 else None

    def compute(self, utts, st, ctx: RunContext):
        node = st.node
        corpus = node.corpus
        manifest = ctx.state(corpus).manifest
        jobs = [(manifest.utts[u].path, u, corpus.sample_rate, corpus.resample, node.dim) for u in utts]
        if self.pool is not None:
            return list(self.pool.map(_mfcc_file, jobs))
        return [_mfcc_file(j) for j in jobs]

    def finish(self, st, ctx):
        if self.pool is not None:
            self.pool.shutdown()
        return {"dim": st.node.dim, "frame_rate": st.node.frame_rate}
