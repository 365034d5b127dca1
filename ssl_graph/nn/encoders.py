"""Waveform encoders: (B, S) samples → (B, T, C) frames (the log-mel front end and ``build_encoder``: ``frontends.py``).

Both are strided 1-d conv stacks without padding, so T = ``spec.output_length(S)`` and a
padded tail never reaches a valid frame through a convolution. Their group norms normalise over
time, so they take each row's valid frames (from the sample padding mask) and keep padding out of
their statistics: a padded utterance encodes exactly as it does alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..specs.components import ConvFeatureEncoder, Wav2VecEncoder
from .common import ChannelLayerNorm, Fp32GroupNorm, activation


class ConvLayer(nn.Module):
    """conv → dropout → [norm] → activation; named so HF/fairseq weights map one to one."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        k: int,
        s: int,
        bias: bool,
        norm: nn.Module | None,
        act: str,
        dropout: float,
    ):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, k, stride=s, bias=bias)
        nn.init.kaiming_normal_(self.conv.weight)
        self.dropout = nn.Dropout(dropout)
        self.norm = norm
        self.act = activation(act)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``lengths``: valid output frames per row (None: no padding)."""
        x = self.dropout(self.conv(x))
        if isinstance(self.norm, Fp32GroupNorm):
            x = self.norm(x, lengths)
        elif self.norm is not None:  # per-frame norms never see other frames
            x = self.norm(x)
        return self.act(x)


class _ConvStackModule(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.spec = spec

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Frames per utterance for (B,) sample counts, with the exact conv arithmetic."""
        for _, k, s in self.spec.layer_geometry:
            lengths = torch.div(lengths - k, s, rounding_mode="floor") + 1
        return lengths.clamp(min=0)

    def layer_lengths(self, padding_mask: Tensor | None) -> list[Tensor | None]:
        """Valid frames per row after each conv layer, or Nones for an unpadded batch."""
        if padding_mask is None or not bool(padding_mask.any()):
            return [None] * len(self.spec.layer_geometry)
        lengths, out = (~padding_mask).sum(-1), []
        for _, k, s in self.spec.layer_geometry:
            lengths = (torch.div(lengths - k, s, rounding_mode="floor") + 1).clamp(min=0)
            out.append(lengths)
        return out


class ConvFeatureEncoderModule(_ConvStackModule):
    """wav2vec 2.0 / HuBERT conv feature encoder (group_norm or layer_norm mode)."""

    def __init__(self, spec: ConvFeatureEncoder):
        super().__init__(spec)
        layers, c_in = [], 1
        for i, (dim, k, s) in enumerate(spec.conv_layers):
            if spec.mode == "layer_norm":
                norm = ChannelLayerNorm(dim)
            else:
                norm = Fp32GroupNorm(dim, dim) if i == 0 else None
            layers.append(
                ConvLayer(c_in, dim, k, s, spec.conv_bias, norm, spec.activation, spec.dropout)
            )
            c_in = dim
        self.layers = nn.ModuleList(layers)

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        if self.spec.normalize_wave:
            wave = normalize_wave(wave, padding_mask)
        x = wave.unsqueeze(1)
        for layer, lengths in zip(self.layers, self.layer_lengths(padding_mask)):
            x = layer(x, lengths)
        return x.transpose(1, 2)


class Wav2VecEncoderModule(_ConvStackModule):
    """wav2vec causal encoder: conv (no bias) → GroupNorm(1) → ReLU, optional skips, log(|x|+1)."""

    def __init__(self, spec: Wav2VecEncoder):
        super().__init__(spec)
        layers, c_in = [], 1
        for dim, k, s in spec.layer_geometry:
            norm = Fp32GroupNorm(1, dim, affine=not spec.non_affine_group_norm)
            layers.append(ConvLayer(c_in, dim, k, s, False, norm, spec.activation, spec.dropout))
            c_in = dim
        self.layers = nn.ModuleList(layers)
        self.residual_scale = math.sqrt(spec.residual_scale)

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        x = wave.unsqueeze(1)
        for layer, lengths in zip(self.layers, self.layer_lengths(padding_mask)):
            residual = x
            x = layer(x, lengths)
            if self.spec.skip_connections and x.size(1) == residual.size(1):
                step = residual.size(2) // x.size(2)  # align the residual to the strided output
                x = (x + residual[..., ::step][..., : x.size(2)]) * self.residual_scale
        if self.spec.log_compression:
            x = (x.abs() + 1).log()
        return x.transpose(1, 2)


def normalize_wave(wave: Tensor, padding_mask: Tensor | None, eps: float = 1e-5) -> Tensor:
    """Per-utterance zero mean / unit variance over the valid samples; padding stays zero.

    fairseq layer-norms each utterance before padding (``task.normalize``), which this
    reproduces on an already padded batch.
    """
    if padding_mask is None:
        return F.layer_norm(wave, wave.shape[-1:], eps=eps)
    valid = (~padding_mask).to(wave.dtype)
    n = valid.sum(-1, keepdim=True).clamp(min=1)
    mean = (wave * valid).sum(-1, keepdim=True) / n
    var = (((wave - mean) * valid) ** 2).sum(-1, keepdim=True) / n
    return (wave - mean) * torch.rsqrt(var + eps) * valid
