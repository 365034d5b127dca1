"""Micro-batches: one global batch split by rows so each forward fits ``max_batch_seconds``.

Gradients of the micro-batches' *summed* losses accumulate and are divided once by the sample
size summed over micro-batches (and ranks), as fairseq's ``update_freq`` does. Rows keep the
global batch's width (crop or padded length), so every utterance sees exactly the samples and
padding it would see in one forward.

A split pre-training batch (micro-batches, ranks) gives the unsplit update, not fairseq's
per-forward one: the time and channel masks are drawn once for the global batch and sliced by
rows; distractors and Gumbel noise are drawn per global row (``nn/row_random.py``); and the
auxiliary losses take their global values from the batch's ``BatchStats`` (``nn/batch_stats.py``),
the averaged codebook usage of the diversity loss from a no-grad pass over every part of the
batch (encoder and quantizer only), summed over ranks. Cross-sample distractors are the one
exception: they come from the frames of one forward (see ``Pretrain.semantic``).
"""

from __future__ import annotations

from dataclasses import dataclass


def micro_slices(rows: int, width: int, max_samples: int | None) -> list[slice]:
    """Row slices of at most ``max_samples`` samples each (at least one row per slice)."""
    per = rows if max_samples is None else max(1, min(rows, max_samples // max(width, 1)))
    return [slice(i, min(i + per, rows)) for i in range(0, rows, per)]


def micro_seed(mask_seed: int, rank: int, index: int) -> int:
    """Seed of fine-tuning's draws (masks, Gumbel noise) in micro-batch ``index`` on ``rank``;
    rank 0's first keeps the unsplit seed, so an unsplit run is today's."""
    return mask_seed + (rank << 48) + (index << 40)


def batch_masks(model, wave, targets, mask_seed: int):
    """(time mask (B, T) or None, channel mask (B, C) or None, valid (B, T)) the unsplit
    forward draws for this crop batch: crops have no padding, every row has T valid frames."""
    import torch

    from ..nn.masking import channel_mask, time_mask
    from ..nn.targets import aligned_frames
    from ..specs.components_objectives import ClusterTargets

    spec = model.spec
    B, S = wave.shape
    T = int(model.frame_lengths(torch.tensor([S]))[0])
    if isinstance(spec.target, ClusterTargets):
        ratio = spec.label_ratio(spec.target.label_rate)
        T = aligned_frames(min(t.size(-1) for t in targets), T, ratio)
    valid = torch.ones(B, T, dtype=torch.bool)
    if spec.mask is None:
        return None, None, valid
    mask = time_mask(spec.mask, torch.full((B,), T, dtype=torch.long), T, mask_seed)
    chans = channel_mask(spec.mask, B, model.mask_emb.numel(), mask_seed, torch.device("cpu"))
    return mask, chans, valid


@dataclass
class Part:
    """One forward of a split batch: its rows and the keyword arguments of the model."""

    wave: object  # (b, S) tensor
    targets: list
    kwargs: dict


class SplitBatch:
    """A pre-training global batch as this rank's forwards (one when nothing splits it).

    ``weight`` is 0 on a stand-in rank (fewer rows than ranks): its forward only joins the
    gradient all-reduce. Every rank must build it (the usage pass all-reduces).
    """

    def __init__(self, session, model, wave, targets, mask_seed: int):
        B = wave.shape[0]
        mine, stand_in = session.shard(B)
        self.weight = 0.0 if stand_in else 1.0
        my_wave, my_targets = wave[mine], [t[mine] for t in targets]
        slices = session.micro_slices(*my_wave.shape)
        split = session.ranks.on or len(slices) > 1
        self.parts: list[Part] = []
        if not split:  # the forward draws the masks of the whole batch itself
            self.parts.append(Part(my_wave, my_targets, {"mask_seed": mask_seed}))
            return
        mask, chans, valid = batch_masks(model, wave, targets, mask_seed)
        stats = model.batch_stats(mask, valid)
        rows = list(range(B))[mine]
        for s in slices:
            self.parts.append(Part(my_wave[s], [t[s] for t in my_targets], {
                "mask_seed": mask_seed, "rows": rows[s], "stats": stats,
                "mask": None if mask is None else mask[mine][s],
                "channels": None if chans is None else chans[mine][s]}))
        if model.needs_usage:
            self._usage(session, model, stats)

    def _usage(self, session, model, stats) -> None:
        """The batch's averaged codebook usage: a no-grad pass over this rank's parts, summed
        over ranks."""
        import torch

        G, V = model.spec.quantizer.groups, model.spec.quantizer.entries
        total = torch.zeros(2, G, V, dtype=torch.float64)
        for p in self.parts:
            with session.autocast():
                soft, hard, _ = model.codebook_usage(
                    p.wave.to(session.device), [t.to(session.device) for t in p.targets] or None,
                    p.kwargs["mask"])
            total += torch.stack([soft, hard]).cpu() * self.weight
        total = session.ranks.sum_tensor(total, session.device)
        stats.probs = (total[0] / max(stats.scored, 1)).float()
        stats.codes = total[1].float()
