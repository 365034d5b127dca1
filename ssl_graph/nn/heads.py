"""Prediction heads: the parameters of each objective plus its summed loss.

Each head's ``forward`` returns :class:`HeadResult` values: the summed (unweighted) loss, how many
predictions it made (its contribution to ``sample_size``) and detached scalars to log. The
model calls every head through one interface (``nn/objectives.py`` registers them by loss
type): ``score(c, targets, state) -> {term name: HeadResult}`` with the loss's ``weight``
applied, from the context ``c`` (B, T, Dc), the :class:`~.target_sources.Targets` of the
source the loss reads and the :class:`~.target_sources.ForwardState`; and
``size(mask, valid)``: the predictions ``score`` makes for a batch with these masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..specs.components import Contrastive, MaskedPrediction, Regression, StepPrediction
from . import losses as L
from .row_random import CROSS_STREAM, NEGATIVES_STREAM, RowRandom
from .target_sources import ForwardState, Targets


@dataclass
class HeadResult:
    loss: Tensor
    count: int
    logs: dict[str, Tensor] = field(default_factory=dict)


class ContrastiveHead(nn.Module):
    """wav2vec 2.0: ``final_proj`` of context frames vs ``project_q`` of targets, InfoNCE."""

    def __init__(self, spec: Contrastive, context_dim: int, target_dim: int, final_dim: int):
        super().__init__()
        self.spec = spec
        self.final_proj = nn.Linear(context_dim, final_dim)
        self.project_q = nn.Linear(target_dim, final_dim)

    def forward(self, c: Tensor, y: Tensor, rows: Tensor, rand: RowRandom) -> HeadResult:
        """``c`` (N, Dc) context at masked frames, ``y`` (N, Dq) their targets, ``rows`` (N,)
        their local rows (non-decreasing); each row draws its distractors from its own stream.
        Cross-sample distractors come from the N frames of this forward."""
        x, y = self.final_proj(c), self.project_q(y)
        counts = torch.bincount(rows, minlength=len(rand.rows)).tolist()
        same = rand.uniform(NEGATIVES_STREAM, counts, self.spec.negatives)
        cross = rand.uniform(CROSS_STREAM, counts, self.spec.cross_sample_negatives)
        neg_idx = L.sample_negatives(rows, same, cross)
        logits = L.similarity_logits(x, y, y[neg_idx], self.spec.temperature)
        wins = L.positive_wins(logits).float().mean().detach()
        return HeadResult(L.info_nce(logits), self.count(rows), {"accuracy": wins})

    @staticmethod
    def count(rows: Tensor) -> int:
        """Predictions (sample size): one per masked frame."""
        return int(rows.numel())

    def score(self, c: Tensor, targets: Targets, state: ForwardState) -> dict[str, HeadResult]:
        sel = state.mask & state.valid
        rows = sel.nonzero()[:, 0]
        if not rows.numel():
            return {}
        r = self(c[sel], targets.features[sel], rows, state.rand)
        return {"contrastive": HeadResult(self.spec.weight * r.loss, r.count, r.logs)}

    def size(self, mask: Tensor, valid: Tensor) -> int:
        return self.count((mask & valid).nonzero()[:, 0])


class MaskedPredictionHead(nn.Module):
    """HuBERT: cosine logits against per-set label embeddings, masked and unmasked CE.

    ``logits="linear"`` (BEST-RQ): one Linear(context, classes) per label set instead.
    """

    def __init__(
        self, spec: MaskedPrediction, context_dim: int, final_dim: int, num_classes: tuple[int, ...]
    ):
        super().__init__()
        self.spec, self.num_classes = spec, num_classes
        if spec.logits == "linear":
            self.outputs = nn.ModuleList(nn.Linear(context_dim, n) for n in num_classes)
            return
        n_proj = final_dim * len(num_classes) if spec.untie_final_proj else final_dim
        self.final_proj = nn.Linear(context_dim, n_proj)
        self.label_embs = nn.Parameter(torch.empty(sum(num_classes), final_dim).uniform_())

    def _logits(self, c: Tensor) -> list[Tensor]:
        """(N, classes) logits of each label set for (N, Dc) context frames."""
        if self.spec.logits == "linear":
            return [out(c) for out in self.outputs]
        n = len(self.num_classes)
        proj = self.final_proj(c)
        projs = proj.chunk(n, -1) if self.spec.untie_final_proj else [proj] * n
        return [L.class_logits(p, embs, self.spec.temperature)
                for p, embs in zip(projs, self.label_embs.split(self.num_classes, 0))]

    def _loss(self, c: Tensor, targets: list[Tensor], tag: str) -> tuple[Tensor, dict]:
        total, logs, correct = c.new_zeros((), dtype=torch.float32), {}, []
        for i, (logits, t) in enumerate(zip(self._logits(c), targets)):
            loss_i = F.cross_entropy(logits, t, reduction="sum")
            total = total + loss_i
            correct.append((logits.argmax(-1) == t).float().mean().detach())
            if len(targets) > 1:
                logs[f"accuracy_{tag}_{i}"] = correct[-1]
        logs[f"accuracy_{tag}"] = torch.stack(correct).mean()
        return total, logs

    def forward(
        self, c: Tensor, targets: list[Tensor], masked: Tensor, valid: Tensor
    ) -> dict[str, HeadResult]:
        """``c`` (B, T, Dc); ``targets`` per set (B, T); ``masked`` / ``valid`` (B, T) bool."""
        out = {}
        for tag, weight, sel in (
            ("masked", self.spec.masked_weight, masked & valid),
            ("unmasked", self.spec.unmasked_weight, ~masked & valid),
        ):
            if weight > 0 and bool(sel.any()):
                loss, logs = self._loss(c[sel], [t[sel] for t in targets], tag)
                out[tag] = HeadResult(weight * loss, int(sel.sum()), logs)
        return out

    def count(self, masked: Tensor, valid: Tensor) -> int:
        """Predictions (sample size) of :meth:`forward`: the frames of each weighted term."""
        return sum(int((sel & valid).sum()) for weight, sel in (
            (self.spec.masked_weight, masked), (self.spec.unmasked_weight, ~masked)) if weight > 0)

    def score(self, c: Tensor, targets: Targets, state: ForwardState) -> dict[str, HeadResult]:
        """The masked / unmasked terms (each weighs itself); the accuracy logged is the masked
        one when there is one, as HuBERT reports."""
        out = self(c, targets.labels, state.mask, state.valid)
        tag = "masked" if "masked" in out else "unmasked"
        for r in out.values():
            r.logs["accuracy"] = out[tag].logs[f"accuracy_{tag}"]
        return out

    size = count


class StepPredictionHead(nn.Module):
    """wav2vec: one affine map per future step k, scored by dot product (BCE or InfoNCE).

    Distractors are drawn per *target* frame from the same utterance's valid frames (self
    excluded) and shared by all steps, as in fairseq. Unlike fairseq's ConvTranspose2d (one
    bias shared by the steps) each step has its own bias. As in fairseq, a distractor equal to
    the true frame (common with quantized inputs) is not masked.
    """

    def __init__(
        self, spec: StepPrediction, steps: int, offset: int, context_dim: int, target_dim: int
    ):
        super().__init__()
        self.spec, self.steps, self.offset = spec, steps, offset
        self.project_to_steps = nn.Linear(context_dim, target_dim * steps)

    def forward(self, c: Tensor, y: Tensor, valid: Tensor, rand: RowRandom) -> HeadResult:
        """``c`` (B, T, Dc) context, ``y`` (B, T, D) features to predict, ``valid`` (B, T);
        each row draws its distractors from its own stream."""
        B, T, D = y.shape
        lengths = valid.sum(-1)
        t = torch.arange(T, device=y.device).expand(B, T)
        same = rand.uniform(NEGATIVES_STREAM, [T] * B, self.spec.negatives).view(B, T, -1)
        neg = L.sample_excluding_self(lengths[:, None].expand(B, T), t, same)  # row-local
        flat = neg + (torch.arange(B, device=y.device) * T)[:, None, None]
        if self.spec.cross_sample_negatives:
            cross = rand.uniform(CROSS_STREAM, [T] * B, self.spec.cross_sample_negatives)
            flat = torch.cat([flat, self._cross(valid, cross.view(B, T, -1))], dim=-1)
        y_flat = y.reshape(B * T, D)
        negs = y_flat[flat]  # (B, T, K, D) distractors for target frame t
        pred = self.project_to_steps(c).view(B, T, self.steps, D)
        scores = []
        for off in self._offsets(T):
            keep = valid[:, off:]  # the predicted frame exists (so does its source)
            k = off - self.offset
            scores.append(
                L.step_scores(pred[:, : T - off, k][keep], y[:, off:][keep], negs[:, off:][keep])
            )
        if not scores:
            zero = c.sum() * 0.0
            return HeadResult(zero, 0, {})
        s = torch.cat(scores)
        loss = L.step_loss(s, self.spec.infonce, self.spec.balanced_classes)
        return HeadResult(loss, s.size(0), {"accuracy": L.positive_wins(s).float().mean()})

    def _offsets(self, T: int) -> list[int]:
        """How far ahead each step predicts, for the steps that fit in T frames."""
        return [self.offset + k for k in range(self.steps) if self.offset + k < T]

    def count(self, valid: Tensor) -> int:
        """Predictions (sample size) of :meth:`forward`."""
        return sum(int(valid[:, off:].sum()) for off in self._offsets(valid.size(1)))

    def score(self, c: Tensor, targets: Targets, state: ForwardState) -> dict[str, HeadResult]:
        r = self(c, targets.features, state.valid, state.rand)
        return {"step": HeadResult(self.spec.weight * r.loss, r.count, r.logs)}

    def size(self, mask: Tensor | None, valid: Tensor) -> int:
        return self.count(valid)

    @staticmethod
    def _cross(valid: Tensor, u: Tensor) -> Tensor:
        """Distractors from every valid frame of this forward (flat B·T indices), self
        excluded; ``u`` (B, T, num) uniforms."""
        B, T = valid.shape
        valid_idx = valid.reshape(-1).nonzero().squeeze(-1)
        pos = (valid.reshape(-1).long().cumsum(0) - 1).clamp(min=0)
        n = torch.full_like(pos, valid_idx.numel())
        r = L.sample_excluding_self(n, pos, u.reshape(B * T, -1))
        return valid_idx[r].view(B, T, -1)


class RegressionHead(nn.Module):
    """data2vec: ``final_proj`` of the context at masked frames regresses the teacher's targets;
    Σ_frames Σ_d smooth L1 / L2, × ``loss_scale`` (default 1/√dim)."""

    def __init__(self, spec: Regression, context_dim: int, target_dim: int):
        super().__init__()
        self.spec = spec
        self.final_proj = nn.Linear(context_dim, target_dim)

    def forward(self, c: Tensor, y: Tensor) -> HeadResult:
        """``c`` (N, Dc) context at masked frames, ``y`` (N, D) their targets."""
        pred = self.final_proj(c)
        per_frame = L.regression_loss(pred, y, self.spec.beta)
        scale = self.spec.loss_scale or 1.0 / math.sqrt(pred.size(-1))
        logs = {"target_std": _std(y), "pred_std": _std(pred)}
        return HeadResult(per_frame.sum() * scale, int(per_frame.numel()), logs)

    def score(self, c: Tensor, targets: Targets, state: ForwardState) -> dict[str, HeadResult]:
        sel = state.mask & state.valid
        if not bool(sel.any()):
            return {}
        r = self(c[sel], targets.features[sel])
        return {"regression": HeadResult(self.spec.weight * r.loss, r.count, r.logs)}

    def size(self, mask: Tensor, valid: Tensor) -> int:
        return int((mask & valid).sum())


def _std(y: Tensor) -> Tensor:
    """Mean over dimensions of the std over frames (data2vec's collapse check), detached."""
    y = y.detach().float()
    if y.size(0) < 2:
        return y.new_zeros(())
    return torch.sqrt(y.var(0) + 1e-6).mean()
