"""WavLM's gated relative position bias (Chen et al. 2022, §2.2).

A key at offset d = j − i from the query falls into a bucket: half the buckets for d > 0, half
for d ≤ 0; within a half, the nearest ``n / 2`` offsets (n = buckets per half) get one bucket
each, larger ones share buckets spaced logarithmically up to ``max_distance``, and anything
farther shares the last. One table (bucket → one bias per head) gives a (heads, T, T) bias,
computed once per forward and used by every layer. Each layer gates it per head and query frame
with two sigmoids of a linear map of the query (the layer's attention input split into heads):
gate = a · (b · c − 1) + 2, with c a learned per-head constant (1 at init), so the gate starts
in (1, 2) and can reach (0, 2) as c moves.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..specs.components_networks import GatedRelativePositionBias


def relative_position_buckets(
    length: int, num_buckets: int, max_distance: int, device: torch.device | None = None
) -> Tensor:
    """(T, T) bucket of key j for query i (row i, column j)."""
    pos = torch.arange(length, dtype=torch.long, device=device)
    offset = pos[None, :] - pos[:, None]
    half = num_buckets // 2
    exact = half // 2
    base = (offset > 0).long() * half
    dist = offset.abs()
    # log-spaced buckets for exact <= dist < max_distance; clamp(min=1) keeps log finite where
    # the exact branch is taken anyway
    scaled = torch.log(dist.clamp(min=1).float() / exact) / math.log(max_distance / exact)
    far = (exact + scaled * (half - exact)).long().clamp(max=half - 1)
    return base + torch.where(dist < exact, dist, far)


class RelativePositionBias(nn.Module):
    """The shared table: bucket → bias per head; ``forward(T)`` is the (heads, T, T) bias."""

    def __init__(self, heads: int, num_buckets: int, max_distance: int):
        super().__init__()
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.table = nn.Embedding(num_buckets, heads)
        nn.init.normal_(self.table.weight, mean=0.0, std=0.02)

    def forward(self, length: int) -> Tensor:
        buckets = relative_position_buckets(
            length, self.num_buckets, self.max_distance, self.table.weight.device
        )
        return self.table(buckets).permute(2, 0, 1)


class PositionBiasGate(nn.Module):
    """One layer's gate: (B, T, C) query, (H, T, T) bias → (B, H, T, T) gated bias."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.proj = nn.Linear(dim // heads, 8)
        self.const = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        B, T, C = x.shape
        q = x.reshape(B, T, self.heads, C // self.heads).transpose(1, 2)
        g = torch.sigmoid(self.proj(q).view(B, self.heads, T, 2, 4).sum(-1))
        a, b = g[..., :1], g[..., 1:]
        return (a * (b * self.const - 1.0) + 2.0) * bias


def relative_position_bias(spec: GatedRelativePositionBias, heads: int) -> RelativePositionBias:
    return RelativePositionBias(heads, spec.num_buckets, spec.max_distance)


def position_bias_gate(spec: GatedRelativePositionBias | None, dim: int, heads: int):
    """A layer's gate, or None where the bias is ungated or absent."""
    return PositionBiasGate(dim, heads) if spec is not None and spec.gated else None
