"""One torch model for every point of the ``SSLModel`` space; ``build_model`` is the entry.

The forward pass follows fairseq's order (see ``SSLModel``); objectives differ only in which
targets are formed and which heads score them, so wav2vec, vq-wav2vec, wav2vec 2.0, HuBERT and
their mixes share this code. The model holds no branch per objective: its target sources
(``nn/target_sources.py``), prediction heads (``nn/heads.py``) and auxiliary terms are looked up
by spec type in ``nn/objectives.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..specs.components import SSLModel, Transformer
from .batch_stats import BatchStats
from .common import grad_multiply, lengths_to_padding_mask
from .context import ConvContextModule
from .frontends import build_encoder
from .heads import HeadResult
from .masking import apply_masks, channel_mask, mask_noise, time_mask
from .objectives import AUX_TERMS, LOSS_HEADS, AuxInputs, build_target_source
from .quantizers import GumbelNoise, QuantizerOutput, build_quantizer, perplexity
from .row_random import GUMBEL_STREAM, RowRandom
from .target_sources import ForwardState, Targets
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
        self.feature_proj = None
        if isinstance(spec.context, Transformer):
            if ctx_in != spec.context.dim:
                self.feature_proj = nn.Linear(ctx_in, spec.context.dim)
                ctx_in = spec.context.dim
            self.context = TransformerModule(spec.context)
        else:
            self.context = ConvContextModule(spec.context, ctx_in)
        #: the context input's width (what a mask embedding and a channel mask cover)
        self.context_input_dim = ctx_in
        embed = spec.mask is not None and spec.mask.replace == "embedding"
        self.mask_emb = nn.Parameter(torch.rand(ctx_in)) if embed else None
        self.dropout_input = nn.Dropout(spec.dropout_input)
        self.dropout_features = nn.Dropout(spec.dropout_features)
        self.dropout_context = nn.Dropout(spec.dropout_context)
        self.heads = nn.ModuleDict()
        self._reads: dict[str, int] = {}  # head name → index of the target source it scores
        for loss in spec.losses:
            entry = LOSS_HEADS.get(type(loss))
            if entry is None and type(loss) not in AUX_TERMS:
                raise ValueError(f"no head or auxiliary term is registered for {loss.kind} "
                                 "(nn/objectives.py LOSS_HEADS / AUX_TERMS)")
            if entry is not None:
                self.heads[entry.name] = entry.build(loss, spec)
                self._reads[entry.name] = next(
                    i for i, t in enumerate(spec.targets) if isinstance(t, entry.reads))
        #: one target source per ``spec.targets`` entry; built last (a teacher copies the rest)
        self.target_sources = nn.ModuleList(
            build_target_source(t, spec, self) for t in spec.targets)
        # only the code ids are used: an unused codebook would stall DDP on unused params
        if (self.quantizer is not None and not spec.quantize_input
                and any(s.freezes_codebook for s in self.target_sources)):
            self.quantizer.codebook.requires_grad_(False)

    # ------------------------------------------------------------------ helpers
    def set_num_updates(self, step: int) -> None:
        """Advance schedules that depend on the update count (Gumbel temperature)."""
        if self.quantizer is not None:
            self.quantizer.set_num_updates(step)
        for source in self.target_sources:
            source.set_num_updates(step)

    @torch.no_grad()
    def after_update(self, updates: int) -> None:
        """Once after each optimiser update (``updates`` made so far), on every rank alike:
        the target sources' own steps (an EMA teacher). Never per micro-batch."""
        for source in self.target_sources:
            source.after_update(self, updates)

    def reset_targets(self) -> None:
        """The weights were replaced other than by a checkpoint (``Pretrain(init=...)``)."""
        for source in self.target_sources:
            source.reset(self)

    def kept_frames(self, n_frames: int, label_frames: list[int]) -> int:
        """Frames a forward keeps of ``n_frames`` encoder frames with label sets of
        ``label_frames`` frames (the label trimming of :meth:`forward`, from shapes only)."""
        for source in self.target_sources:
            n_frames = source.kept_frames(n_frames, label_frames)
        return n_frames

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
        labels = targets
        for source in self.target_sources:
            z, pad, labels = source.align(z, pad, labels)
        T = z.size(1)
        valid = torch.ones(B, T, dtype=torch.bool, device=z.device) if pad is None else ~pad
        rand = RowRandom(mask_seed, range(B) if rows is None else rows, z.device)
        x, u, qres = self._context_input(z, valid, rand.gumbel_noise)
        x_clean = x
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
        state = ForwardState(wave=wave, wave_padding=padding_mask, z=z, u=u, x=x_clean, qres=qres,
                             labels=labels, mask=mask, valid=valid, pad=pad, rand=rand,
                             quantize=self._quantize(rand))
        found = [source(state) for source in self.target_sources]
        results: dict[str, HeadResult] = {}
        for name, head in self.heads.items():
            results.update(head.score(c, found[self._reads[name]], state))
        qres = next((t.qres for t in found if t.qres is not None), qres)
        return self._combine(results, found, qres, z, mask, pad, stats, valid.numel())

    def _quantize(self, rand: RowRandom):
        if self.quantizer is None:
            return None
        return lambda u, frames: self.quantizer(u, frames, rand.gumbel_noise)

    def _quantized_frames(self, mask: Tensor | None, valid: Tensor) -> Tensor:
        """The frames the quantizer's statistics (usage, k-means loss) average over: those of
        the target source it quantizes for (wav2vec 2.0: the masked ones), else every valid
        frame."""
        for source in self.target_sources:
            frames = source.quantized_frames(mask, valid)
            if frames is not None:
                return frames
        return valid

    def sample_size(self, mask: Tensor | None, valid: Tensor) -> int:
        """The predictions a forward makes for a batch with these (B, T) masks."""
        return sum(head.size(mask, valid) for head in self.heads.values())

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
        return (any(loss.kind == "Diversity" for loss in self.spec.losses)
                and self.spec.quantizer.kind == "GumbelQuantizer")

    @torch.no_grad()
    def codebook_usage(self, wave: Tensor, targets: list[Tensor] | None,
                       mask: Tensor | None) -> tuple[Tensor, Tensor, int]:
        """(soft usage summed over the quantized frames (G, V) in float64, hard code counts
        (G, V), frames) of part of a crop batch, as :meth:`forward` computes them (encoder and
        quantizer only): summed over the parts, they give the batch's :class:`BatchStats`."""
        z = self._encode(wave, None)
        labels = targets
        for source in self.target_sources:
            z, _, labels = source.align(z, None, labels)
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

    def _combine(
        self,
        results: dict[str, HeadResult],
        found: list[Targets],
        qres: QuantizerOutput | None,
        z: Tensor,
        mask: Tensor | None,
        pad: Tensor | None,
        stats: BatchStats | None,
        frames: int,
    ) -> ModelOutput:
        spec = self.spec
        sample_size = sum(r.count for r in results.values())
        terms: dict[str, Tensor] = {}
        logs: dict[str, Tensor] = {}
        for name, r in results.items():
            terms[name] = r.loss
            logs.update(r.logs)
        for t in found:
            logs.update(t.logs or {})
        # auxiliary terms: batch means × sample_size, or this part's share of the global
        # batch's terms (``stats``), so that split batches give the unsplit update
        weights = {type(loss): loss.weight for loss in spec.losses if hasattr(loss, "weight")}
        aux = AuxInputs(z=z, qres=qres, stats=stats, sample_size=sample_size, frames=frames)
        for kind, (name, term) in AUX_TERMS.items():
            if kind in weights:
                value = term(aux)
                if value is not None:
                    terms[name] = weights[kind] * value
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


def build_model(spec: SSLModel) -> SSLNet:
    """The torch model of a spec, freshly initialised (fairseq initialisation)."""
    return SSLNet(spec)
