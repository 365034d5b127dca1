"""LayerSweep: several context layers from one forward pass, batched by length.

Exactness with batching: the conv encoder runs on each chunk alone (group-norm encoders
normalise over time, so padding would change every frame), then chunks of similar length are
padded and go through the transformer together with a key padding mask; the transformer zeroes
padded frames before its positional conv, so valid frames see only valid frames. What a frame
gets is then what one-utterance-at-a-time inference gives, up to float summation order.

On ``--executor pool|dask`` a worker builds the model from the store and decodes its batch
itself, as LayerFeatures does (``layer_features.py``); the forward passes it ran come back
with its part (``Tallied``), so the record counts them as an in-process run would.
"""

from __future__ import annotations

import numpy as np

from ..audio.io import read_audio
from . import worker_cache
from .audio_prefetch import AudioPrefetch, default_workers
from .base import PerUttOp, RunContext, Tallied, register


def load_model(node, ctx: RunContext):
    """The node's model with its stored weights, in eval mode, and the device it is on."""
    from ..train.session import resolve_device
    from .networks import model_network

    device = resolve_device(node.device)
    return model_network(node.model, ctx.store.backend, ctx.state(node.model).key, device), device


def _batches(lengths: list[int], max_samples: int) -> list[list[int]]:
    """Indices grouped by length (longest first) so padded size stays under ``max_samples``."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out, cur = [], []
    for i in order:
        if cur and lengths[cur[0]] * (len(cur) + 1) > max_samples:
            out.append(cur)
            cur = []
        cur.append(i)
    return out + ([cur] if cur else [])


def sweep_chunks(model, chunks: list[np.ndarray], layers: tuple[int, ...], device: str,
                 max_samples: int) -> tuple[list[list[np.ndarray]], int]:
    """Per chunk, the (frames, dim) output of every layer in ``layers``; and the forwards run."""
    import torch

    from ..nn.common import lengths_to_padding_mask

    out: list[list[np.ndarray] | None] = [None] * len(chunks)
    forwards = 0
    with torch.inference_mode():
        for group in _batches([len(c) for c in chunks], max_samples):
            feats = []
            for i in group:  # the encoder alone: no padding reaches its norms
                x = torch.from_numpy(chunks[i]).to(device)[None]
                feats.append(model._encode(x, None)[0])
            n = torch.tensor([len(f) for f in feats], device=device)
            z = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
            pad = lengths_to_padding_mask(n, z.size(1)) if bool((n < z.size(1)).any()) else None
            x, _, _ = model._context_input(z, None if pad is None else ~pad)
            _, hidden = model.context(x, pad, layer=max(layers), return_all=True)
            forwards += 1
            for row, i in enumerate(group):
                k = int(n[row])
                out[i] = [hidden[layer][row, :k].float().cpu().numpy() for layer in layers]
    return out, forwards


def sweep_waves(model, device: str, waves: list[np.ndarray], layers: tuple[int, ...],
                chunk: int, max_samples: int) -> Tallied:
    """Per utterance, its layers side by side (frames × len(layers)·dim); and the forwards."""
    chunks, owner = [], []
    for j, wave in enumerate(waves):
        for s in range(0, len(wave), chunk):
            chunks.append(wave[s:s + chunk])
            owner.append(j)
    per_chunk, forwards = sweep_chunks(model, chunks, layers, device, max_samples)
    parts: list[list[list[np.ndarray]]] = [[] for _ in waves]
    for j, out in zip(owner, per_chunk):
        parts[j].append(out)
    return Tallied([np.ascontiguousarray(np.concatenate(
        [np.concatenate([c[i] for c in p]) for i in range(len(layers))], axis=1),
        dtype=np.float32) for p in parts], forward_passes=forwards, utterances=len(waves))


def layer_sweep_job(job: dict) -> Tallied:
    """One batch in a worker: the model from the store (cached), the audio decoded here."""
    from ..train.threads import fixed_threads

    with fixed_threads(job["threads"]):  # the coordinator's count, whatever the worker's pools
        model, device = worker_cache.model(**job["model"], device=job["device"])
        waves = [read_audio(path, utt, job["sample_rate"], job["resample"])
                 for utt, path in job["audio"]]
        return sweep_waves(model, device, waves, job["layers"], job["chunk"],
                           job["max_samples"])


def _geometry(node) -> tuple[int, int]:
    """(samples per chunk, padded samples per forward pass)."""
    sr = node.corpus.sample_rate
    return max(1, int(node.chunk_seconds * sr)), max(1, int(node.batch_seconds * sr))


@register("LayerSweep")
class LayerSweepOp(PerUttOp):
    batch_utts = 64
    work = staticmethod(layer_sweep_job)
    audio = None

    def scope(self, st, ctx: RunContext):
        from ..train.threads import fixed_threads

        return fixed_threads(st.node.threads)  # bit-identical features whatever ran before

    def setup(self, st, ctx: RunContext) -> None:
        node = st.node
        self.model, self.device = load_model(node, ctx)
        self.manifest = ctx.state(node.corpus).manifest
        self.audio = AudioPrefetch(
            {u: self.manifest.utts[u].path for u in st.todo}, st.todo,
            sample_rate=node.corpus.sample_rate, resample=node.corpus.resample,
            workers=default_workers(node, self.device), device=self.device)
        self.forwards = self.utts_done = 0

    def setup_workers(self, st, ctx: RunContext) -> None:
        """No model here: workers build their own."""
        from ..train.threads import default_threads

        self.model_ref = worker_cache.model_ref(st.node.model, ctx)
        self.threads = st.node.threads or default_threads()
        self.forwards = self.utts_done = 0

    def job(self, utts, st, ctx: RunContext) -> dict:
        node, corpus = st.node, st.node.corpus
        manifest = ctx.state(corpus).manifest
        chunk, max_samples = _geometry(node)
        return {"model": self.model_ref, "device": node.device, "threads": self.threads,
                "layers": tuple(node.layers), "chunk": chunk, "max_samples": max_samples,
                "sample_rate": corpus.sample_rate, "resample": corpus.resample,
                "audio": [(u, manifest.utts[u].path) for u in utts]}

    def compute(self, utts, st, ctx: RunContext):
        chunk, max_samples = _geometry(st.node)
        return sweep_waves(self.model, self.device, self.audio.take(utts), st.node.layers,
                           chunk, max_samples)

    def absorb(self, tally: dict) -> None:
        self.forwards += tally.get("forward_passes", 0)
        self.utts_done += tally.get("utterances", 0)

    def finish(self, st, ctx):
        if self.audio is not None:
            self.audio.close()
        node = st.node
        return {"dim": node.dim, "frame_rate": node.frame_rate, "layers": list(node.layers),
                "forward_passes": self.forwards, "utterances": self.utts_done}
