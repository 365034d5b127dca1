"""Convolutional positional embeddings of the transformer context network.

wav2vec 2.0 / HuBERT / WavLM add one wide grouped conv with weight norm (:class:`PositionalConv`);
data2vec replaces it with a stack of narrower convs, each followed by a LayerNorm without affine
parameters and the activation (:class:`PositionalConvStack`). Both keep the length ("same"
padding; an even kernel's extra frame is dropped from the end) and return what is added to the
input of the first layer.
"""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from ..specs.components_networks import Transformer
from .common import activation


class PositionalConv(nn.Module):
    """Grouped conv over time with weight norm (dim 2), "same" length, then the activation.

    An even kernel yields one extra frame, which is dropped from the end.
    """

    def __init__(self, dim: int, kernel: int, groups: int, act: str = "gelu"):
        super().__init__()
        conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=groups)
        nn.init.normal_(conv.weight, mean=0.0, std=math.sqrt(4.0 / (kernel * dim)))
        nn.init.zeros_(conv.bias)
        self.conv = weight_norm(conv, name="weight", dim=2)
        self.trim = 1 if kernel % 2 == 0 else 0
        self.act = activation(act)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """(B, T, C) → (B, T, C); the caller zeroes padded frames of ``x`` first."""
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[..., : -self.trim]
        return self.act(y).transpose(1, 2)


class PositionalConvLayer(nn.Module):
    """One layer of data2vec's stack: grouped conv ("same") → LayerNorm (no affine) → activation."""

    def __init__(self, dim: int, kernel: int, groups: int, act: str = "gelu"):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=groups)
        self.trim = 1 if kernel % 2 == 0 else 0
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T) → (B, C, T)."""
        y = self.conv(x)
        if self.trim:
            y = y[..., : -self.trim]
        return self.act(self.norm(y.transpose(1, 2)).transpose(1, 2))


class PositionalConvStack(nn.Module):
    """data2vec's positional embedding: ``layers`` × :class:`PositionalConvLayer`.

    Padded frames are zeroed again between layers, so what a layer writes into them never
    reaches valid frames: a padded row computes what it computes alone (fairseq and transformers
    zero them before the first layer only, so their padded rows see their padding).
    """

    def __init__(self, dim: int, kernel: int, groups: int, layers: int, act: str = "gelu"):
        super().__init__()
        self.layers = nn.ModuleList(
            PositionalConvLayer(dim, kernel, groups, act) for _ in range(layers)
        )

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """(B, T, C) → (B, T, C); ``padding_mask`` (B, T) is True at padding."""
        pad = None if padding_mask is None else padding_mask[:, None, :]
        h = x.transpose(1, 2)
        for i, layer in enumerate(self.layers):
            if pad is not None and i:
                h = h.masked_fill(pad, 0.0)
            h = layer(h)
        return h.transpose(1, 2)


def positional_embedding(spec: Transformer) -> nn.Module:
    """wav2vec 2.0's single conv (``pos_conv_layers=1``) or data2vec's stack."""
    if spec.pos_conv_layers == 1:
        return PositionalConv(spec.dim, spec.pos_conv_kernel, spec.pos_conv_groups, spec.activation)
    return PositionalConvStack(
        spec.dim, spec.pos_conv_kernel, spec.pos_conv_groups, spec.pos_conv_layers, spec.activation
    )
