"""Import transformers ``Wav2Vec2*`` / ``Hubert*`` / ``Data2VecAudio*`` / ``WavLM*`` weights
into an :class:`SSLNet`.

Name mapping, HF → ours (HF prefix ``wav2vec2.`` / ``hubert.`` / ``data2vec_audio.`` / ``wavlm.``
stripped first, ``{i}`` = layer, ``{j}`` = positional conv layer)::

    feature_extractor.conv_layers.{i}.conv.*              → encoder.layers.{i}.conv.*
    feature_extractor.conv_layers.{i}.layer_norm.*        → encoder.layers.{i}.norm.*
    feature_projection.layer_norm.*                       → feature_norm.*
    feature_projection.projection.*                       → feature_proj.*
    masked_spec_embed                                     → mask_emb
    encoder.pos_conv_embed.conv.bias                      → context.pos_conv.conv.bias
    encoder.pos_conv_embed.conv.parametrizations.weight.original0 (or old-style weight_g)
                                                          → context.pos_conv.conv.parametrizations.weight.original0
    encoder.pos_conv_embed.conv.parametrizations.weight.original1 (or old-style weight_v)
                                                          → context.pos_conv.conv.parametrizations.weight.original1
    encoder.pos_conv_embed.conv.weight (no weight norm)   → split: g = ‖w‖ over dims (0, 1), v = w
    encoder.pos_conv_embed.layers.{j}.conv.*  (data2vec)  → context.pos_conv.layers.{j}.conv.*
    encoder.layer_norm.*                                  → context.layer_norm.*
    encoder.layers.0.attention.rel_attn_embed.weight (WavLM)
                                                          → context.relative_position.table.weight
    encoder.layers.{i}.attention.gru_rel_pos_linear.*     → context.layers.{i}.attn.gate.proj.*
    encoder.layers.{i}.attention.gru_rel_pos_const        → context.layers.{i}.attn.gate.const
    encoder.layers.{i}.attention.{q,k,v,out}_proj.*       → context.layers.{i}.attn.{q,k,v,out}_proj.*
    encoder.layers.{i}.layer_norm.*                       → context.layers.{i}.attn_norm.*
    encoder.layers.{i}.feed_forward.intermediate_dense.*  → context.layers.{i}.fc1.*
    encoder.layers.{i}.feed_forward.output_dense.*        → context.layers.{i}.fc2.*
    encoder.layers.{i}.final_layer_norm.*                 → context.layers.{i}.ffn_norm.*
    quantizer.codevectors   (Wav2Vec2ForPreTraining)      → quantizer.codebook
    quantizer.weight_proj.*                               → quantizer.weight_proj.0.*
    project_hid.* / project_q.*                           → heads.contrastive.final_proj.* / project_q.*

Weight norm is over dim 2 on both sides (g has shape (1, 1, K)), so g and v copy as they are.

HF's pre-LN encoder (``do_stable_layer_norm``) uses ``encoder.layer_norm`` as the final LN and
the post-LN one as the LN after the positional conv; ours does the same with one module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

_G = "context.pos_conv.conv.parametrizations.weight.original0"
_V = "context.pos_conv.conv.parametrizations.weight.original1"

_RULES: list[tuple[str, str]] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"encoder.layers.\1.conv."),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.norm."),
    (r"feature_projection\.layer_norm\.", "feature_norm."),
    (r"feature_projection\.projection\.", "feature_proj."),
    (r"masked_spec_embed$", "mask_emb"),
    (r"encoder\.pos_conv_embed\.conv\.bias$", "context.pos_conv.conv.bias"),
    (r"encoder\.pos_conv_embed\.conv\.(parametrizations\.weight\.original0|weight_g)$", _G),
    (r"encoder\.pos_conv_embed\.conv\.(parametrizations\.weight\.original1|weight_v)$", _V),
    (r"encoder\.pos_conv_embed\.layers\.(\d+)\.conv\.", r"context.pos_conv.layers.\1.conv."),
    (r"encoder\.layer_norm\.", "context.layer_norm."),
    (r"encoder\.layers\.0\.attention\.rel_attn_embed\.weight$",
     "context.relative_position.table.weight"),
    (r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_linear\.",
     r"context.layers.\1.attn.gate.proj."),
    (r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_const$", r"context.layers.\1.attn.gate.const"),
    (r"encoder\.layers\.(\d+)\.attention\.(q|k|v|out)_proj\.", r"context.layers.\1.attn.\2_proj."),
    (r"encoder\.layers\.(\d+)\.layer_norm\.", r"context.layers.\1.attn_norm."),
    (r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"context.layers.\1.fc1."),
    (r"encoder\.layers\.(\d+)\.feed_forward\.output_dense\.", r"context.layers.\1.fc2."),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.", r"context.layers.\1.ffn_norm."),
    (r"quantizer\.codevectors$", "quantizer.codebook"),
    (r"quantizer\.weight_proj\.", "quantizer.weight_proj.0."),
    (r"project_hid\.", "heads.contrastive.final_proj."),
    (r"project_q\.", "heads.contrastive.project_q."),
]
_PREFIXES = ("wav2vec2.", "hubert.", "data2vec_audio.", "wavlm.")
#: our parameters that an HF backbone must provide (strict loading)
_BACKBONE = ("encoder.", "feature_norm.", "feature_proj.", "context.")


def hf_name(key: str) -> str | None:
    """Our parameter name for an HF state-dict key, or None if it has no counterpart."""
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    for pattern, repl in _RULES:
        new, n = re.subn("^" + pattern, repl, key)
        if n:
            return new
    return None


def load_hf_state_dict(
    model: nn.Module, hf_state_dict: Mapping[str, Tensor], *, strict: bool = True
) -> list[str]:
    """Copy HF weights into ``model`` (an ``SSLNet``); returns the HF keys that were ignored.

    With ``strict``, every backbone parameter of ours (encoder, feature norm/projection,
    context network) must be provided, and shapes must match.
    """
    ours = model.state_dict()
    new: dict[str, Tensor] = {}
    ignored: list[str] = []
    for key, value in hf_state_dict.items():
        name = hf_name(key)
        if name is None and key.endswith("pos_conv_embed.conv.weight"):
            v = value.detach()  # plain (non weight-normed) conv: w = g · v / ‖v‖ with v = w
            new[_G] = torch.linalg.vector_norm(v, dim=(0, 1), keepdim=True)
            new[_V] = v
            continue
        if name is not None and name.startswith("feature_proj.") and name not in ours:
            _check_identity_projection(key, value)
            continue
        if name is None or name not in ours:
            ignored.append(key)
            continue
        if ours[name].shape != value.shape:
            raise ValueError(
                f"{key} → {name}: shape {tuple(value.shape)} vs ours "
                f"{tuple(ours[name].shape)}; build the model from ssl_graph.specs.hf_config.hf_backbone()"
            )
        new[name] = value.detach()
    missing = [k for k in ours if k.startswith(_BACKBONE) and k not in new]
    if strict and missing:
        raise KeyError(f"HF state dict lacks {len(missing)} backbone tensors, e.g. {missing[:5]}")
    with torch.no_grad():
        for name, value in new.items():
            ours[name].copy_(value.to(ours[name].dtype))
    return ignored


def _check_identity_projection(key: str, value: Tensor) -> None:
    """Our network has no feature projection where the conv and transformer widths are equal;
    a checkpoint's projection is then only droppable if it is the identity (as we export it)."""
    v = value.detach().float()
    eye = torch.eye(v.size(0)) if v.dim() == 2 else torch.zeros_like(v)
    if v.shape != eye.shape or not torch.equal(v, eye):
        raise ValueError(
            f"{key}: the checkpoint projects conv features to the transformer at equal widths "
            f"({v.size(-1)}), and ssl_graph's network has no projection there; only an identity "
            "projection can be read (use a checkpoint whose conv_dim[-1] != hidden_size)")
