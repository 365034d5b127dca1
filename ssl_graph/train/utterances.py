"""Batches of whole utterances, zero-padded, for fine-tuning and decoding.

Labeled utterances are short (2-6 s) and their transcripts cover the whole file, so nothing is
cropped. A training batch is drawn with a generator seeded by (seed, step): batch k is the same
whether a run went straight through or resumed from a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.io import read_audio


@dataclass
class PaddedBatch:
    wave: np.ndarray  # (B, S) float32, zero-padded
    padding_mask: np.ndarray | None  # (B, S) bool, True at padding; None when nothing pads
    utts: list[str]


def pad_batch(waves: list[np.ndarray], utts: list[str]) -> PaddedBatch:
    n = max(len(w) for w in waves)
    wave = np.zeros((len(waves), n), dtype=np.float32)
    pad = np.ones((len(waves), n), dtype=bool)
    for i, w in enumerate(waves):
        wave[i, :len(w)] = w
        pad[i, :len(w)] = False
    return PaddedBatch(wave, pad if pad.any() else None, utts)


class UtteranceBatcher:
    """Random batches of whole utterances with at most ``batch_seconds`` of padded audio."""

    def __init__(self, paths: dict[str, object], lengths: dict[str, int], *, sample_rate: int,
                 batch_seconds: float, seed: int, cache: bool = True):
        self.paths, self.lengths, self.sr = paths, lengths, sample_rate
        self.utts = sorted(lengths)
        self.batch_samples = int(batch_seconds * sample_rate)
        self.seed = seed
        self._cache: dict[str, np.ndarray] | None = {} if cache else None

    def wave(self, utt: str) -> np.ndarray:
        if self._cache is not None and utt in self._cache:
            return self._cache[utt]
        w = read_audio(self.paths[utt], utt, self.sr)
        if self._cache is not None:
            self._cache[utt] = w
        return w

    def _fill(self, order: list[str]) -> list[str]:
        """Take utterances in order while (count × longest) fits the budget; at least one."""
        chosen, longest = [], 0
        for u in order:
            new_longest = max(longest, self.lengths[u])
            if chosen and (len(chosen) + 1) * new_longest > self.batch_samples:
                break
            chosen.append(u)
            longest = new_longest
        return chosen

    def batch(self, step: int) -> PaddedBatch:
        rng = np.random.default_rng([self.seed, step])
        chosen = self._fill([self.utts[i] for i in rng.permutation(len(self.utts))])
        return pad_batch([self.wave(u) for u in chosen], chosen)

    def in_order(self):
        """Every utterance once, longest first (little padding), for decoding."""
        rest = sorted(self.utts, key=lambda u: (-self.lengths[u], u))
        while rest:
            chosen = self._fill(rest)
            rest = rest[len(chosen):]
            yield pad_batch([self.wave(u) for u in chosen], chosen)
