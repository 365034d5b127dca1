"""One torch model for every point of the ``SSLModel`` space; ``build_model`` is the entry.

The forward pass follows fairseq's order (see ``SSLModel``); objectives differ only in which
targets are formed and which heads score them, so wav2vec, vq-wav2vec, wav2vec 2.0, HuBERT and
their mixes share this code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..specs.components import (
    ClusterTargets,
    CodeTargets,
    CommitmentLoss,
    Contrastive,
    Diversity,
    FeaturePenalty,
    FutureFrames,
    MaskedPrediction,
    QuantizedLatents,
    RandomProjectionTargets,
    SSLModel,
    StepPrediction,
    Transformer,
)
from . import losses as L
from .batch_stats import BatchStats
from .common import grad_multiply, lengths_to_padding_mask
from .context import ConvContextModule
from .encoders import build_encoder
from .heads import ContrastiveHead, HeadResult, MaskedPredictionHead, StepPredictionHead
from .masking import apply_masks, channel_mask, mask_noise, time_mask
from .quantizers import GumbelNoise, QuantizerOutput, build_quantizer, perplexity
from .random_projection import RandomProjectionQuantizer
from .row_random import GUMBEL_STREAM, RowRandom
from .targets import align_targets
from .transformer import TransformerModule

__all__ = ["GUMBEL_STREAM", "BatchStats", "ModelOutput", "SSLNet", "build_model"]


@dataclass
class ModelOutput:
    """What one training forward returns.

    ``loss`` is a fairseq-style *sum* over predictions, already weighted (auxiliary losses are
    scaled by weight × sample_size): backpropagate ``loss / sample_size``, with sample_size
    summed over gradient-accumulation micro-batches and DDP ranks. ``logs`` holds detached
    0-dim tensors (per-sample losses, accuracy, perplexities, temperature, sample_size); call
    :meth:`scalars` only when logging, it synchronises with the device.
    """

    loss: Tensor
    sample_size: int
    logs: dict[str, Tensor] = field(default_factory=dict)
    mask: Tensor | None = None  # (B, T) frames that were masked
    padding_mask: Tensor | None = None  # (B, T) padded frames (after label trimming)

    def scalars(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.logs.items()}


class SSLNet(nn.Module):
    """Encoder → [quantizer] → mask → context → heads, assembled from an ``SSLModel`` spec."""

    def __init__(self, spec: SSLModel):
        super().__init__()
        self.spec = spec
        enc_dim = spec.encoder.dim
        self.encoder = build_encoder(spec.encoder, spec.sample_rate)
        self.feature_norm = nn.LayerNorm(enc_dim) if spec.feature_layer_norm else None
        self.quantizer = build_quantizer(spec.quantizer, enc_dim)
        ctx_in = spec.quantizer.dim if spec.quantize_input else enc_dim
        target_dim = spec.quantizer.dim if spec.quantized else enc_dim
        self.feature_proj = None
        if isinstance(spec.context, Transformer):
            if ctx_in != spec.context.dim:
                self.feature_proj = nn.Linear(ctx_in, spec.context.dim)
                ctx_in = spec.context.dim
            self.context = TransformerModule(spec.context)
        else:
            self.context = ConvContextModule(spec.context, ctx_in)
        if isinstance(spec.target, CodeTargets) and not spec.quantize_input:
            # only the code ids are used: an unused codebook would stall DDP on unused params
            self.quantizer.codebook.requires_grad_(False)
        self.context_input_dim = ctx_in
        embed = spec.mask is not None and spec.mask.replace == "embedding"
        self.mask_emb = nn.Parameter(torch.rand(ctx_in)) if embed else None
        self.random_projection = (RandomProjectionQuantizer(spec.target, spec.sample_rate)
                                  if isinstance(spec.target, RandomProjectionTargets) else None)
        self.dropout_input = nn.Dropout(spec.dropout_input)
        self.dropout_features = nn.Dropout(spec.dropout_features)
        self.dropout_context = nn.Dropout(spec.dropout_context)
        self.heads = nn.ModuleDict()
        for loss in spec.losses:
            if isinstance(loss, Contrastive):
                self.heads["contrastive"] = ContrastiveHead(
                    loss, spec.context_dim, target_dim, spec.head_dim
                )
            elif isinstance(loss, MaskedPrediction):
                self.heads["masked_prediction"] = MaskedPredictionHead(
                    loss, spec.context_dim, spec.head_dim, spec.num_classes()
                )
            elif isinstance(loss, StepPrediction):
                self.heads["step_prediction"] = StepPredictionHead(
                    loss, spec.target.steps, spec.step_offset(), spec.context_dim, target_dim
                )

    # ------------------------------------------------------------------ helpers
    def set_num_updates(self, step: int) -> None:
        """Advance schedules that depend on the update count (Gumbel temperature)."""
        if self.quantizer is not None:
            self.quantizer.set_num_updates(step)

    def frame_lengths(self, sample_lengths: Tensor) -> Tensor:
        return self.encoder.output_lengths(sample_lengths)

    def frame_padding(self, padding_mask: Tensor | None, n_frames: int) -> Tensor | None:
        """Sample-level padding (B, S) → frame-level padding (B, T); None when nothing pads."""
        if padding_mask is None or not bool(padding_mask.any()):
            return None
        lengths = self.frame_lengths((~padding_mask).sum(-1))
        return lengths_to_padding_mask(lengths, n_frames)

    def _encode(self, wave: Tensor, padding_mask: Tensor | None) -> Tensor:
        mult = self.spec.feature_grad_mult
        if mult == 0:
            with torch.no_grad():
                return self.encoder(wave, padding_mask)
        return grad_multiply(self.encoder(wave, padding_mask), mult)

    def _context_input(self, z: Tensor, valid: Tensor | None, gumbel: GumbelNoise | None = None):
        """LayerNorm, [input quantization]; returns (context input, unmasked copy, q result)."""
        if self.feature_norm is not None:
            z = self.feature_norm(z)
        qres = None
        if self.spec.quantize_input:
            qres = self.quantizer(z, valid, gumbel)
            z = qres.x
        x = self.feature_proj(z) if self.feature_proj is not None else z
        return x, z, qres

    # ------------------------------------------------------------------ inference
    def extract_features(
        self, wave: Tensor, padding_mask: Tensor | None = None, layer: int | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """(B, S) wave → ((B, T, C) context features, (B, T) frame padding or None).

        ``layer=None``: the final output; ``layer=L``: output of context layer L (1-based, as
        fairseq ``output_layer``; a pre-LN transformer's final LN is not applied); ``layer=0``:
        the context input. No masking; call in ``eval()`` mode to disable dropout.
        """
        z = self._encode(wave, padding_mask)
        pad = self.frame_padding(padding_mask, z.size(1))
        x, _, _ = self._context_input(z, None if pad is None else ~pad)
        c, _ = self.context(x, pad, layer=layer)
        return c, pad

    # ------------------------------------------------------------------ training
    def forward(
        self,
        wave: Tensor,
        padding_mask: Tensor | None = None,
        targets: list[Tensor] | None = None,
        *,
        mask_seed: int,
        mask: Tensor | None = None,
        channels: Tensor | None = None,
        rows: Sequence[int] | None = None,
        stats: BatchStats | None = None,
    ) -> ModelOutput:
        """One pre-training forward pass with every loss of the spec.

        ``wave`` (B, S); ``padding_mask`` (B, S) True at padded samples; ``targets`` one
        (B, T_lab) LongTensor per ``ClusterTargets`` label set, at the labels' rate. Masks,
        distractors and Gumbel noise are a function of ``mask_seed`` (e.g. seed + step) and,
        for distractors and noise, of each row's index in the global batch (``rows``, default
        0..B−1). A forward over part of a global batch passes the batch's time ``mask`` (B, T)
        and ``channels`` mask (B, C), sliced to its rows, and its ``stats``
        (:meth:`batch_stats`): auxiliary losses then add their share of the batch's terms.
        """
        spec = self.spec
        z = self._encode(wave, padding_mask)
        B, T = z.shape[:2]
        pad = self.frame_padding(padding_mask, T)
        labels = None
        if isinstance(spec.target, ClusterTargets):
            z, pad, labels = self._align(z, pad, targets)
            T = z.size(1)
        elif self.random_projection is not None:
            labels = self.random_projection(wave, padding_mask, T)
        valid = torch.ones(B, T, dtype=torch.bool, device=z.device) if pad is None else ~pad
        penalty = L.feature_penalty(z) if _has(spec, FeaturePenalty) else None
        rand = RowRandom(mask_seed, range(B) if rows is None else rows, z.device)
        x, u, qres = self._context_input(z, valid, rand.gumbel_noise)
        u = self.dropout_features(u)
        x = self.dropout_input(x)
        if spec.mask is not None:
            if mask is None:
                mask = time_mask(spec.mask, valid.sum(-1), T, mask_seed)
            mask = mask.to(x.device) & valid
            if channels is None:
                channels = channel_mask(spec.mask, B, x.size(-1), mask_seed, x.device)
            fill = (self.mask_emb if spec.mask.replace == "embedding"
                    else mask_noise(spec.mask, rand, x.shape).to(x.device))
            x = apply_masks(x, mask, fill, None if channels is None else channels.to(x.device))
        else:
            mask = None
        c, _ = self.context(x, pad)
        c = self.dropout_context(c)
        results, qres = self._heads(c, u, qres, labels, mask, valid, rand)
        return self._combine(results, qres, penalty, mask, pad, stats, valid.numel())

    def _quantized_frames(self, mask: Tensor | None, valid: Tensor) -> Tensor:
        """The frames the quantizer's statistics (usage, k-means loss) average over: the
        masked ones when it quantizes wav2vec 2.0's targets, else every valid frame."""
        if isinstance(self.spec.target, QuantizedLatents) and not self.spec.quantize_input:
            return mask & valid
        return valid

    def sample_size(self, mask: Tensor | None, valid: Tensor) -> int:
        """The predictions a forward makes for a batch with these (B, T) masks."""
        spec = self.spec
        if isinstance(spec.target, QuantizedLatents):
            return self.heads["contrastive"].count((mask & valid).nonzero()[:, 0])
        if isinstance(spec.target, FutureFrames):
            return self.heads["step_prediction"].count(valid)
        return self.heads["masked_prediction"].count(mask, valid)

    def batch_stats(self, mask: Tensor | None, valid: Tensor) -> BatchStats:
        """The counts of rows with these (B, T) masks (crops: ``valid`` all True); a step's are
        the sums over its groups' pieces (``train/micro.py``), with the codebook usage from
        :meth:`codebook_usage` when a loss needs it."""
        return BatchStats(rows=valid.size(0), sample_size=self.sample_size(mask, valid),
                          scored=int(self._quantized_frames(mask, valid).sum()),
                          frames=valid.numel())

    @property
    def needs_usage(self) -> bool:
        """Whether a loss is a function of the batch's averaged codebook usage (Diversity)."""
        return _has(self.spec, Diversity) and self.spec.quantizer.kind == "GumbelQuantizer"

    @torch.no_grad()
    def codebook_usage(self, wave: Tensor, targets: list[Tensor] | None,
                       mask: Tensor | None) -> tuple[Tensor, Tensor, int]:
        """(soft usage summed over the quantized frames (G, V) in float64, hard code counts
        (G, V), frames) of part of a crop batch, as :meth:`forward` computes them (encoder and
        quantizer only): summed over the parts, they give the batch's :class:`BatchStats`."""
        z = self._encode(wave, None)
        if isinstance(self.spec.target, ClusterTargets):
            z, _, _ = self._align(z, None, targets)
        valid = torch.ones(z.shape[:2], dtype=torch.bool, device=z.device)
        if self.feature_norm is not None:
            z = self.feature_norm(z)
        if not self.spec.quantize_input:
            z = self.dropout_features(z)
        sel = self._quantized_frames(None if mask is None else mask.to(z.device), valid)
        logits = self.quantizer.logits(z[sel])
        hard = F.one_hot(logits.argmax(-1), self.spec.quantizer.entries)
        return (torch.softmax(logits, -1).sum(0).double(), hard.sum(0).double(),
                int(sel.sum()))

    def _align(self, z: Tensor, pad: Tensor | None, targets: list[Tensor] | None):
        n_sets = len(self.spec.target.labels)
        if targets is None or len(targets) != n_sets:
            got = "none" if targets is None else len(targets)
            raise ValueError(f"the model predicts {n_sets} label set(s); got {got} targets")
        ratio = self.spec.label_ratio(self.spec.target.label_rate)
        n_lab = min(t.size(-1) for t in targets)
        aligned = [align_targets(t[..., :n_lab], z.size(1), ratio) for t in targets]
        kept = aligned[0][1]
        pad = None if pad is None else pad[:, :kept]
        return z[:, :kept], pad, [a[0].long() for a in aligned]

    def _targets_from_quantizer(self, u: Tensor, qres, frames: Tensor, gumbel):
        """Quantize the unmasked copy unless the input was already quantized."""
        if qres is not None or self.quantizer is None:
            return qres
        return self.quantizer(u, frames, gumbel)

    def _heads(self, c, u, qres, labels, mask, valid, rand: RowRandom):
        spec, out = self.spec, {}
        if self.quantizer is not None and not isinstance(spec.target, ClusterTargets):
            qres = self._targets_from_quantizer(u, qres, self._quantized_frames(mask, valid),
                                                rand.gumbel_noise)
        if isinstance(spec.target, QuantizedLatents):
            sel = mask & valid
            y = u if qres is None else qres.x
            rows = sel.nonzero()[:, 0]
            if rows.numel():
                out["contrastive"] = self.heads["contrastive"](c[sel], y[sel], rows, rand)
        elif isinstance(spec.target, FutureFrames):
            y = u if qres is None else qres.x
            out["step"] = self.heads["step_prediction"](c, y, valid, rand)
        else:
            if isinstance(spec.target, CodeTargets):
                labels = list(qres.best.detach().unbind(-1))
            out.update(self.heads["masked_prediction"](c, labels, mask, valid))
        return out, qres

    def _combine(
        self,
        results: dict[str, HeadResult],
        qres: QuantizerOutput | None,
        penalty: Tensor | None,
        mask: Tensor | None,
        pad: Tensor | None,
        stats: BatchStats | None,
        frames: int,
    ) -> ModelOutput:
        spec = self.spec
        weights = {type(loss): loss.weight for loss in spec.losses if hasattr(loss, "weight")}
        sample_size = sum(r.count for r in results.values())
        terms: dict[str, Tensor] = {}
        logs: dict[str, Tensor] = {}
        # MaskedPrediction weighs its masked / unmasked terms itself
        head_weight = {"contrastive": weights.get(Contrastive), "step": weights.get(StepPrediction)}
        for name, r in results.items():
            w = head_weight.get(name)
            terms[name] = r.loss if w is None else w * r.loss
            logs.update(r.logs)
        for tag in ("unmasked", "masked"):  # HuBERT reports masked accuracy when it has one
            if tag in results:
                logs["accuracy"] = results[tag].logs[f"accuracy_{tag}"]
        # auxiliary terms: batch means × sample_size, or this part's share of the global
        # batch's terms (``stats``), so that split batches give the unsplit update
        if Diversity in weights and qres is not None and qres.prob_perplexity is not None:
            if stats is None:
                div = L.diversity_loss(qres.prob_perplexity, qres.num_vars) * sample_size
            else:
                div = stats.diversity_share(qres.prob_sum, qres.scored, sample_size, qres.num_vars)
            terms["diversity"] = weights[Diversity] * div
        if FeaturePenalty in weights and penalty is not None:
            pen = (penalty * sample_size if stats is None
                   else stats.mean_share(penalty, frames, stats.frames))
            terms["feature_penalty"] = weights[FeaturePenalty] * pen
        if CommitmentLoss in weights and qres is not None and qres.loss is not None:
            com = (qres.loss * sample_size if stats is None
                   else stats.mean_share(qres.loss, qres.scored, stats.scored))
            terms["commitment"] = weights[CommitmentLoss] * com
        if not terms:  # no prediction this batch (e.g. nothing masked): a zero with a graph
            terms["empty"] = sum(p.sum() * 0.0 for p in self.parameters() if p.requires_grad)
        loss = sum(terms.values())
        denom = max(sample_size, 1)
        logs["loss"] = loss.detach() / denom
        for name, t in terms.items():
            logs[f"loss_{name}"] = t.detach() / denom
        if qres is not None:
            logs["code_perplexity"] = qres.code_perplexity.detach()
            if qres.prob_perplexity is not None:
                logs["prob_perplexity"] = qres.prob_perplexity.detach()
            if stats is not None and stats.probs is not None:  # the global batch's usage
                logs["code_perplexity"] = perplexity(stats.codes / max(stats.scored, 1)).float()
                logs["prob_perplexity"] = perplexity(stats.probs).float()
            if qres.temperature is not None:
                logs["temperature"] = torch.tensor(qres.temperature)
        logs["sample_size"] = torch.tensor(float(sample_size))
        return ModelOutput(
            loss=loss, sample_size=sample_size, logs=logs, mask=mask, padding_mask=pad
        )


def _has(spec: SSLModel, kind: type) -> bool:
    return any(isinstance(loss, kind) for loss in spec.losses)


def build_model(spec: SSLModel) -> SSLNet:
    """The torch model of a spec, freshly initialised (fairseq initialisation)."""
    return SSLNet(spec)
