"""KMeans: fit centroids on a seeded per-utterance sample of frames.

Each utterance's frames are sampled with a generator seeded by (seed, utterance id), so the sample
of an utterance never depends on which other utterances exist: growing the corpus and refitting
keeps every earlier utterance's contribution identical.
"""

from __future__ import annotations

import time
import zlib

import numpy as np

from ..store.backend import write_json
from .base import AggregateOp, RunContext, check_finite, register


def sample_frames(feats: np.ndarray, utt: str, fraction: float, seed: int) -> np.ndarray:
    if fraction >= 1.0:
        return feats
    rng = np.random.default_rng([seed, zlib.crc32(utt.encode())])
    return feats[rng.random(len(feats)) < fraction]


@register("KMeans")
class KMeansOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        from ..kernels.kmeans import fit_kmeans

        node = st.node
        feat_state = ctx.state(node.features)
        reader = ctx.reader(node.features)
        utts = sorted(feat_state.expected)
        task = ctx.task(f"{st.name}: sample frames", total=len(utts))
        chunks = []
        for i in range(0, len(utts), 256):
            batch = utts[i:i + 256]
            feats = reader.get_many(batch)
            check_finite(st, batch, feats, ctx, what=f"input {feat_state.name}",
                         hint="refusing to fit on it")
            for u, f in zip(batch, feats):
                chunks.append(sample_frames(f, u, node.fit_fraction, node.seed))
            ctx.advance(task, len(batch))
        x = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
        if len(x) < node.k:
            raise ValueError(
                f"{st.name}: only {len(x)} frames sampled for k={node.k}; raise fit_fraction "
                "or lower k"
            )
        task = ctx.task(f"{st.name}: fit k={node.k} on {len(x):,} frames", total=None)

        def progress(it, inertia):
            ctx.advance(task, 1, description=f"{st.name}: k={node.k} it {it} inertia {inertia:.3f}")

        t0 = time.perf_counter()
        res = fit_kmeans(
            x, node.k, seed=node.seed, n_init=node.n_init, max_iter=node.max_iter, tol=node.tol,
            algorithm=node.algorithm, batch_size=node.batch_size, progress=progress,
        )
        fit_seconds = time.perf_counter() - t0
        ctx.finish(task)
        ctx.write_array(st, "centroids", np.asarray(res.centroids, np.float32))
        write_json(ctx.store.backend, f"{st.key}/fit_utts.json", {u: feat_state.expected[u] for u in utts})
        return {
            "metrics": {"inertia": float(res.inertia), "n_iter": int(res.n_iter),
                        "fit_frames": int(len(x)), "fit_seconds": round(fit_seconds, 3)},
            "k": node.k, "dim": int(x.shape[1]),
        }
