"""CTC fine-tuning model: an ``SSLNet`` backbone without its pretraining heads, plus a linear head.

Follows fairseq's ``wav2vec_ctc``: encoder → [LayerNorm, projection] → fine-tuning masks (time
spans replaced by the pretrained mask embedding, channel spans zeroed) → context network →
``final_dropout`` → ``Linear(d, V)`` with Xavier init, blank = 0. ``frozen=True`` runs the whole
backbone under ``no_grad`` (fairseq's ``freeze_finetune_updates``), so only the head learns.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..specs.components import SpanMask, SSLModel, Transformer
from .common import make_generator
from .masking import apply_masks, channel_mask, time_mask
from .model import GUMBEL_STREAM, build_model
from .row_random import MASK_NOISE_STREAM

#: state-dict prefixes of pretraining-only modules, dropped before loading pretrained weights
PRETRAIN_ONLY = ("heads.", "target_sources.")


def backbone_spec(node) -> SSLModel:
    """A ``FineTune`` node's architecture with its fine-tuning overrides (no new parameters)."""
    arch = node.architecture
    changes = {"feature_grad_mult": node.feature_grad_mult}
    if isinstance(arch.context, Transformer):
        changes["context"] = arch.context.with_(
            layerdrop=node.layerdrop, dropout=node.dropout,
            attention_dropout=node.attention_dropout, activation_dropout=node.activation_dropout,
        )
    return arch.with_(**changes)


class CTCModel(nn.Module):
    def __init__(self, spec: SSLModel, vocab_size: int, final_dropout: float = 0.0,
                 mask: SpanMask | None = None):
        super().__init__()
        self.net = build_model(spec)
        self.net.heads = nn.ModuleDict()  # pretraining heads are dropped
        self.net.target_sources = nn.ModuleList()  # and their target sources (a teacher)
        if not spec.quantize_input:
            self.net.quantizer = None  # only targets used it
        self.mask_spec = mask
        # a model pretrained without masks (wav2vec) gets a fresh embedding for fine-tuning masks
        needs_emb = mask is not None and mask.prob > 0 and self.net.mask_emb is None
        self.extra_mask_emb = nn.Parameter(torch.rand(self._width())) if needs_emb else None
        self.final_dropout = nn.Dropout(final_dropout)
        self.proj = nn.Linear(spec.context_dim, vocab_size)
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def _width(self) -> int:
        spec = self.net.spec
        if isinstance(spec.context, Transformer):
            return spec.context.dim
        return spec.quantizer.dim if spec.quantize_input else spec.encoder.dim

    @property
    def mask_emb(self) -> Tensor | None:
        return self.net.mask_emb if self.net.mask_emb is not None else self.extra_mask_emb

    def backbone_parameters(self):
        return self.net.parameters()

    def load_pretrained(self, state: dict[str, Tensor], source: str) -> None:
        """Load a ``Pretrain`` node's weights into the backbone; every backbone tensor must match."""
        state = {k: v for k, v in state.items() if not k.startswith(PRETRAIN_ONLY)}
        if self.net.quantizer is None:
            state = {k: v for k, v in state.items() if not k.startswith("quantizer.")}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{source}: pretrained weights do not fit the fine-tuning backbone (missing "
                f"{missing[:3]}, unexpected {unexpected[:3]}); retrain the Pretrain node"
            )

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None, *,
                mask_seed: int | None = None, frozen: bool = False) -> tuple[Tensor, Tensor]:
        """(B, S) wave → ((B, T, V) logits, (B,) valid frames). Masks only in training mode."""
        net = self.net
        with torch.no_grad() if frozen else nullcontext():
            # SSLNet's own stages, so the backbone computes exactly what it was pretrained with
            z = net._encode(wave, padding_mask)
            B, T = z.shape[:2]
            pad = net.frame_padding(padding_mask, T)
            valid = torch.ones(B, T, dtype=torch.bool, device=z.device) if pad is None else ~pad
            x, _, _ = net._context_input(z, valid, _gumbel(mask_seed, z.device))
            if self.training and self.mask_spec is not None and mask_seed is not None:
                x = self._mask(x, valid, mask_seed)
            c, _ = net.context(x, pad)
        logits = self.proj(self.final_dropout(c))
        return logits, valid.sum(-1)

    def _mask(self, x: Tensor, valid: Tensor, seed: int) -> Tensor:
        spec, (B, T, C) = self.mask_spec, x.shape
        tmask = None
        if spec.prob > 0:
            tmask = time_mask(spec, valid.sum(-1), T, seed).to(x.device) & valid
        chans = channel_mask(spec, B, C, seed, x.device)
        fill = self.mask_emb
        if spec.replace == "noise":  # the micro-batch's draws, from one generator (as _gumbel)
            gen = make_generator(seed, MASK_NOISE_STREAM, x.device)
            fill = torch.randn(x.shape, generator=gen, device=x.device) * spec.noise_std
        return apply_masks(x, tmask, fill, chans)


def _gumbel(seed: int | None, device):
    """Gumbel noise of a fine-tuned quantizer input: the micro-batch's, from one generator."""
    if seed is None:
        return None
    gen = make_generator(seed, GUMBEL_STREAM, device)
    return lambda shape: -torch.empty(shape, device=device).exponential_(generator=gen).log()


def ctc_loss(logits: Tensor, lengths: Tensor, targets: list[Tensor]) -> Tensor:
    """Summed CTC loss (blank 0, impossible alignments → 0) divided by the number of utterances."""
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, V)
    dev = log_probs.device
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long, device=dev)
    flat = torch.cat(targets).to(dev, torch.long)
    loss = F.ctc_loss(log_probs, flat, lengths.to(dev, torch.long), target_lengths,
                      blank=0, reduction="sum", zero_infinity=True)
    return loss / len(targets)


def greedy_decode(logits: Tensor, lengths: Tensor | None = None) -> list[list[int]]:
    """Best path per utterance: argmax per frame, collapse repeats, drop blanks (id 0)."""
    best = logits.argmax(-1).cpu()
    T = best.size(1)
    lengths = torch.full((best.size(0),), T) if lengths is None else lengths.cpu()
    out = []
    for row, n in zip(best, lengths.tolist()):
        ids = row[:n]
        keep = torch.ones_like(ids, dtype=torch.bool)
        keep[1:] = ids[1:] != ids[:-1]
        out.append([int(i) for i in ids[keep & (ids != 0)]])
    return out


def build_ctc_model(node, vocab_size: int) -> CTCModel:
    """The torch model of a ``FineTune`` node (random init; load weights separately)."""
    return CTCModel(backbone_spec(node), vocab_size, node.final_dropout, node.mask)
