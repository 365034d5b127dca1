"""Aligning frame labels (HuBERT cluster ids) with model frames; pure index arithmetic.

These work on numpy arrays and torch tensors alike (only slicing and integer indexing), so the
data loader can crop labels without importing the model.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TypeVar

import numpy as np

A = TypeVar("A")  # np.ndarray or torch.Tensor


def _as_fraction(ratio: float) -> Fraction:
    """The ratio as an exact fraction when it is one (2, 1/2, 5/8), so indices never drift."""
    frac = Fraction(ratio).limit_denominator(1000)
    return frac if abs(float(frac) - ratio) < 1e-9 else Fraction(ratio)


def aligned_frames(n_labels: int, n_frames: int, ratio: float) -> int:
    """Frames kept so every frame has a label: int(n_labels / ratio) when ratio·n_frames > n_labels."""
    frac = _as_fraction(ratio)
    if frac * n_frames > n_labels:
        return int(n_labels * frac.denominator // frac.numerator)
    return n_frames


def label_indices(n_frames: int, ratio: float) -> np.ndarray:
    """Label index of each frame: floor(t · ratio)."""
    frac = _as_fraction(ratio)
    t = np.arange(n_frames, dtype=np.int64)
    return t * frac.numerator // frac.denominator


def align_targets(labels: A, n_frames: int, ratio: float) -> tuple[A, int]:
    """fairseq HuBERT alignment of (..., T_lab) labels to ``n_frames`` model frames.

    ``ratio`` = labels per frame = label_rate × encoder stride / sample_rate (2 for 100 Hz
    MFCC labels and a 320-sample stride). Frames without a label are trimmed: returns
    (labels[..., floor(t·ratio)] for the kept t, number of frames kept).
    """
    kept = aligned_frames(labels.shape[-1], n_frames, ratio)
    idx = label_indices(kept, ratio)
    if not isinstance(labels, np.ndarray):  # torch: index with a tensor on the same device
        import torch

        idx = torch.from_numpy(idx).to(labels.device)
    return labels[..., idx], kept


def crop_labels(
    labels: A, start: int, n_samples: int, label_rate: float, sample_rate: int = 16000
) -> A:
    """Labels of an audio crop [start, start + n_samples), as fairseq's HuBERT dataset slices.

    Start round(start·rate/sr), length round(n_samples·rate/sr).
    """
    first = round(start * label_rate / sample_rate)
    return labels[..., first : first + round(n_samples * label_rate / sample_rate)]
