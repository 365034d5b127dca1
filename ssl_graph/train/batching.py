"""Which rows each training step holds: a pure function of (lengths, seed, step, global budget).

Batches are built as fairseq builds them (reference/ssl_models.md §7), for the *global* batch of
one update:

* an epoch orders the utterances by their (capped) length, longest first, with ties broken by a
  permutation seeded by (seed, epoch): utterances of equal capped length (all those longer than
  the crop cap, for one) are shuffled among themselves each epoch;
* that order is cut into consecutive batches filling ``budget`` samples. Pre-training crops
  (``CropPlan``): a batch holds ``Σ rows × crop ≤ budget``; its rows form *crop groups* of
  similar length, each cropped to its shortest row (at most ``max_samples``, fairseq's
  ``max_sample_size``) from a seeded random start, so crops lose little audio (a global batch
  wider than one length — a corpus smaller than the batch — is several groups, as fairseq's
  global batch is several per-GPU batches). Fine-tuning (``PaddedPlan``): whole utterances,
  ``rows × longest ≤ budget`` of padded audio;
* the order of the batches is shuffled per epoch, seeded by (seed, epoch).

The sorted lengths are the same every epoch, so every epoch has the same number of batches and
step k is batch ``k mod n`` of epoch ``k div n``: any step's rows are computed directly, so a
resumed run, a DataLoader worker and every rank agree on them. A rank then decodes only its
contiguous block of rows (``rank_rows``), after the global batch is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: rows of a pre-training batch share a crop width while they are within this fraction of
#: their group's longest row; a shorter row starts a new group (bounds what cropping discards)
GROUP_SPREAD = 0.05


def rank_rows(total: int, rank: int, world: int) -> tuple[int, int, bool]:
    """Rank ``rank``'s contiguous block [lo, hi) of a global batch of ``total`` rows, and whether
    it only stands in: a batch with fewer rows than ranks leaves some ranks without any, and those
    take row 0 with weight 0 (as fairseq's dummy batches) so every rank joins the all-reduce."""
    lo, hi = rank * total // world, (rank + 1) * total // world
    return (lo, hi, False) if hi > lo else (0, 1, True)


def length_order(sizes: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """Indices longest first; equal sizes in an order seeded by (seed, epoch)."""
    tie = np.random.default_rng([seed, epoch, 0]).permutation(len(sizes))
    return np.lexsort((tie, sizes))[::-1]


def crop_cuts(sizes: np.ndarray, budget: int, spread: float = GROUP_SPREAD
              ) -> list[list[tuple[int, int, int]]]:
    """Cut descending ``sizes`` into batches of crop groups ``(lo, hi, width)``: consecutive rows
    while ``Σ rows × width ≤ budget`` (at least one row), a new group where a row is shorter than
    ``(1 - spread)`` × its group's longest, each group's width its shortest size."""
    batches, i, n = [], 0, len(sizes)
    while i < n:
        groups, closed = [], 0
        g_lo, g_first, width = i, int(sizes[i]), int(sizes[i])
        j = i + 1
        while j < n:
            x = int(sizes[j])
            if x >= g_first * (1.0 - spread):
                if closed + (j + 1 - g_lo) * x > budget:
                    break
                width = x
            else:
                if closed + (j - g_lo) * width + x > budget:
                    break
                groups.append((g_lo, j, width))
                closed += (j - g_lo) * width
                g_lo, g_first, width = j, x, x
            j += 1
        groups.append((g_lo, j, width))
        batches.append(groups)
        i = j
    return batches


def padded_cuts(sizes: np.ndarray, budget: int, multiple: int = 1) -> list[tuple[int, int]]:
    """Cut descending ``sizes`` into ``(lo, hi)`` batches with ``rows × longest ≤ budget`` (at
    least one row), rows rounded down to a multiple of ``multiple`` where that leaves any
    (fairseq's ``required_batch_size_multiple``)."""
    cuts, i, n = [], 0, len(sizes)
    while i < n:
        rows = max(1, budget // max(int(sizes[i]), 1))
        if rows >= multiple:
            rows -= rows % multiple
        hi = min(n, i + rows)
        cuts.append((i, hi))
        i = hi
    return cuts


@dataclass(frozen=True)
class Group:
    """Rows of one width in a step's global batch (or a rank's piece of them)."""

    index: int  # group number within the step
    first: int  # global row index of the group's first row
    rows: int  # rows of the whole group (a piece keeps its group's count)
    width: int  # samples per row: the crop (pre-training) or the padded length (fine-tuning)
    offset: int  # first row of this piece within the group
    utts: tuple[str, ...]
    starts: tuple[int, ...]  # crop starts (0 when padded)

    @property
    def global_rows(self) -> range:
        return range(self.first + self.offset, self.first + self.offset + len(self.utts))


@dataclass(frozen=True)
class StepPlan:
    """The global batch of one step: its groups, in row order."""

    step: int
    groups: tuple[Group, ...]

    @property
    def rows(self) -> int:
        return sum(g.rows for g in self.groups)

    @property
    def samples(self) -> int:
        """Audio samples of the global batch (crops, or padded rows)."""
        return sum(g.rows * g.width for g in self.groups)

    def share(self, rank: int, world: int) -> tuple[list[Group], bool]:
        """The pieces of the groups in rank ``rank``'s block of rows, and whether it stands in."""
        lo, hi, stand_in = rank_rows(self.rows, rank, world)
        pieces = []
        for g in self.groups:
            a, b = max(lo, g.first), min(hi, g.first + g.rows)
            if a < b:
                k0, k1 = a - g.first, b - g.first
                pieces.append(Group(g.index, g.first, g.rows, g.width, k0, g.utts[k0:k1],
                                    g.starts[k0:k1]))
        return pieces, stand_in


class _EpochPlan:
    """Shared by both rules: the usable utterances, their sort sizes, the epoch orders."""

    def __init__(self, lengths: dict[str, int], sizes: dict[str, int], seed: int, n_batches: int):
        self.utts = sorted(sizes)
        self.lengths = np.array([lengths[u] for u in self.utts], dtype=np.int64)
        self.sizes = np.array([sizes[u] for u in self.utts], dtype=np.int64)
        self.seed = seed
        self.n_batches = n_batches
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None

    def _locate(self, step: int) -> tuple[np.ndarray, int]:
        """(this epoch's length order, which of its batches) for ``step``."""
        epoch, k = divmod(step, self.n_batches)
        if self._epoch is None or self._epoch[0] != epoch:
            order = length_order(self.sizes, self.seed, epoch)
            batches = np.random.default_rng([self.seed, epoch, 1]).permutation(self.n_batches)
            self._epoch = (epoch, order, batches)
        return self._epoch[1], int(self._epoch[2][k])


class CropPlan(_EpochPlan):
    """Pre-training: length-sorted crop batches (see the module docstring)."""

    def __init__(self, lengths: dict[str, int], *, budget: int, max_samples: int,
                 min_samples: int, seed: int, random_crop: bool = True):
        usable = {u: n for u, n in lengths.items() if n >= min_samples}
        if not usable:
            raise ValueError(f"no utterance is at least {min_samples} samples (min_seconds) "
                             "long; lower min_seconds")
        sizes = {u: min(n, max_samples) for u, n in usable.items()}
        super().__init__(usable, sizes, seed, 0)
        self.cuts = crop_cuts(np.sort(self.sizes)[::-1], budget)
        self.n_batches = len(self.cuts)
        self.random_crop = random_crop

    def step(self, step: int) -> StepPlan:
        order, b = self._locate(step)
        # crop starts: one draw per global row from (seed, step), so no split moves them
        rng = np.random.default_rng([self.seed, step, 2])
        groups, row = [], 0
        for gi, (lo, hi, width) in enumerate(self.cuts[b]):
            idx = order[lo:hi]
            room = self.lengths[idx] - width
            starts = rng.integers(0, room + 1) if self.random_crop else np.zeros_like(room)
            groups.append(Group(gi, row, hi - lo, width, 0, tuple(self.utts[i] for i in idx),
                                tuple(int(s) for s in starts)))
            row += hi - lo
        return StepPlan(step, tuple(groups))


class PaddedPlan(_EpochPlan):
    """Fine-tuning: length-sorted batches of whole utterances, padded to their longest."""

    def __init__(self, lengths: dict[str, int], *, budget: int, seed: int, multiple: int = 1):
        if not lengths:
            raise ValueError("no utterance to batch")
        super().__init__(lengths, lengths, seed, 0)
        self.cuts = padded_cuts(np.sort(self.sizes)[::-1], budget, multiple)
        self.n_batches = len(self.cuts)

    def step(self, step: int) -> StepPlan:
        order, b = self._locate(step)
        lo, hi = self.cuts[b]
        idx = order[lo:hi]
        width = int(self.lengths[idx].max())
        return StepPlan(step, (Group(0, 0, hi - lo, width, 0, tuple(self.utts[i] for i in idx),
                                     (0,) * (hi - lo)),))
