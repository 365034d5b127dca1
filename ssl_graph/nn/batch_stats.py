"""Losses that are a function of the whole global batch, computed by forwards that see part of it.

An update's loss is fairseq's: the summed predictions plus auxiliary terms that are batch means
scaled by weight × sample_size, the diversity term being a function of the codebook usage
averaged over the batch. When a global batch is split into micro-batches or over ranks, each
part receives the global batch's :class:`BatchStats` and adds its *share* of each auxiliary term:
shares sum to the global term and their gradients sum to its gradient, so the update is that of
the unsplit batch (fairseq computes these per GPU and per micro-batch instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .quantizers import perplexity


@dataclass
class BatchStats:
    """Counts and codebook usage of the global batch (every crop group, rank and micro-batch)."""

    rows: int  # utterances
    sample_size: int  # predictions: the loss's normaliser
    scored: int  # frames the quantizer's statistics (usage, k-means loss) average over
    frames: int = 0  # encoder frames (rows × their frames): the feature penalty's mean is over them
    probs: Tensor | None = None  # (G, V) soft usage averaged over those frames (Diversity)
    codes: Tensor | None = None  # (G, V) hard code histogram over them (Diversity)

    def mean_share(self, mean: Tensor, part: int, whole: int) -> Tensor:
        """A part's share of (batch mean) × sample_size, from the mean over the part's
        ``part`` of the batch's ``whole`` items."""
        return mean * (part / max(whole, 1) * self.sample_size)

    def diversity_share(self, prob_sum: Tensor, scored: int, sample_size: int,
                        num_vars: int) -> Tensor:
        """A part's share of (GV − S(p̄))/GV × sample_size, S the perplexity of the batch's
        averaged usage p̄, from ``prob_sum`` (G, V): the part's softmax summed over its
        ``scored`` frames. The value is the part's ``sample_size`` share of the global term; the
        gradient is S's gradient at p̄ applied to the part's summed probabilities (a linear
        term whose values sum to 0 over the parts), the exact share of the global gradient."""
        pbar = self.probs.to(prob_sum.device, torch.float32)
        S = perplexity(pbar)
        value = (num_vars - S) / num_vars * sample_size
        dS = torch.exp(entropy(pbar))[:, None] * (-torch.log(pbar + 1e-7) - pbar / (pbar + 1e-7))
        lin = (dS * (prob_sum.float() - scored * pbar)).sum()
        return value - lin * (self.sample_size / max(self.scored, 1) / num_vars)


def entropy(probs: Tensor) -> Tensor:
    """(G,) entropies of (G, V) distributions, with :func:`perplexity`'s 1e-7 guard."""
    return -(probs * torch.log(probs + 1e-7)).sum(-1)
