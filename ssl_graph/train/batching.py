"""Which rows each training step holds: a pure function of (lengths, seed, step, the budgets).

Batches are built as fairseq builds them (reference/ssl_models.md §7):

* an epoch orders the utterances by length (capped at ``max_samples``, fairseq's
  ``max_sample_size``, for crops), longest first, ties broken by a permutation seeded by
  (seed, epoch): utterances of equal capped length (all those longer than the cap) are shuffled
  among themselves each epoch;
* that order is cut into *groups* of consecutive rows with ``rows × longest ≤ group budget``
  (fairseq's ``batch_by_size`` with ``max_tokens``: one GPU's batch; rows rounded down to a
  multiple of 8 where that leaves any, as fairseq's default); a pre-training group is
  cropped to its shortest row from seeded random starts (``random_crop``), a fine-tuning group
  padded to its longest, so rows of similar length lose little to either;
* the groups are shuffled per epoch, seeded by (seed, epoch), and each step takes the next
  ``groups_per_step`` of them (fairseq's GPUs × ``update_freq``): the global batch of one update.

The sorted lengths are the same every epoch, so every epoch has the same groups' sizes and the
same number of steps, and step k is step ``k mod n`` of epoch ``k div n``: any step's rows are
computed directly, so a resumed run, a DataLoader worker and every rank agree on them. A rank
then decodes only its contiguous block of the global rows (``rank_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: rows of a group are rounded down to a multiple of this where that leaves any (fairseq's
#: ``required_batch_size_multiple`` default): smaller groups of wide-spread lengths lose less
ROWS_MULTIPLE = 8


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


def size_cuts(sizes: np.ndarray, budget: int, multiple: int = ROWS_MULTIPLE) -> list[tuple[int, int]]:
    """Cut descending ``sizes`` into ``(lo, hi)`` groups with ``rows × longest ≤ budget`` (at
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


class LengthPlan:
    """The steps of a training: length-sorted groups, ``groups_per_step`` of them per step.

    ``max_samples`` set: pre-training crops (each group cropped to its shortest, at most
    ``max_samples``; utterances under ``min_samples`` left out). ``None``: whole utterances,
    each group padded to its longest."""

    def __init__(self, lengths: dict[str, int], *, group_budget: int, groups_per_step: int,
                 seed: int, max_samples: int | None = None, min_samples: int = 0,
                 random_crop: bool = True):
        usable = sorted(u for u, n in lengths.items() if n >= min_samples)
        if not usable:
            raise ValueError(f"no utterance is at least {min_samples} samples (min_seconds) "
                             "long; lower min_seconds" if min_samples else "no utterance to batch")
        self.utts = usable
        self.lengths = np.array([lengths[u] for u in usable], dtype=np.int64)
        self.crop = max_samples is not None
        self.sizes = np.minimum(self.lengths, max_samples) if self.crop else self.lengths
        self.seed, self.random_crop = seed, random_crop
        self.cuts = size_cuts(np.sort(self.sizes)[::-1], group_budget)
        self.per_step = max(1, groups_per_step)
        #: steps of one epoch (its last may hold fewer groups, as fairseq's last update does)
        self.steps_per_epoch = -(-len(self.cuts) // self.per_step)
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None

    def _epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(this epoch's length order, its order of groups)."""
        if self._epoch is None or self._epoch[0] != epoch:
            order = length_order(self.sizes, self.seed, epoch)
            groups = np.random.default_rng([self.seed, epoch, 1]).permutation(len(self.cuts))
            self._epoch = (epoch, order, groups)
        return self._epoch[1], self._epoch[2]

    def step(self, step: int) -> StepPlan:
        epoch, k = divmod(step, self.steps_per_epoch)
        order, perm = self._epoch_order(epoch)
        # crop starts: one draw per global row from (seed, step), so no split moves them
        rng = np.random.default_rng([self.seed, step, 2])
        groups, row = [], 0
        for gi, c in enumerate(perm[k * self.per_step:(k + 1) * self.per_step]):
            lo, hi = self.cuts[c]
            idx = order[lo:hi]
            if self.crop:
                width = int(self.sizes[idx].min())
                room = self.lengths[idx] - width
                starts = rng.integers(0, room + 1) if self.random_crop else np.zeros_like(room)
            else:
                width, starts = int(self.lengths[idx].max()), np.zeros(len(idx), dtype=np.int64)
            groups.append(Group(gi, row, hi - lo, width, 0, tuple(self.utts[i] for i in idx),
                                tuple(int(x) for x in starts)))
            row += hi - lo
        return StepPlan(step, tuple(groups))


def groups_per_step(batch_seconds: float, group_seconds: float | None) -> int:
    """Groups of ``group_seconds`` in a global batch of ``batch_seconds`` (None: one)."""
    return 1 if group_seconds is None else max(1, int(batch_seconds / group_seconds + 1e-9))
