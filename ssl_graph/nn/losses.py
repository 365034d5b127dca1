"""Loss functions of the objectives, as plain functions on tensors.

Every prediction loss is a *sum* over predictions (fairseq convention): the training loop
divides the total by the batch's ``sample_size`` (summed over accumulation steps and ranks).
Auxiliary losses are per-batch means that the model scales by weight × sample_size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sample_excluding_self(n: Tensor, pos: Tensor, u: Tensor) -> Tensor:
    """Uniform draws (with replacement) from [0, n) without ``pos``, one per uniform in ``u``.

    ``u`` (``n.shape + (num,)``, in [0, 1)) gives r = ⌊u·(n−1)⌋ in [0, n−1); r ≥ pos shifts up
    by one (fairseq's self-exclusion trick). An item with n == 1 has no other candidate and gets
    itself, which callers mask as a duplicate. Returns local indices shaped like ``u``.
    """
    high = (n - 1).clamp(min=1).unsqueeze(-1)
    r = torch.minimum((u * high).long(), high - 1)
    return r + ((r >= pos.unsqueeze(-1)) & (n.unsqueeze(-1) > 1)).long()


def sample_negatives(rows: Tensor, same: Tensor | None, cross: Tensor | None = None) -> Tensor:
    """Distractor indices for N candidates grouped by utterance.

    ``rows`` (N,) is each candidate's utterance, non-decreasing (masked frames in row-major
    order). ``same`` (N, num) uniforms draw distractors from the candidate's utterance and
    ``cross`` (N, cross_num) from all N, never the candidate itself. Returns
    (N, num + cross_num) indices into the N candidates.
    """
    N = rows.numel()
    idx = torch.arange(N, device=rows.device)
    parts = []
    if same is not None and same.size(-1) > 0:
        counts = torch.bincount(rows)
        starts = (torch.cumsum(counts, 0) - counts)[rows]
        local = sample_excluding_self(counts[rows], idx - starts, same)
        parts.append(starts.unsqueeze(-1) + local)
    if cross is not None and cross.size(-1) > 0:
        parts.append(sample_excluding_self(torch.full_like(idx, N), idx, cross))
    return torch.cat(parts, dim=-1)


def similarity_logits(x: Tensor, pos: Tensor, negs: Tensor, temperature: float) -> Tensor:
    """cos(x, [pos; negs]) / τ as (N, 1 + K); a distractor equal to the positive gets −inf."""
    cand = torch.cat([pos.unsqueeze(1), negs], dim=1).float()
    logits = torch.cosine_similarity(x.float().unsqueeze(1), cand, dim=-1) / temperature
    dup = (negs == pos.unsqueeze(1)).all(-1)
    if dup.any():
        logits[:, 1:] = logits[:, 1:].masked_fill(dup, float("-inf"))
    return logits


def info_nce(logits: Tensor) -> Tensor:
    """Cross-entropy with the positive in column 0, summed over rows."""
    target = torch.zeros(logits.size(0), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target, reduction="sum")


def positive_wins(logits: Tensor) -> Tensor:
    """Rows whose positive (column 0) strictly beats every distractor; ties count as wrong."""
    return logits[:, 0] > logits[:, 1:].max(-1).values


def diversity_loss(prob_perplexity: Tensor, num_vars: int) -> Tensor:
    """(GV − Σ_g exp H(p̄_g)) / GV: 0 when every entry is used equally, → 1 when collapsed."""
    return (num_vars - prob_perplexity) / num_vars


def feature_penalty(features: Tensor) -> Tensor:
    """mean(z²) of the encoder output, in float32."""
    return features.float().pow(2).mean()


def class_logits(proj: Tensor, label_embs: Tensor, temperature: float) -> Tensor:
    """HuBERT: cos(A·o_t, e_c) / τ for every class c, as (N, C).

    fairseq scores [e_y; e_1..e_C] and masks the duplicate positive with −inf; with target y
    that is the same softmax, so we score the C classes directly.
    """
    return (
        torch.cosine_similarity(proj.float().unsqueeze(1), label_embs.float().unsqueeze(0), dim=-1)
        / temperature
    )


def step_scores(pred: Tensor, y: Tensor, negs: Tensor) -> Tensor:
    """wav2vec: dot products of step predictions with [true future; distractors], (M, 1 + K).

    ``pred`` (M, D), ``y`` (M, D) the true future frame, ``negs`` (M, K, D).
    """
    cand = torch.cat([y.unsqueeze(1), negs], dim=1)
    return torch.einsum("md,mkd->mk", pred.float(), cand.float())


def step_loss(scores: Tensor, infonce: bool, balanced: bool = False) -> Tensor:
    """Summed BCE (positive label 1, distractors 0; optional 1/K weights) or InfoNCE."""
    if infonce:
        return info_nce(scores)
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    weights = None
    if balanced:
        weights = torch.full_like(scores, 1.0 / max(scores.size(1) - 1, 1))
        weights[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(scores, labels, weights, reduction="sum")


def regression_loss(pred: Tensor, target: Tensor, beta: float) -> Tensor:
    """data2vec: per-frame Σ_d smooth L1 with ``beta`` (``beta`` 0: squared error), (N,) float32."""
    pred, target = pred.float(), target.float()
    if beta == 0:
        return F.mse_loss(pred, target, reduction="none").sum(-1)
    return F.smooth_l1_loss(pred, target, reduction="none", beta=beta).sum(-1)
