"""Micro-batches: one global batch split by rows so each forward fits ``max_batch_seconds``.

Gradients of the micro-batches' *summed* losses accumulate and are divided once by the sample
size summed over micro-batches (and ranks), as fairseq's ``update_freq`` does. Rows keep their
group's width (crop or padded length), so every utterance sees exactly the samples and padding it
would see in one forward.

The global batch of a pre-training step is all its crop groups (``batching.py``), on every rank;
a step of several groups is several forwards even in one process (fairseq's ``update_freq``).
Its update does not depend on how the step is split (micro-batches, ranks), unlike fairseq's
per-forward one: each group's time and channel masks are drawn once for the whole group (seeded
by ``group_seed``) and sliced by rows; distractors and Gumbel noise are drawn per row of the
step (``nn/row_random.py``, keyed by the global row index); and the auxiliary losses take their
values from the step's ``BatchStats`` (``nn/batch_stats.py``): counts over every group and rank,
the averaged codebook usage of the diversity loss from a no-grad pass over every forward of the
step (encoder and quantizer only), summed over ranks. Cross-sample distractors are the one
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


def group_seed(mask_seed: int, group: int) -> int:
    """Mask seed of crop group ``group`` of a step; group 0 keeps the step's seed."""
    return mask_seed + (group << 32)


def group_masks(model, rows: int, width: int, label_frames: list[int], mask_seed: int):
    """(time mask (rows, T) or None, channel mask (rows, C) or None, valid (rows, T)) that one
    forward over a whole crop group of ``rows`` rows of ``width`` samples (label sets of
    ``label_frames`` frames a row) draws itself, from shapes alone: a rank or micro-batch holding
    some of the group's rows slices them out. Crops have no padding: every row has T frames."""
    import torch

    from ..nn.masking import channel_mask, time_mask

    spec = model.spec
    T = model.kept_frames(int(model.frame_lengths(torch.tensor([width]))[0]), label_frames)
    valid = torch.ones(rows, T, dtype=torch.bool)
    if spec.mask is None:
        return None, None, valid
    mask = time_mask(spec.mask, torch.full((rows,), T, dtype=torch.long), T, mask_seed)
    chans = channel_mask(spec.mask, rows, model.context_input_dim, mask_seed, torch.device("cpu"))
    return mask, chans, valid


@dataclass
class Part:
    """One forward of a split step: its rows and the keyword arguments of the model."""

    wave: object  # (b, S) tensor
    targets: list
    kwargs: dict


class SplitBatch:
    """A pre-training step as this rank's forwards: its pieces of the step's crop groups
    (``groups``: dicts with ``wave``, ``labels``, ``rows`` (global row indices), ``group``,
    ``group_rows``, ``offset``), each in micro-batches.

    A step that is one forward (one group, one process, no micro-batches) draws its masks and
    computes its auxiliary terms itself; any other passes every forward the step's
    ``BatchStats``. ``weight`` is 0 on a stand-in rank (fewer rows than ranks): its forward
    only joins the gradient all-reduce. Every rank must build it (the statistics all-reduce).
    """

    def __init__(self, session, model, groups: list[dict], mask_seed: int, stand_in: bool):
        self.weight = 0.0 if stand_in else 1.0
        pieces = [(g, session.micro_slices(*g["wave"].shape)) for g in groups]
        self.parts: list[Part] = []
        if not session.ranks.on and len(pieces) == 1 and len(pieces[0][1]) == 1:
            g = groups[0]
            self.parts.append(Part(g["wave"], list(g["labels"]), {
                "mask_seed": group_seed(mask_seed, g["group"]), "rows": _ints(g["rows"])}))
            return
        from ..nn.batch_stats import BatchStats

        stats = BatchStats(rows=0, sample_size=0, scored=0, frames=0)
        counts = [0, 0, 0, 0]  # this rank's rows, predictions, quantized frames, frames
        for g, slices in pieces:
            wave, targets, n, lo = g["wave"], list(g["labels"]), g["wave"].shape[0], g["offset"]
            seed = group_seed(mask_seed, g["group"])
            mask, chans, valid = group_masks(model, g["group_rows"], wave.shape[1],
                                             [t.size(-1) for t in targets], seed)
            mask = None if mask is None else mask[lo:lo + n]
            chans = None if chans is None else chans[lo:lo + n]
            piece = model.batch_stats(mask, valid[lo:lo + n])
            counts = [c + x for c, x in zip(counts, (piece.rows, piece.sample_size,
                                                     piece.scored, piece.frames))]
            rows = _ints(g["rows"])
            for s in slices:
                self.parts.append(Part(wave[s], [t[s] for t in targets], {
                    "mask_seed": seed, "rows": rows[s], "stats": stats,
                    "mask": None if mask is None else mask[s],
                    "channels": None if chans is None else chans[s]}))
        self._reduce(session, model, stats, counts)

    def _reduce(self, session, model, stats, counts: list[int]) -> None:
        """The step's counts and, when a loss needs it, its averaged codebook usage (a no-grad
        pass over this rank's forwards): one sum over ranks."""
        import torch

        total = torch.tensor(counts, dtype=torch.float64) * self.weight
        usage = model.needs_usage
        if usage:
            G, V = model.spec.quantizer.groups, model.spec.quantizer.entries
            used = torch.zeros(2, G, V, dtype=torch.float64)
            for p in self.parts:
                with session.autocast():
                    soft, hard, _ = model.codebook_usage(
                        p.wave.to(session.device),
                        [t.to(session.device) for t in p.targets] or None, p.kwargs["mask"])
                used += torch.stack([soft, hard]).cpu() * self.weight
            total = torch.cat([total, used.flatten()])
        total = session.ranks.sum_tensor(total, session.device)
        stats.rows, stats.sample_size, stats.scored, stats.frames = (
            int(round(float(x))) for x in total[:4])
        if usage:
            used = total[4:].view(2, G, V)
            stats.probs = (used[0] / max(stats.scored, 1)).float()
            stats.codes = used[1].float()

    @classmethod
    def whole(cls, session, model, wave, targets: list, mask_seed: int) -> SplitBatch:
        """One batch of one width (e.g. a fixed validation batch), every rank holding all of it:
        this rank's block of its rows."""
        B = wave.shape[0]
        mine, stand_in = session.shard(B)
        group = {"wave": wave[mine], "labels": [t[mine] for t in targets],
                 "rows": list(range(B))[mine], "group": 0, "group_rows": B,
                 "offset": mine.start}
        return cls(session, model, [group], mask_seed, stand_in)


def _ints(rows) -> list[int]:
    return [int(r) for r in rows]
