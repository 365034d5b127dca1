"""Training batches: the rows ``batching.LengthPlan`` gives a step, decoded and cropped, with their
label slices.

The plan of every step is a pure function of (lengths, seed, step, batch_seconds); this module
only decodes. A rank decodes only its block of the global batch's rows, so ranks share the
decoding instead of each decoding the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..audio.io import read_audio
from .batching import Group, LengthPlan, groups_per_step


@dataclass
class Batch:
    """Rows of one width: a crop group of a step (or a rank's piece of it), or a fixed
    validation batch."""

    wave: np.ndarray  # (B, S) float32
    utts: list[str]
    starts: list[int]
    #: one (B, T_lab) int64 array per label set (cropped to the same audio span)
    labels: list[np.ndarray]
    #: global row indices of these rows in their step's batch
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    group: int = 0  # group number within the step
    group_rows: int = 0  # rows of the whole group (0: these rows are the whole group)
    offset: int = 0  # first of these rows within the group


@dataclass
class StepBatch:
    """What one rank trains on at a step: its pieces of the step's crop groups."""

    groups: list[Batch]
    batch_rows: int  # rows of the global batch
    samples: int  # audio samples of the global batch
    stand_in: bool  # the global batch has fewer rows than ranks: this rank's row weighs 0

    @property
    def utts(self) -> list[str]:
        return [u for g in self.groups for u in g.utts]


class WaveCache:
    """Decoded utterances kept up to ``max_bytes`` (first come, first kept)."""

    def __init__(self, paths: dict[str, object], sample_rate: int, max_bytes: int):
        self.paths, self.sr, self.max_bytes = paths, sample_rate, max_bytes
        self._waves: dict[str, np.ndarray] = {}
        self._bytes = 0

    def __call__(self, utt: str) -> np.ndarray:
        w = self._waves.get(utt)
        if w is None:
            w = read_audio(self.paths[utt], utt, self.sr)
            if self._bytes + w.nbytes <= self.max_bytes:
                self._waves[utt] = w
                self._bytes += w.nbytes
        return w


class CropSampler:
    """The crop batches of a training (``batching.LengthPlan``), decoded per rank."""

    def __init__(self, paths: dict[str, object], lengths: dict[str, int], *, sample_rate: int,
                 batch_seconds: float, crop_seconds: float, min_seconds: float, seed: int,
                 group_seconds: float | None = None,
                 label_sets: list[tuple[dict[str, np.ndarray], float]] | None = None,
                 cache_bytes: int = 2 << 30, mixing=None):
        self.sr = sample_rate
        self.plan = LengthPlan(
            lengths, group_budget=int((group_seconds or batch_seconds) * sample_rate),
            groups_per_step=groups_per_step(batch_seconds, group_seconds), seed=seed,
            max_samples=int(crop_seconds * sample_rate), min_samples=int(min_seconds * sample_rate))
        self.utts = self.plan.utts
        self.label_sets = label_sets or []
        self.wave = WaveCache(paths, sample_rate, cache_bytes)
        #: WavLM's utterance mixing (``UtteranceMixing``), or None
        self.mixing = mixing

    def _decode(self, g: Group) -> Batch:
        waves = [self.wave(u)[s:s + g.width] for u, s in zip(g.utts, g.starts)]
        return Batch(np.stack(waves).astype(np.float32), list(g.utts), list(g.starts),
                     crop_labels(self.label_sets, list(g.utts), list(g.starts), g.width, self.sr),
                     np.asarray(g.global_rows, dtype=np.int64), g.index, g.rows, g.offset)

    def batch(self, step: int, rank: int = 0, world: int = 1) -> StepBatch:
        plan = self.plan.step(step)
        pieces, stand_in = plan.share(rank, world)
        batches = [self._decode(g) for g in pieces]
        if self.mixing is not None:
            from .mixing import mix_rows, mixing_plan

            mixes = mixing_plan(self.mixing, plan, self.plan.seed)
            for b in batches:
                mix_rows(mixes, plan, b.wave, b.rows, self.wave)
        return StepBatch(batches, plan.rows, plan.samples, stand_in)


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
