"""wav2vec 2.0 / HuBERT transformer: conv relative positional embedding + post-/pre-LN layers.

Attention runs through ``scaled_dot_product_attention`` so GPUs get flash/memory-efficient
kernels. ``layer`` / ``return_all`` expose intermediate layers for feature extraction
(HuBERT iteration 2 clusters layer 6 of the iteration-1 model).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from ..specs.components import Transformer
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

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[..., : -self.trim]
        return self.act(y).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections and a key padding mask."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        B, T, C = x.shape

        def split(t: Tensor) -> Tensor:
            return t.view(B, T, self.heads, C // self.heads).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        keep = None if padding_mask is None else ~padding_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=keep, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))


class TransformerLayer(nn.Module):
    """Self-attention + FFN residual blocks; post-LN (BASE) or pre-LN (LARGE)."""

    def __init__(self, spec: Transformer):
        super().__init__()
        self.pre_ln = spec.layer_norm_first
        self.attn = SelfAttention(spec.dim, spec.heads, spec.attention_dropout)
        self.attn_norm = nn.LayerNorm(spec.dim)
        self.fc1 = nn.Linear(spec.dim, spec.ffn_dim)
        self.fc2 = nn.Linear(spec.ffn_dim, spec.dim)
        self.ffn_norm = nn.LayerNorm(spec.dim)
        self.act = activation(spec.activation)
        self.dropout = nn.Dropout(spec.dropout)
        self.act_dropout = nn.Dropout(spec.activation_dropout)

    def _ffn(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(self.act_dropout(self.act(self.fc1(x)))))

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        if self.pre_ln:
            x = x + self.dropout(self.attn(self.attn_norm(x), padding_mask))
            return x + self._ffn(self.ffn_norm(x))
        x = self.attn_norm(x + self.dropout(self.attn(x, padding_mask)))
        return self.ffn_norm(x + self._ffn(x))


class TransformerModule(nn.Module):
    """Positional conv → [LN] → dropout → layers (with layerdrop) → [final LN for pre-LN]."""

    def __init__(self, spec: Transformer):
        super().__init__()
        if spec.pos_conv_layers != 1 or spec.relative_position is not None:
            raise NotImplementedError("Transformer.pos_conv_layers > 1 / relative_position: "
                                      "the network side is not built yet")
        self.spec = spec
        self.pos_conv = PositionalConv(
            spec.dim, spec.pos_conv_kernel, spec.pos_conv_groups, spec.activation
        )
        self.layer_norm = nn.LayerNorm(spec.dim)
        self.dropout = nn.Dropout(spec.dropout)
        self.layers = nn.ModuleList(TransformerLayer(spec) for _ in range(spec.layers))
        for module in self.layers.modules():  # BERT init, as fairseq's init_bert_params
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                nn.init.zeros_(module.bias)

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
        """(B, T, C) → (output, hidden states); ``padding_mask`` (B, T) is True at padding.

        ``layer=None`` runs every layer (and the final LN of a pre-LN stack). ``layer=L``
        (1-based, fairseq ``output_layer``) stops after layer L and returns its raw output;
        ``layer=0`` returns the input of the first layer. With ``return_all`` the hidden states
        are [input of layer 1, output of layer 1, ..., output of the last layer run].
        """
        stop = self.num_layers if layer is None else layer
        if not 0 <= stop <= self.num_layers:
            raise ValueError(f"layer must be in [0, {self.num_layers}] or None; got {layer}")
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x)
        if not self.spec.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        hidden = [x] if return_all else []
        for i in range(stop):
            # layerdrop draws from the global torch RNG: seed it identically on every DDP rank
            if not (
                self.training
                and self.spec.layerdrop > 0
                and torch.rand(()).item() < self.spec.layerdrop
            ):
                x = self.layers[i](x, padding_mask)
            if return_all:
                hidden.append(x)
        if layer is None and self.spec.layer_norm_first:
            x = self.layer_norm(x)
        return x, hidden
