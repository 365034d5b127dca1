"""LayerFeatures: run a trained model over each new utterance and keep one layer's output.

Utterances go through one at a time (no padding), so a frame's features never depend on which
other utterances shared its batch — the same reason fairseq's dump script does it. Audio shorter
than the encoder's receptive field has no frame: it is refused before the model is loaded. A node
with ``sweep=`` runs no model: it slices its layer's columns out of the stored ``LayerSweep``.

On ``--executor pool|dask`` a job carries no model and no audio: a worker builds the model from
its config and the store's weights once per weights version (``worker_cache``), decodes its
utterances itself and runs them under the node's thread count, resolved by the coordinator, so
its frames are the coordinator's bit for bit. Sliced nodes read the sweep in the worker too.
"""

from __future__ import annotations

import numpy as np

from ..audio.io import read_audio
from . import worker_cache
from .audio_prefetch import AudioPrefetch, default_workers
from .base import PerUttOp, RunContext, content_version, refuse_short, register


def chunk_bounds(n: int, chunk: float, min_len: int) -> list[tuple[int, int]]:
    """[start, end) chunks of ``chunk`` samples; a tail shorter than ``min_len`` (the receptive
    field, which no conv could read) joins the chunk before it instead of failing."""
    chunk = max(int(chunk), min_len, 1)
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_len:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def extract(model, device: str, wave: np.ndarray, layer: int, chunk: float,
            min_samples: int) -> np.ndarray:
    """Layer ``layer``'s frames of one utterance, chunk by chunk (``chunk`` samples)."""
    import torch

    outs = []
    with torch.inference_mode():
        for s, e in chunk_bounds(len(wave), chunk, min_samples):
            x = torch.from_numpy(wave[s:e]).to(device)[None]
            feats, _ = model.extract_features(x, None, layer=layer)
            outs.append(feats[0].float().cpu().numpy())
    return np.ascontiguousarray(np.concatenate(outs), dtype=np.float32)


def slice_columns(arrays, columns: tuple[int, int]) -> list[np.ndarray]:
    lo, hi = columns
    return [np.ascontiguousarray(np.asarray(a)[:, lo:hi], dtype=np.float32) for a in arrays]


def layer_features_job(job: dict) -> list[np.ndarray]:
    """One batch in a worker: features straight from the model, or columns of a stored sweep."""
    if job["sweep"] is not None:
        return slice_columns(worker_cache.reader(*job["sweep"]).get_many(job["utts"]),
                             job["columns"])
    from ..train.threads import fixed_threads

    with fixed_threads(job["threads"]):  # the coordinator's count, whatever the worker's pools
        model, device = worker_cache.model(**job["model"], device=job["device"])
        return [extract(model, device, read_audio(path, utt, job["sample_rate"], job["resample"]),
                        job["layer"], job["chunk"], job["min_samples"])
                for utt, path in job["audio"]]


def _columns(node) -> tuple[int, int]:
    i = node.sweep.layers.index(node.layer)
    return i * node.dim, (i + 1) * node.dim


@register("LayerFeatures")
class LayerFeaturesOp(PerUttOp):
    batch_utts = 16
    work = staticmethod(layer_features_job)
    audio = None

    def scope(self, st, ctx: RunContext):
        from ..train.threads import fixed_threads

        return fixed_threads(st.node.threads)  # bit-identical features whatever ran before

    def _refuse_short(self, st, ctx: RunContext) -> None:
        refuse_short(st, ctx, st.node.min_samples,
                     f"the receptive field of {ctx.state(st.node.model).name}'s encoder")

    def setup(self, st, ctx: RunContext) -> None:
        if st.node.sweep is not None:
            self.sweep = ctx.reader(st.node.sweep)
            return
        from ..train.session import resolve_device
        from .networks import model_network

        node = st.node
        self._refuse_short(st, ctx)
        self.device = resolve_device(node.device)
        self.model = model_network(node.model, ctx.store.backend, ctx.state(node.model).key,
                                   self.device)
        manifest = ctx.state(node.corpus).manifest
        self.audio = AudioPrefetch(
            {u: manifest.utts[u].path for u in st.todo}, st.todo,
            sample_rate=node.corpus.sample_rate, resample=node.corpus.resample,
            workers=default_workers(node, self.device), device=self.device)

    def setup_workers(self, st, ctx: RunContext) -> None:
        """No model here: workers build their own; short audio is still refused up front."""
        from ..train.threads import default_threads

        if st.node.sweep is None:
            self._refuse_short(st, ctx)
            self.model_ref = worker_cache.model_ref(st.node.model, ctx)
            self.threads = st.node.threads or default_threads()

    def job(self, utts, st, ctx: RunContext) -> dict:
        node = st.node
        if node.sweep is not None:
            sw = ctx.state(node.sweep)
            return {"sweep": (ctx.store.url, sw.key, content_version(sw.record, "index", "parts")),
                    "columns": _columns(node), "utts": list(utts)}
        corpus = node.corpus
        manifest = ctx.state(corpus).manifest
        return {"sweep": None, "model": self.model_ref, "device": node.device,
                "threads": self.threads, "layer": node.layer,
                "chunk": node.chunk_seconds * corpus.sample_rate, "min_samples": node.min_samples,
                "sample_rate": corpus.sample_rate, "resample": corpus.resample,
                "audio": [(u, manifest.utts[u].path) for u in utts]}

    def compute(self, utts, st, ctx: RunContext):
        node = st.node
        if node.sweep is not None:
            return slice_columns(self.sweep.get_many(utts), _columns(node))
        chunk = node.chunk_seconds * node.corpus.sample_rate
        return [extract(self.model, self.device, wave, node.layer, chunk, node.min_samples)
                for wave in self.audio.take(utts)]

    def finish(self, st, ctx):
        if self.audio is not None:
            self.audio.close()
        out = {"dim": st.node.dim, "frame_rate": st.node.frame_rate, "layer": st.node.layer}
        if st.node.sweep is not None:
            out["forward_passes"] = 0  # sliced from the sweep
        return out
