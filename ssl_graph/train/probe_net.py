"""The probe's network: standardised layers → a learnable softmax-weighted sum → a head (PR,
SID), or a linear classifier on every layer (frame phone classification).

s3prl's featurizer starts its layer weights at zero (uniform after the softmax); so does this.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class ProbeNet(nn.Module):
    def __init__(self, task: str, n_layers: int, dim: int, n_classes: int, mean: np.ndarray,
                 std: np.ndarray, head: str = "linear", hidden: int = 256):
        super().__init__()
        self.task, self.L, self.D = task, n_layers, dim
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("std", torch.from_numpy(std))
        if task == "pc":
            self.heads = nn.ModuleList(nn.Linear(dim, n_classes) for _ in range(n_layers))
            return
        self.layer_logits = nn.Parameter(torch.zeros(n_layers))
        self.head = nn.Linear(dim, n_classes) if head == "linear" else nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def layers(self, x: Tensor) -> Tensor:
        """(..., L·D) frames → (..., L, D), each dimension standardised."""
        x = (x - self.mean) / self.std
        return x.reshape(*x.shape[:-1], self.L, self.D)

    def weights(self) -> Tensor:
        """The layer weights: a softmax over the learned logits."""
        return torch.softmax(self.layer_logits, 0)

    def mix(self, x: Tensor) -> Tensor:
        """(..., L·D) → (..., D): the weighted sum of the standardised layers."""
        return (self.layers(x) * self.weights()[:, None]).sum(-2)

    def forward(self, x: Tensor) -> Tensor:
        """(..., L·D) frames → (..., C) logits (pr/sid) or (..., L, C) per-layer logits (pc)."""
        if self.task == "pc":
            h = self.layers(x)
            return torch.stack([head(h[..., i, :]) for i, head in enumerate(self.heads)], -2)
        return self.head(self.mix(x))

    def utterance(self, x: Tensor) -> Tensor:
        """SID: (T, L·D) frames → (C,) logits of their mean over time."""
        return self.head(self.mix(x).mean(0))
