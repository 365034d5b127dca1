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
    """GroupNorm computed in float32 so bf16/fp16 autocast keeps the statistics exact."""

    def forward(self, x: Tensor) -> Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        return F.group_norm(x.float(), self.num_groups, w, b, self.eps).type_as(x)


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
