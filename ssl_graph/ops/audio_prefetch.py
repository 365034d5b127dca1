"""Audio of a model op's utterances decoded ahead of the model, by DataLoader worker processes.

``LayerFeatures`` and ``LayerSweep`` spend their main thread in the model; with ``workers > 0``
the decoding (and resampling) of the next utterances happens in other processes meanwhile.
The runner asks for utterances in the order of the node's to-do list, so the loader walks that
list once, in order; what reaches the model is the very array a direct read gives, so the
features are bit-identical whatever the worker count. Pinned memory on CUDA.
"""

from __future__ import annotations

import numpy as np

from ..audio.io import read_audio


class UtteranceAudio:
    """Map-style dataset: item i is (utterance id, decoded wave) of ``utts[i]``."""

    def __init__(self, paths: dict[str, object], utts: list[str], sample_rate: int,
                 resample: bool):
        self.paths, self.utts, self.sr, self.resample = paths, utts, sample_rate, resample

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int):
        import torch

        u = self.utts[i]
        return u, torch.from_numpy(read_audio(self.paths[u], u, self.sr, self.resample))


def _identity(item):
    return item


class AudioPrefetch:
    """``take(utts)``: their waves, prefetched when the runner asks in to-do order."""

    def __init__(self, paths: dict[str, object], todo: list[str], *, sample_rate: int,
                 resample: bool, workers: int, device: str):
        self.dataset = UtteranceAudio(paths, list(todo), sample_rate, resample)
        self.workers = workers
        self._it = None
        if workers > 0 and todo:
            from torch.utils.data import DataLoader

            from ..train.loader import _worker_init

            self._it = iter(DataLoader(
                self.dataset, batch_size=None, shuffle=False, num_workers=workers,
                collate_fn=_identity, pin_memory=device.startswith("cuda"), prefetch_factor=4,
                worker_init_fn=_worker_init))
        self._next = 0

    def _direct(self, u: str) -> np.ndarray:
        d = self.dataset
        return read_audio(d.paths[u], u, d.sr, d.resample)

    def take(self, utts: list[str]) -> list[np.ndarray]:
        out = []
        for u in utts:
            expected = (self._it is not None and self._next < len(self.dataset)
                        and self.dataset.utts[self._next] == u)
            if expected:
                got, wave = next(self._it)
                assert got == u, (got, u)  # the loader hands items back in index order
                self._next += 1
                out.append(wave.numpy())
            else:  # asked out of order: read it here (the prefetched order is no use now)
                self.close()
                out.append(self._direct(u))
        return out

    def close(self) -> None:
        """Stop the workers (also when a run stops early)."""
        self._it = None


def default_workers(node, device: str) -> int:
    """``node.workers``, or 2 on CUDA and 0 on CPU (where the model wants every core)."""
    from ..train.loader import default_workers as training_default

    return node.workers if node.workers is not None else training_default(device)
