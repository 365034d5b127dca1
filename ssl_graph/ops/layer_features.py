"""LayerFeatures: run a trained model over each new utterance and keep one layer's output.

Utterances go through one at a time (no padding), so a frame's features never depend on which
other utterances shared its batch — the same reason fairseq's dump script does it. Audio shorter
than the encoder's receptive field has no frame: it is refused before the model is loaded. A node
with ``sweep=`` runs no model: it slices its layer's columns out of the stored ``LayerSweep``.
"""

from __future__ import annotations

import numpy as np

from .audio_prefetch import AudioPrefetch, default_workers
from .base import PerUttOp, RunContext, refuse_short, register


def chunk_bounds(n: int, chunk: float, min_len: int) -> list[tuple[int, int]]:
    """[start, end) chunks of ``chunk`` samples; a tail shorter than ``min_len`` (the receptive
    field, which no conv could read) joins the chunk before it instead of failing."""
    chunk = max(int(chunk), min_len, 1)
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_len:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


@register("LayerFeatures")
class LayerFeaturesOp(PerUttOp):
    batch_utts = 16

    def scope(self, st, ctx: RunContext):
        from ..train.threads import fixed_threads

        return fixed_threads(st.node.threads)  # bit-identical features whatever ran before

    def setup(self, st, ctx: RunContext) -> None:
        if st.node.sweep is not None:
            return self._setup_slice(st, ctx)
        import torch

        from ..nn import build_model
        from ..train.checkpoint import load_weights
        from ..train.session import resolve_device

        node = st.node
        refuse_short(st, ctx, node.min_samples,
                     f"the receptive field of {ctx.state(node.model).name}'s encoder")
        self.device = resolve_device(node.device)
        model = build_model(node.model.model)
        pre = ctx.state(node.model)
        load_weights(ctx.store.backend, pre.key, model, self.device)
        self.model = model.to(self.device).eval()
        self.torch = torch
        self.manifest = ctx.state(node.corpus).manifest
        self.audio = AudioPrefetch(
            {u: self.manifest.utts[u].path for u in st.todo}, st.todo,
            sample_rate=node.corpus.sample_rate, resample=node.corpus.resample,
            workers=default_workers(node, self.device), device=self.device)

    def _extract(self, node, wave: np.ndarray):
        torch = self.torch
        outs = []
        with torch.inference_mode():
            for s, e in chunk_bounds(len(wave), node.chunk_seconds * node.corpus.sample_rate,
                                     node.min_samples):
                x = torch.from_numpy(wave[s:e]).to(self.device)[None]
                feats, _ = self.model.extract_features(x, None, layer=node.layer)
                outs.append(feats[0].float().cpu().numpy())
        return np.ascontiguousarray(np.concatenate(outs), dtype=np.float32)

    def compute(self, utts, st, ctx: RunContext):
        if st.node.sweep is not None:
            return self._slice(utts)
        return [self._extract(st.node, wave) for wave in self.audio.take(utts)]

    def finish(self, st, ctx):
        if st.node.sweep is None:
            self.audio.close()
        out = {"dim": st.node.dim, "frame_rate": st.node.frame_rate, "layer": st.node.layer}
        if st.node.sweep is not None:
            out["forward_passes"] = 0  # sliced from the sweep
        return out

    # ---- sweep=: a slice of a LayerSweep's stored layers ----------------------------------
    def _setup_slice(self, st, ctx: RunContext) -> None:
        node = st.node
        i, dim = node.sweep.layers.index(node.layer), node.dim
        self.columns = slice(i * dim, (i + 1) * dim)
        self.sweep = ctx.reader(node.sweep)

    def _slice(self, utts):
        return [np.ascontiguousarray(np.asarray(a)[:, self.columns], dtype=np.float32)
                for a in self.sweep.get_many(utts)]
