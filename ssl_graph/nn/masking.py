"""Apply a :class:`SpanMask` policy to frame features, with seeded, reproducible masks."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..specs.components import SpanMask
from .common import derive_seed

TIME_STREAM, CHANNEL_STREAM = 1, 2


def time_mask(spec: SpanMask, lengths: Tensor, n_frames: int, seed: int) -> Tensor:
    """(B, T) bool span mask (True = masked) for utterances of ``lengths`` valid frames."""
    from ..kernels.masking import compute_mask_indices

    B = lengths.numel()
    if spec.prob == 0:
        return torch.zeros(B, n_frames, dtype=torch.bool, device=lengths.device)
    mask = compute_mask_indices(
        (B, n_frames),
        spec.prob,
        spec.length,
        lengths=lengths.cpu().numpy().astype(np.int64),
        mask_type=spec.mask_type,
        mask_other=spec.mask_other,
        min_masks=spec.min_masks,
        no_overlap=spec.no_overlap,
        min_space=spec.min_space,
        require_same_masks=spec.require_same_masks,
        mask_dropout=spec.mask_dropout,
        add_masks=spec.add_masks,
        seed=derive_seed(seed, TIME_STREAM),
    )
    return torch.from_numpy(mask).to(lengths.device)


def channel_mask(
    spec: SpanMask, batch: int, channels: int, seed: int, device: torch.device
) -> Tensor | None:
    """(B, C) bool channel mask, or None when ``channel_prob`` is 0."""
    if spec.channel_prob == 0:
        return None
    from ..kernels.masking import compute_channel_mask

    mask = compute_channel_mask(
        (batch, channels),
        spec.channel_prob,
        spec.channel_length,
        mask_type=spec.channel_type,
        mask_other=spec.channel_other,
        no_overlap=spec.channel_no_overlap,
        min_space=spec.channel_min_space,
        seed=derive_seed(seed, CHANNEL_STREAM),
    )
    return torch.from_numpy(mask).to(device)


def apply_masks(
    x: Tensor, mask: Tensor | None, emb: Tensor | None, channels: Tensor | None
) -> Tensor:
    """Replace masked frames by ``emb`` — the learned (C,) embedding, or (B, T, C) values such as
    :func:`mask_noise` — then zero masked channels everywhere."""
    if mask is not None and emb is not None:
        x = torch.where(mask.unsqueeze(-1), emb.to(x.dtype), x)
    if channels is not None:
        x = x.masked_fill(channels.unsqueeze(1), 0.0)
    return x


def mask_noise(spec: SpanMask, rand, shape) -> Tensor:
    """(B, T, C) = ``shape`` N(0, ``noise_std``²) values for ``replace="noise"`` (BEST-RQ), row b
    from row b's own stream (``rand``: the forward's ``RowRandom``), so the values a row's masked
    frames get do not depend on the micro-batch or rank that computes it."""
    from .row_random import MASK_NOISE_STREAM

    if shape[0] != len(rand.rows):
        raise ValueError(f"mask noise for {shape[0]} rows asked of {len(rand.rows)}")
    return rand.normal(MASK_NOISE_STREAM, shape[1:], std=spec.noise_std)
