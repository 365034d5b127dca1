"""wav2vec 2.0 / HuBERT transformer: conv positional embedding + post-/pre-LN layers.

Attention runs through ``scaled_dot_product_attention`` so GPUs get flash/memory-efficient
kernels. ``layer`` / ``return_all`` expose intermediate layers for feature extraction
(HuBERT iteration 2 clusters layer 6 of the iteration-1 model).

The parts are injected: the positional embedding (wav2vec 2.0's conv or data2vec's stack,
``nn/positional.py``), WavLM's relative position bias and each layer's gate
(``nn/relative_position.py``); the builders below pick them from the ``Transformer`` spec.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..specs.components import Transformer
from .common import activation
from .positional import PositionalConv, positional_embedding
from .relative_position import position_bias_gate, relative_position_bias

__all__ = ["PositionalConv", "SelfAttention", "TransformerLayer", "TransformerModule"]


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections and a key padding mask.

    ``gate`` (WavLM) scales a relative position bias per head and query frame before it is
    added to the logits; without a gate a given bias is added as it is.
    """

    def __init__(self, dim: int, heads: int, dropout: float, gate: nn.Module | None = None):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.gate = gate

    def forward(
        self, x: Tensor, padding_mask: Tensor | None = None, position_bias: Tensor | None = None
    ) -> Tensor:
        """``position_bias`` (H, T, T) is added to the logits of query i and key j."""
        B, T, C = x.shape

        def split(t: Tensor) -> Tensor:
            return t.view(B, T, self.heads, C // self.heads).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        if position_bias is None:
            mask = None if padding_mask is None else ~padding_mask[:, None, None, :]
        else:
            bias = self.gate(x, position_bias) if self.gate is not None else position_bias
            mask = bias.to(q.dtype).expand(B, self.heads, T, T)
            if padding_mask is not None:
                mask = mask.masked_fill(padding_mask[:, None, None, :], float("-inf"))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))


class TransformerLayer(nn.Module):
    """Self-attention + FFN residual blocks; post-LN (BASE) or pre-LN (LARGE)."""

    def __init__(self, spec: Transformer, attention: SelfAttention | None = None):
        super().__init__()
        self.pre_ln = spec.layer_norm_first
        self.attn = (
            attention if attention is not None
            else SelfAttention(spec.dim, spec.heads, spec.attention_dropout)
        )
        self.attn_norm = nn.LayerNorm(spec.dim)
        self.fc1 = nn.Linear(spec.dim, spec.ffn_dim)
        self.fc2 = nn.Linear(spec.ffn_dim, spec.dim)
        self.ffn_norm = nn.LayerNorm(spec.dim)
        self.act = activation(spec.activation)
        self.dropout = nn.Dropout(spec.dropout)
        self.act_dropout = nn.Dropout(spec.activation_dropout)

    def _ffn(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(self.act_dropout(self.act(self.fc1(x)))))

    def forward(
        self, x: Tensor, padding_mask: Tensor | None = None, position_bias: Tensor | None = None
    ) -> Tensor:
        if self.pre_ln:
            x = x + self.dropout(self.attn(self.attn_norm(x), padding_mask, position_bias))
            return x + self._ffn(self.ffn_norm(x))
        x = self.attn_norm(x + self.dropout(self.attn(x, padding_mask, position_bias)))
        return self.ffn_norm(x + self._ffn(x))


def transformer_layer(spec: Transformer) -> TransformerLayer:
    """One layer; its attention carries a relative-position gate where the spec asks for one."""
    gate = position_bias_gate(spec.relative_position, spec.dim, spec.heads)
    return TransformerLayer(
        spec, SelfAttention(spec.dim, spec.heads, spec.attention_dropout, gate=gate)
    )


class TransformerModule(nn.Module):
    """Positional conv → [LN] → dropout → layers (with layerdrop) → [final LN for pre-LN].

    ``pos_conv``, ``relative_position`` and ``layers`` default to what ``spec`` describes
    (:func:`positional_embedding`, :func:`relative_position_bias`, :func:`transformer_layer`).
    """

    def __init__(
        self,
        spec: Transformer,
        *,
        pos_conv: nn.Module | None = None,
        relative_position: nn.Module | None = None,
        layers: Iterable[nn.Module] | None = None,
    ):
        super().__init__()
        self.spec = spec
        self.pos_conv = pos_conv if pos_conv is not None else positional_embedding(spec)
        self.layer_norm = nn.LayerNorm(spec.dim)
        self.dropout = nn.Dropout(spec.dropout)
        self.layers = nn.ModuleList(
            layers if layers is not None else (transformer_layer(spec) for _ in range(spec.layers))
        )
        for module in self.layers.modules():  # BERT init, as fairseq's init_bert_params
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                nn.init.zeros_(module.bias)
        if relative_position is None and spec.relative_position is not None:
            relative_position = relative_position_bias(spec.relative_position, spec.heads)
        self.relative_position = relative_position

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
        x = x + self.pos_conv(x, padding_mask)
        if not self.spec.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        hidden = [x] if return_all else []
        bias = None
        if self.relative_position is not None and stop:
            bias = self.relative_position(x.size(1))  # once per forward, shared by every layer
        for i in range(stop):
            # layerdrop draws from the global torch RNG: seed it identically on every DDP rank
            if not (
                self.training
                and self.spec.layerdrop > 0
                and torch.rand(()).item() < self.spec.layerdrop
            ):
                x = self.layers[i](x, padding_mask, bias)
            if return_all:
                hidden.append(x)
        if layer is None and self.spec.layer_norm_first:
            x = self.layer_norm(x)
        return x, hidden
