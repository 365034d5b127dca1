"""Batches of whole utterances, zero-padded, for fine-tuning and decoding.

Labeled utterances are short (2-6 s) and their transcripts cover the whole file, so nothing is
cropped. Training batches are length-sorted (``batching.PaddedPlan``: fairseq's size-sorted
batches, shuffled per epoch by (seed, epoch)), so rows of a batch have similar lengths and little
is padding; batch k is the same whether a run went straight through or resumed from a
checkpoint, and a rank decodes only its rows (padded to the global batch's longest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batching import PaddedPlan
from .data import WaveCache


@dataclass
class PaddedBatch:
    wave: np.ndarray  # (B, S) float32, zero-padded
    padding_mask: np.ndarray | None  # (B, S) bool, True at padding; None when nothing pads
    utts: list[str]
    rows: int = 0  # rows of the global batch (0: these rows are all of it)
    samples: int = 0  # padded samples of the global batch (0: this array's)
    stand_in: bool = False  # fewer global rows than ranks: this rank's row weighs 0

    def __post_init__(self):
        self.rows = self.rows or len(self.utts)
        self.samples = self.samples or int(self.wave.size)


def pad_batch(waves: list[np.ndarray], utts: list[str], width: int | None = None,
              **globals_) -> PaddedBatch:
    n = max(len(w) for w in waves) if width is None else width
    wave = np.zeros((len(waves), n), dtype=np.float32)
    pad = np.ones((len(waves), n), dtype=bool)
    for i, w in enumerate(waves):
        wave[i, :len(w)] = w
        pad[i, :len(w)] = False
    return PaddedBatch(wave, pad if pad.any() else None, utts, **globals_)


class UtteranceBatcher:
    """Batches of whole utterances with at most ``batch_seconds`` of padded audio; decoded
    utterances are kept up to ``cache_bytes``."""

    def __init__(self, paths: dict[str, object], lengths: dict[str, int], *, sample_rate: int,
                 batch_seconds: float, seed: int, cache: bool = True, cache_bytes: int = 2 << 30):
        self.paths, self.lengths, self.sr = paths, lengths, sample_rate
        self.utts = sorted(lengths)
        self.batch_samples = int(batch_seconds * sample_rate)
        self.seed = seed
        self.wave = WaveCache(paths, sample_rate, cache_bytes if cache else 0)
        self._plan: PaddedPlan | None = None

    @property
    def plan(self) -> PaddedPlan:
        if self._plan is None:
            self._plan = PaddedPlan(self.lengths, budget=self.batch_samples, seed=self.seed)
        return self._plan

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

    def batch(self, step: int, rank: int = 0, world: int = 1) -> PaddedBatch:
        plan = self.plan.step(step)
        (g,), stand_in = plan.share(rank, world)
        return pad_batch([self.wave(u) for u in g.utts], list(g.utts), g.width, rows=plan.rows,
                         samples=plan.samples, stand_in=stand_in)

    def in_order(self):
        """Every utterance once, longest first (little padding), for decoding."""
        rest = sorted(self.utts, key=lambda u: (-self.lengths[u], u))
        while rest:
            chosen = self._fill(rest)
            rest = rest[len(chosen):]
            yield pad_batch([self.wave(u) for u in chosen], chosen)
