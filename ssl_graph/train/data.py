"""Training batches: random crops filling a budget of audio seconds, with their label slices.

Every choice (which utterances, where to crop) comes from a generator seeded by (seed, step), so
batch k is the same whether a run went straight through or resumed from a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.io import read_audio


@dataclass
class Batch:
    wave: np.ndarray  # (B, S) float32
    utts: list[str]
    starts: list[int]
    #: one (B, T_lab) int64 array per label set (cropped to the same audio span)
    labels: list[np.ndarray]


class CropSampler:
    def __init__(self, paths: dict[str, object], lengths: dict[str, int], *, sample_rate: int,
                 batch_seconds: float, crop_seconds: float, min_seconds: float, seed: int,
                 label_sets: list[tuple[dict[str, np.ndarray], float]] | None = None,
                 cache_bytes: int = 2 << 30):
        self.sr = sample_rate
        self.paths = paths
        self.utts = sorted(u for u, n in lengths.items() if n >= min_seconds * sample_rate)
        if not self.utts:
            raise ValueError(
                f"no utterance is at least min_seconds={min_seconds} long; lower min_seconds"
            )
        self.lengths = lengths
        self.batch_samples = int(batch_seconds * sample_rate)
        self.crop_samples = int(crop_seconds * sample_rate)
        self.seed = seed
        self.label_sets = label_sets or []
        self._cache: dict[str, np.ndarray] = {}
        self._cache_bytes = cache_bytes

    def _wave(self, utt: str) -> np.ndarray:
        w = self._cache.get(utt)
        if w is None:
            w = read_audio(self.paths[utt], utt, self.sr)
            if sum(a.nbytes for a in self._cache.values()) + w.nbytes <= self._cache_bytes:
                self._cache[utt] = w
        return w

    def batch(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, step])
        order = rng.permutation(len(self.utts))
        chosen: list[str] = []
        size = self.crop_samples
        for i in order:
            u = self.utts[i]
            new_size = min(size, self.lengths[u])
            if chosen and (len(chosen) + 1) * new_size > self.batch_samples:
                break
            chosen.append(u)
            size = new_size
        waves, starts = [], []
        for u in chosen:
            start = int(rng.integers(0, self.lengths[u] - size + 1))
            waves.append(self._wave(u)[start:start + size])
            starts.append(start)
        labels = crop_labels(self.label_sets, chosen, starts, size, self.sr)
        return Batch(np.stack(waves).astype(np.float32), chosen, starts, labels)


def crop_labels(label_sets, utts: list[str], starts: list[int], size: int,
                sr: int) -> list[np.ndarray]:
    """Per label set, the (B, T_lab) labels of crops [start, start + size) of ``utts``."""
    labels = []
    for table, rate in label_sets:
        n = int(round(size * rate / sr))
        rows = []
        for u, s in zip(utts, starts):
            lab = table[u]
            s_l = int(round(s * rate / sr))
            row = lab[s_l:s_l + n]
            if len(row) < n:  # labels a frame short at the end: repeat the last one
                row = np.concatenate([row, np.full(n - len(row), row[-1] if len(row) else 0)])
            rows.append(row.astype(np.int64))
        labels.append(np.stack(rows))
    return labels


def fixed_crops(wave, lengths: dict[str, int], *, sample_rate: int, batch_seconds: float,
                crop_seconds: float, min_seconds: float, label_sets=None) -> list[Batch]:
    """Validation batches: every utterance once, longest first, each batch cropped from the
    start to its shortest member (at most ``crop_seconds``). No randomness: the same batches
    at every evaluation, so their losses are comparable along a training."""
    utts = sorted((u for u, n in lengths.items() if n >= min_seconds * sample_rate),
                  key=lambda u: (-lengths[u], u))
    budget, crop = int(batch_seconds * sample_rate), int(crop_seconds * sample_rate)
    groups: list[list[str]] = []
    size = crop
    for u in utts:
        new_size = min(size, lengths[u])
        if groups and groups[-1] and (len(groups[-1]) + 1) * new_size > budget:
            groups.append([])
            new_size = min(crop, lengths[u])
        if not groups:
            groups.append([])
        groups[-1].append(u)
        size = new_size
    out = []
    for group in groups:
        size = min(crop, min(lengths[u] for u in group))
        waves = np.stack([wave(u)[:size] for u in group]).astype(np.float32)
        out.append(Batch(waves, group, [0] * len(group),
                         crop_labels(label_sets or [], group, [0] * len(group), size,
                                     sample_rate)))
    return out
