"""Batches of whole utterances, zero-padded, for fine-tuning and decoding.

Labeled utterances are short (2-6 s) and their transcripts cover the whole file, so nothing is
cropped. Training batches are groups of similar lengths (``batching.LengthPlan``: fairseq's
size-sorted batches, shuffled per epoch by (seed, epoch)), each padded to its longest, so little
is padding; batch k is the same whether a run went straight through or resumed from a
checkpoint, and a rank decodes only its rows (each padded to its group's longest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batching import LengthPlan, groups_per_step
from .data import StepBatch, WaveCache


@dataclass
class PaddedBatch:
    """Whole utterances of one group (or a rank's piece of it), zero-padded."""

    wave: np.ndarray  # (B, S) float32, zero-padded
    padding_mask: np.ndarray | None  # (B, S) bool, True at padding; None when nothing pads
    utts: list[str]
    group: int = 0  # group number within the step
    group_rows: int = 0  # rows of the whole group
    offset: int = 0  # first of these rows within the group
    #: global row indices of these rows in their step's batch (None: 0..B-1)
    rows: np.ndarray | None = None


def pad_batch(waves: list[np.ndarray], utts: list[str], width: int | None = None,
              **group) -> PaddedBatch:
    n = max(len(w) for w in waves) if width is None else width
    wave = np.zeros((len(waves), n), dtype=np.float32)
    pad = np.ones((len(waves), n), dtype=bool)
    for i, w in enumerate(waves):
        wave[i, :len(w)] = w
        pad[i, :len(w)] = False
    return PaddedBatch(wave, pad if pad.any() else None, utts, **group)


class UtteranceBatcher:
    """Batches of whole utterances with at most ``batch_seconds`` of padded audio; decoded
    utterances are kept up to ``cache_bytes``."""

    def __init__(self, paths: dict[str, object], lengths: dict[str, int], *, sample_rate: int,
                 batch_seconds: float, seed: int, group_seconds: float | None = None,
                 cache: bool = True, cache_bytes: int = 2 << 30):
        self.paths, self.lengths, self.sr = paths, lengths, sample_rate
        self.utts = sorted(lengths)
        self.batch_samples = int(batch_seconds * sample_rate)
        self.group_samples = int((group_seconds or batch_seconds) * sample_rate)
        self.per_step = groups_per_step(batch_seconds, group_seconds)
        self.seed = seed
        self.wave = WaveCache(paths, sample_rate, cache_bytes if cache else 0)
        self._plan: LengthPlan | None = None

    @property
    def plan(self) -> LengthPlan:
        if self._plan is None:
            self._plan = LengthPlan(self.lengths, group_budget=self.group_samples,
                                    groups_per_step=self.per_step, seed=self.seed)
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

    def batch(self, step: int, rank: int = 0, world: int = 1) -> StepBatch:
        """Rank ``rank``'s rows of step ``step``, each padded to its group's longest."""
        plan = self.plan.step(step)
        pieces, stand_in = plan.share(rank, world)
        groups = [pad_batch([self.wave(u) for u in g.utts], list(g.utts), g.width,
                            group=g.index, group_rows=g.rows, offset=g.offset,
                            rows=np.asarray(g.global_rows, dtype=np.int64)) for g in pieces]
        return StepBatch(groups, plan.rows, plan.samples, stand_in)

    def in_order(self):
        """Every utterance once, longest first (little padding), for decoding."""
        rest = sorted(self.utts, key=lambda u: (-self.lengths[u], u))
        while rest:
            chosen = self._fill(rest)
            rest = rest[len(chosen):]
            yield pad_batch([self.wave(u) for u in chosen], chosen)
