"""MFCC features per utterance (HuBERT iteration-1 recipe); one job = a few files, run anywhere."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..audio.io import read_audio
from .base import PerUttOp, RunContext, refuse_short, register


def _mfcc_file(args) -> np.ndarray:
    from ..audio.mfcc import mfcc_hubert

    path, utt, sr, resample, dim = args
    feats = mfcc_hubert(read_audio(path, utt, sr, resample))
    return np.ascontiguousarray(feats[:, :dim])


@lru_cache(maxsize=1)
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # scanning the loaded libraries costs ~1 ms: once


def mfcc_job(job) -> list[np.ndarray]:
    """Decode and featurise the files of one job (in whatever process the executor chose).

    One BLAS thread: MFCC's products are small, and a second thread spinning for them made
    in-process MFCC 3x slower on a loaded 2-core machine (bench_executors.py); parallelism comes
    from the executor's processes. The results do not depend on the thread count."""
    with _blas().limit(limits=1, user_api="blas"):
        return [_mfcc_file(j) for j in job]


@register("MFCC")
class MFCCOp(PerUttOp):
    #: small jobs: utterances are independent, so this only sets how finely work is spread
    batch_utts = 4
    work = staticmethod(mfcc_job)

    def setup(self, st, ctx: RunContext) -> None:
        refuse_short(st, ctx, st.node.min_samples, "one 25 ms MFCC window")

    def job(self, utts, st, ctx: RunContext):
        corpus = st.node.corpus
        manifest = ctx.state(corpus).manifest
        return [(manifest.utts[u].path, u, corpus.sample_rate, corpus.resample, st.node.dim)
                for u in utts]

    def compute(self, utts, st, ctx: RunContext):
        return mfcc_job(self.job(utts, st, ctx))

    def finish(self, st, ctx):
        return {"dim": st.node.dim, "frame_rate": st.node.frame_rate}
