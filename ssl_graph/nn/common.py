"""Small torch building blocks shared by the encoders, context networks and heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


def activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


class GradMultiply(torch.autograd.Function):
    """Identity forward, gradient × scale backward (wav2vec 2.0 ``feature_grad_mult``)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return grad * ctx.scale, None


def grad_multiply(x: Tensor, scale: float) -> Tensor:
    return x if scale == 1.0 else GradMultiply.apply(x, scale)


class Fp32GroupNorm(nn.GroupNorm):
    """GroupNorm over (channels of a group × time) of a (B, C, T) tensor, in float32 so bf16/fp16
    autocast keeps the statistics exact.

    ``lengths`` (B,) gives each row's valid frames: the statistics then cover those frames only,
    so a padded row normalises exactly as it would alone (padding never enters a normalisation).
    Padded frames come out normalised with the row's statistics; nothing valid reads them.
    """

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        if lengths is None or bool((lengths >= x.size(-1)).all()):
            return F.group_norm(x.float(), self.num_groups, w, b, self.eps).type_as(x)
        return masked_group_norm(x.float(), self.num_groups, w, b, self.eps, lengths).type_as(x)


def masked_group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None,
                      eps: float, lengths: Tensor) -> Tensor:
    """``F.group_norm`` of each row of (B, C, T) ``x`` restricted to its first ``lengths[b]``
    frames (biased variance, as GroupNorm)."""
    B, C, T = x.shape
    xg = x.reshape(B, groups, C // groups, T)
    valid = (torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None])
    valid = valid.to(x.dtype)[:, None, None, :]
    n = (valid.sum(-1, keepdim=True) * (C // groups)).clamp(min=1)
    mean = (xg * valid).sum((2, 3), keepdim=True) / n
    var = (((xg - mean) * valid) ** 2).sum((2, 3), keepdim=True) / n
    y = ((xg - mean) * torch.rsqrt(var + eps)).reshape(B, C, T)
    if weight is not None:
        y = y * weight[None, :, None]
    if bias is not None:
        y = y + bias[None, :, None]
    return y


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of a (B, C, T) tensor, in float32."""

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(
            x.transpose(1, 2).float(),
            self.normalized_shape,
            None if self.weight is None else self.weight.float(),
            None if self.bias is None else self.bias.float(),
            self.eps,
        )
        return y.transpose(1, 2).type_as(x)


def lengths_to_padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) valid lengths → (B, max_len) bool, True = padded."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


def derive_seed(seed: int, stream: int) -> int:
    """Independent seed per random stream (time mask, channel mask, negatives, Gumbel noise)."""
    x = (int(seed) * 0x9E3779B97F4A7C15 + stream * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    x ^= x >> 31
    return x & ((1 << 63) - 1)


def make_generator(seed: int, stream: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, stream))
    return g
