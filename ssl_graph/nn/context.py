"""wav2vec's causal convolutional context network (the fairseq "aggregator")."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ..specs.components import ConvContext
from .common import Fp32GroupNorm, activation


class CausalConvLayer(nn.Module):
    """Left-pad by k−1 (replicate, or zeros) → conv → dropout → GroupNorm(1) → activation.

    Left padding keeps frame t a function of frames ≤ t, which future prediction relies on.
    """

    def __init__(self, c_in: int, c_out: int, k: int, spec: ConvContext):
        super().__init__()
        self.pad = k - 1
        self.pad_mode = "constant" if spec.zero_pad else "replicate"
        self.conv = nn.Conv1d(c_in, c_out, k, bias=spec.conv_bias)
        self.dropout = nn.Dropout(spec.dropout)
        self.norm = Fp32GroupNorm(1, c_out, affine=not spec.non_affine_group_norm)
        self.act = activation(spec.activation)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``lengths``: valid frames per row; the norm's statistics cover only those."""
        if self.pad:
            x = F.pad(x, (self.pad, 0), mode=self.pad_mode)
        return self.act(self.norm(self.dropout(self.conv(x)), lengths))


class ConvContextModule(nn.Module):
    """Stack of causal conv layers with optional (projected) skip connections scaled by √r."""

    def __init__(self, spec: ConvContext, in_dim: int):
        super().__init__()
        self.spec = spec
        layers, projs, c_in = [], [], in_dim
        for dim, k in spec.conv_layers:
            layers.append(CausalConvLayer(c_in, dim, k, spec))
            needs_proj = spec.skip_connections and c_in != dim
            projs.append(nn.Conv1d(c_in, dim, 1, bias=False) if needs_proj else nn.Identity())
            c_in = dim
        self.layers = nn.ModuleList(layers)
        self.residual_proj = nn.ModuleList(projs)
        self.residual_scale = math.sqrt(spec.residual_scale)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def forward(
        self,
        x: Tensor,
        padding_mask: Tensor | None = None,
        *,
        layer: int | None = None,
        return_all: bool = False,
    ) -> tuple[Tensor, list[Tensor]]:
        """(B, T, C) → (output, hidden states). ``layer`` L (1-based) stops after layer L.

        ``padding_mask`` (B, T), True at padded frames: a causal conv never lets padded (trailing)
        frames reach valid ones, and each layer's GroupNorm takes its statistics over the valid
        frames only, so a padded row computes what it computes alone.
        """
        stop = self.num_layers if layer is None else layer
        lengths = None
        if padding_mask is not None and bool(padding_mask.any()):
            lengths = (~padding_mask).sum(-1)
        h = x.transpose(1, 2)
        hidden = [h.transpose(1, 2)] if return_all else []
        for i in range(stop):
            residual = h
            h = self.layers[i](h, lengths)
            if self.spec.skip_connections:
                h = (h + self.residual_proj[i](residual)) * self.residual_scale
            if return_all:
                hidden.append(h.transpose(1, 2))
        return h.transpose(1, 2), hidden
