"""KMeans: fit centroids on a seeded per-utterance sample of frames, streamed from the store.

Each utterance's frames are sampled with a generator seeded by (seed, utterance id), so the sample
of an utterance never depends on which other utterances exist: growing the corpus and refitting
keeps every earlier utterance's contribution identical.

The sample is never materialised: :class:`SampledFrames` re-reads the feature node for every pass
of the fit, in sorted-utterance order (so the result does not depend on storage layout), in chunks
of about ``CHUNK_BYTES`` of sampled frames, whatever ``fit_fraction`` is.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

import numpy as np

from ..kernels.kmeans_source import ValidatedOnce, chunk_rows
from ..store.backend import write_json
from ..store.bulk import iter_ragged
from .base import AggregateOp, RunContext, check_finite, register

READ_BLOCK_BYTES = 32 << 20  # raw frames read per block (iter_ragged), before sampling


def _sample_mask(n: int, utt: str, fraction: float, seed: int) -> np.ndarray | None:
    if fraction >= 1.0:
        return None
    return np.random.default_rng([seed, zlib.crc32(utt.encode())]).random(n) < fraction


def sample_frames(feats: np.ndarray, utt: str, fraction: float, seed: int) -> np.ndarray:
    mask = _sample_mask(len(feats), utt, fraction, seed)
    return feats if mask is None else feats[mask]


class SampledFrames(ValidatedOnce):
    """The fit sample as a k-means frame source: sorted utterances, bounded chunks."""

    def __init__(self, reader, utts: list[str], fraction: float, seed: int, dim: int,
                 check=None):
        self.reader, self.fraction, self.seed, self.dim = reader, fraction, seed, dim
        self.check = check  # called with (utts, their whole arrays) before sampling
        self.utts = sorted(utts)
        self.counts = np.array([self._count(u) for u in self.utts], dtype=np.int64)
        self.n_frames = int(self.counts.sum())
        self.rows = chunk_rows(dim)

    def _count(self, utt: str) -> int:
        n = self.reader.length(utt)
        mask = _sample_mask(n, utt, self.fraction, self.seed)
        return n if mask is None else int(mask.sum())

    def _groups(self) -> Iterator[list[str]]:
        """Runs of sorted utterances holding about one chunk of sampled frames."""
        start, acc = 0, 0
        for i, c in enumerate(self.counts):
            acc += int(c)
            if acc >= self.rows:
                yield self.utts[start:i + 1]
                start, acc = i + 1, 0
        if start < len(self.utts):
            yield self.utts[start:]

    def chunks(self) -> Iterator[np.ndarray]:
        return self._served(self._sampled())

    def _sampled(self) -> Iterator[np.ndarray]:
        check = self.check if not self.validated else None  # (names the utterance at fault)
        for group in self._groups():
            got = {}
            for u, f in iter_ragged(self.reader, group, READ_BLOCK_BYTES):
                if check is not None:
                    check([u], [f])
                got[u] = sample_frames(f, u, self.fraction, self.seed)
            parts = [got.pop(u) for u in group]
            if sum(len(p) for p in parts):
                yield np.concatenate(parts)


#: fewer sampled frames a centroid than this and the fit says so (the centroids are mostly noise)
MIN_FRAMES_PER_CENTROID = 20


@register("KMeans")
class KMeansOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        from ..kernels.kmeans import fit_kmeans

        node = st.node
        feat_state = ctx.state(node.features)
        reader = ctx.reader(node.features)
        utts = sorted(feat_state.expected)
        task = ctx.task(f"{st.name}: count sampled frames", total=len(utts))
        dim = int(node.features.dim)

        def finite(group, arrays):  # stored features from before the commit check: name them
            check_finite(st, group, arrays, ctx, what=f"input {feat_state.name}",
                         hint="refusing to fit on it")

        x = SampledFrames(reader, utts, node.fit_fraction, node.seed, dim, check=finite)
        ctx.advance(task, len(utts))
        if x.n_frames < node.k:
            raise ValueError(
                f"{st.name}: only {x.n_frames} frames sampled for k={node.k}; raise fit_fraction "
                "or lower k"
            )
        from ..kernels.jit_cache import is_cached

        first = "" if is_cached("kmeans_lloyd") else \
            " (compiling the Numba kernels first: once after install, about 1-2 min)"
        task = ctx.task(f"{st.name}: fit k={node.k} on {x.n_frames:,} frames{first}", total=None)

        def progress(it, inertia):
            ctx.advance(task, 1, description=f"{st.name}: k={node.k} it {it} inertia {inertia:.3f}")

        t0 = time.perf_counter()
        res = fit_kmeans(
            x, node.k, seed=node.seed, n_init=node.n_init, max_iter=node.max_iter, tol=node.tol,
            algorithm=node.algorithm, batch_size=node.batch_size, progress=progress,
        )
        fit_seconds = time.perf_counter() - t0
        ctx.finish(task)
        warnings = []
        if x.n_frames < MIN_FRAMES_PER_CENTROID * node.k:
            warnings.append(
                f"{st.name}: k={node.k} was fit on {x.n_frames:,} frames, "
                f"{x.n_frames / node.k:.1f} per centroid (fewer than {MIN_FRAMES_PER_CENTROID}); "
                "raise fit_fraction or lower k for centroids that mean something")
        ctx.write_array(st, "centroids", np.asarray(res.centroids, np.float32))
        write_json(ctx.store.backend, f"{st.key}/fit_utts.json", {u: feat_state.expected[u] for u in utts})
        return {
            # lets a no-op plan trust the file without parsing it (graph/plan.py _fit_intact)
            "fit_utts_size": ctx.store.backend.size(f"{st.key}/fit_utts.json"),
            "metrics": {"inertia": float(res.inertia), "n_iter": int(res.n_iter),
                        "fit_frames": int(x.n_frames), "fit_seconds": round(fit_seconds, 3)},
            "k": node.k, "dim": int(x.dim), "warnings": warnings,
        }
