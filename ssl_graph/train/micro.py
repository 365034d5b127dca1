"""Micro-batches: one global batch split by rows so each forward fits ``max_batch_seconds``.

Gradients of the micro-batches' *summed* losses accumulate and are divided once by the sample
size summed over micro-batches (and ranks), as fairseq's ``update_freq`` does, so the update is
that of the whole batch. Rows keep the global batch's width (crop or padded length), so every
utterance sees exactly the samples and padding it would see in one forward.
"""

from __future__ import annotations


def micro_slices(rows: int, width: int, max_samples: int | None) -> list[slice]:
    """Row slices of at most ``max_samples`` samples each (at least one row per slice)."""
    per = rows if max_samples is None else max(1, min(rows, max_samples // max(width, 1)))
    return [slice(i, min(i + per, rows)) for i in range(0, rows, per)]


def micro_seed(mask_seed: int, rank: int, index: int) -> int:
    """Seed of the other draws (channel masks, distractors, Gumbel noise) of micro-batch
    ``index`` on ``rank``; rank 0's first keeps the unsplit seed, so an unsplit run is today's."""
    return mask_seed + (rank << 48) + (index << 40)


def group_seed(mask_seed: int, group: int) -> int:
    """Mask seed of crop group ``group`` of a step; group 0 keeps the step's seed."""
    return mask_seed + (group << 32)


def batch_time_mask(model, wave, targets, mask_seed: int):
    """The (B, T) time mask the unsplit forward would draw for this crop batch, or None.

    Drawn once for the global batch and sliced by rows, so the masked frames do not depend on
    how the batch is split. Crops have no padding: every row has T valid frames.
    """
    return rows_time_mask(model, wave.shape[0], wave.shape[1],
                          [t.size(-1) for t in targets], mask_seed)


def rows_time_mask(model, rows: int, width: int, label_frames: list[int], mask_seed: int):
    """``batch_time_mask`` from shapes alone: a crop group of ``rows`` rows of ``width``
    samples whose label sets have ``label_frames`` frames per row. A rank holding some of the
    group's rows slices its rows out of it, without the others' audio."""
    import torch

    from ..nn.masking import time_mask
    from ..nn.targets import aligned_frames
    from ..specs.components_objectives import ClusterTargets

    spec = model.spec
    if spec.mask is None:
        return None
    T = int(model.frame_lengths(torch.tensor([width]))[0])
    if isinstance(spec.target, ClusterTargets):
        ratio = spec.label_ratio(spec.target.label_rate)
        T = aligned_frames(min(label_frames), T, ratio)
    return time_mask(spec.mask, torch.full((rows,), T, dtype=torch.long), T, mask_seed)
