"""Write a model as a transformers directory (``config.json`` + ``model.safetensors``).

The inverse of ``nn/hf_mapping.py``: an HF model is built from a config that mirrors our spec,
then every one of its tensors is filled from ours through the *same* HF → ours name mapping, so
the two directions cannot drift apart. What transformers cannot represent is refused up front
(:func:`hf_family`), naming the part with no HF counterpart. Pretraining heads (HuBERT's label
embeddings, wav2vec 2.0's quantizer and projections) are not exported: HF's base classes have no
place for them, and downstream users load ``AutoModel`` / ``AutoModelForCTC``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from ..specs.base import SpecError
from ..specs.components_model import SSLModel
from ..specs.components_networks import ConvFeatureEncoder, Transformer
from ..specs.components_objectives import (
    ClusterTargets,
    Contrastive,
    MaskedPrediction,
    QuantizedLatents,
)

Family = Literal["hubert", "wav2vec2", "data2vec-audio", "wavlm"]
_G = "context.pos_conv.conv.parametrizations.weight.original0"
_V = "context.pos_conv.conv.parametrizations.weight.original1"


def hf_family(spec: SSLModel, what: str = "model", hint: str | None = None) -> Family:
    """An HF ``model_type``, or ``SpecError`` naming the part transformers lacks.

    A data2vec-shaped context (a positional conv stack) exports as data2vec-audio, a WavLM-
    shaped one (a gated relative position bias) as WavLM, whatever the objective: their HF base
    models hold the backbone only. Otherwise ``hint`` (an HF ``model_type`` a released checkpoint
    came with) wins over the objective: a fine-tune of a released HuBERT exports as HuBERT
    whatever head it was given.
    """
    if not isinstance(spec.encoder, ConvFeatureEncoder):
        raise SpecError(f"{what}: encoder={spec.encoder.kind} (wav2vec 1.0 / vq-wav2vec encoder) "
                        "has no transformers counterpart; only ConvFeatureEncoder exports")
    if not isinstance(spec.context, Transformer):
        raise SpecError(f"{what}: context={spec.context.kind} (wav2vec 1.0 context network) has "
                        "no transformers counterpart; only Transformer contexts export")
    if spec.quantize_input:
        raise SpecError(f"{what}: quantize_input=True (vq-wav2vec's quantized context input) has "
                        "no transformers counterpart")
    shaped = _network_family(spec, what)
    losses = {type(loss) for loss in spec.losses}
    if shaped is not None:
        family: Family = shaped
    elif hint in ("hubert", "wav2vec2"):
        family = hint
    elif spec.target_of(ClusterTargets) is not None and MaskedPrediction in losses:
        family = "hubert"
    elif spec.target_of(QuantizedLatents) is not None and Contrastive in losses:
        family = "wav2vec2"
    else:
        raise SpecError(
            f"{what}: target={spec.target_kind} with losses "
            f"{sorted(t.__name__ for t in losses)} is a mixed variant; transformers has HuBERT "
            "(ClusterTargets + MaskedPrediction) and wav2vec 2.0 (QuantizedLatents + Contrastive)"
            " backbones, and data2vec-audio / WavLM ones (Transformer with pos_conv_layers > 1 / "
            "relative_position)")
    if family != "hubert" and not spec.feature_layer_norm:
        raise SpecError(f"{what}: feature_layer_norm=False has no {family} counterpart (its "
                        "feature projection always layer-norms)")
    return family


def _network_family(spec: SSLModel, what: str) -> Family | None:
    """data2vec-audio / wavlm where the context network has their parts, else None."""
    ctx = spec.context
    stack, bias = ctx.pos_conv_layers > 1, ctx.relative_position
    if stack and bias is not None:
        raise SpecError(f"{what}: context has both pos_conv_layers={ctx.pos_conv_layers} "
                        "(data2vec) and relative_position (WavLM); no transformers model has both")
    if bias is not None:
        if not bias.gated:
            raise SpecError(f"{what}: context.relative_position.gated=False has no WavLM "
                            "counterpart (its attention always gates the bias)")
        return "wavlm"
    if stack:
        if spec.encoder.mode != "layer_norm":
            raise SpecError(f"{what}: encoder.mode={spec.encoder.mode!r} has no data2vec-audio "
                            "counterpart (its conv layers always layer-norm); use 'layer_norm'")
        if ctx.layer_norm_first:
            raise SpecError(f"{what}: context.layer_norm_first=True has no data2vec-audio "
                            "counterpart (its transformer is post-LN)")
        return "data2vec-audio"
    return None


def hf_config(spec: SSLModel, family: Family, vocab_size: int | None = None, **extra):
    """The transformers config whose model computes what ``spec``'s backbone computes
    (``extra``: further config fields, e.g. a fine-tune's ``final_dropout``)."""
    import transformers

    enc, ctx = spec.encoder, spec.context
    mask = spec.mask
    kw = dict(
        conv_dim=[c for c, _, _ in enc.conv_layers],
        conv_kernel=[k for _, k, _ in enc.conv_layers],
        conv_stride=[s for _, _, s in enc.conv_layers],
        conv_bias=enc.conv_bias,
        feat_extract_norm="layer" if enc.mode == "layer_norm" else "group",
        feat_extract_activation=enc.activation,
        hidden_size=ctx.dim,
        num_hidden_layers=ctx.layers,
        num_attention_heads=ctx.heads,
        intermediate_size=ctx.ffn_dim,
        hidden_act=ctx.activation,
        hidden_dropout=ctx.dropout,
        attention_dropout=ctx.attention_dropout,
        activation_dropout=ctx.activation_dropout,
        layerdrop=ctx.layerdrop,
        do_stable_layer_norm=ctx.layer_norm_first,
        num_conv_pos_embeddings=ctx.pos_conv_kernel,
        num_conv_pos_embedding_groups=ctx.pos_conv_groups,
        feat_proj_dropout=spec.dropout_input,
        # HF creates masked_spec_embed only when SpecAugment masks (mask_time_prob > 0)
        mask_time_prob=mask.prob if mask is not None else 0.0,
        mask_time_length=mask.length if mask is not None else 10,
    )
    if vocab_size is not None:
        kw.update(vocab_size=vocab_size, pad_token_id=0, ctc_loss_reduction="sum",
                  ctc_zero_infinity=True)
    kw.update(extra)
    if family == "hubert":
        return transformers.HubertConfig(feat_proj_layer_norm=spec.feature_layer_norm, **kw)
    if family == "wavlm":
        bias = ctx.relative_position
        return transformers.WavLMConfig(num_buckets=bias.num_buckets,
                                        max_bucket_distance=bias.max_distance, **kw)
    if family == "data2vec-audio":
        for key in ("feat_extract_norm", "do_stable_layer_norm"):  # fixed in Data2VecAudio
            kw.pop(key)
        kw.update(num_conv_pos_embeddings=ctx.pos_conv_layers,
                  conv_pos_kernel_size=ctx.pos_conv_kernel)
        return transformers.Data2VecAudioConfig(**kw)
    quant = spec.quantizer
    if getattr(quant, "groups", None):
        kw.update(num_codevector_groups=quant.groups, num_codevectors_per_group=quant.entries,
                  codevector_dim=quant.dim, proj_codevector_dim=spec.head_dim)
    return transformers.Wav2Vec2Config(**kw)


#: (base model, CTC model) class names per family
_HF_CLASSES: dict[str, tuple[str, str]] = {
    "hubert": ("HubertModel", "HubertForCTC"),
    "wav2vec2": ("Wav2Vec2Model", "Wav2Vec2ForCTC"),
    "data2vec-audio": ("Data2VecAudioModel", "Data2VecAudioForCTC"),
    "wavlm": ("WavLMModel", "WavLMForCTC"),
}


def _hf_class(family: Family, ctc: bool):
    import transformers

    return getattr(transformers, _HF_CLASSES[family][int(ctc)])


def _ours_for(hf_key: str, ctc: bool) -> str | None:
    from ..nn.hf_mapping import hf_name

    if ctc and hf_key.startswith("lm_head."):
        return "proj." + hf_key[len("lm_head."):]
    name = hf_name(hf_key)
    if name is None:
        return None
    return "net." + name if ctc else name


def hf_model(spec: SSLModel, family: Family, state: dict, vocab_size: int | None = None,
             **extra):
    """An HF model holding ``state`` (our names; a ``CTCModel``'s when ``vocab_size`` is set).

    Every HF tensor must come from ours, and every backbone tensor of ours must land in HF:
    anything left over on either side is an error rather than a silently different model.
    """
    import torch

    ctc = vocab_size is not None
    model = _hf_class(family, ctc)(hf_config(spec, family, vocab_size, **extra)).eval()
    prefix = "net." if ctc else ""
    state = dict(state)
    if ctc and "extra_mask_emb" in state:  # a mask embedding added for fine-tuning masks
        state.setdefault(prefix + "mask_emb", state.pop("extra_mask_emb"))
    if prefix + "feature_proj.weight" not in state:  # same widths: our model has no projection
        dim = spec.context.dim
        state[prefix + "feature_proj.weight"] = torch.eye(dim)
        state[prefix + "feature_proj.bias"] = torch.zeros(dim)
    new, used = {}, set()
    for key, ref in model.state_dict().items():
        ours = _ours_for(key, ctc)
        if ours is None or ours not in state:
            raise SpecError(f"HF tensor {key} has no counterpart in our weights ({ours}); "
                            "this architecture does not export")
        value = state[ours]
        if tuple(value.shape) != tuple(ref.shape):
            raise SpecError(f"{ours} → {key}: shape {tuple(value.shape)} vs HF {tuple(ref.shape)}")
        new[key] = value.detach().to(ref.dtype).contiguous()
        used.add(ours)
    backbone = (prefix + p for p in ("encoder.", "feature_norm.", "feature_proj.", "context."))
    left = [k for k in state if k.startswith(tuple(backbone)) and k not in used]
    if ctc:
        left += [k for k in ("proj.weight", "proj.bias") if k not in used]
    if left:
        raise SpecError(f"our tensors {left[:3]} have no place in {type(model).__name__}; "
                        "this architecture does not export")
    model.load_state_dict(new, strict=True)
    return model


def _write_ctc_extras(out: Path, symbols: list[str], spec: SSLModel) -> list[Path]:
    """vocab.json + tokenizer and feature-extractor configs, so a Processor loads from ``out``."""
    import transformers

    from ..specs.finetune import WORD_SEP

    blank = symbols[0]
    vocab_file = out / "vocab.json"
    vocab_file.write_text(json.dumps({s: i for i, s in enumerate(symbols)}, ensure_ascii=False))
    tok = transformers.Wav2Vec2CTCTokenizer(
        str(vocab_file), pad_token=blank, unk_token=blank, bos_token=None, eos_token=None,
        word_delimiter_token=WORD_SEP if WORD_SEP in symbols else None)
    if len(tok) != len(symbols):
        raise SpecError(f"tokenizer has {len(tok)} entries for {len(symbols)} CTC symbols")
    tok.save_pretrained(out)
    return sorted(p for p in out.iterdir() if "token" in p.name) + [vocab_file]


def write_feature_extractor(out: Path, spec: SSLModel) -> Path:
    import transformers

    fe = transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=spec.sample_rate, padding_value=0.0,
        do_normalize=spec.encoder.normalize_wave,
        # group-norm encoders must not see padding masks (HF's own rule for BASE models)
        return_attention_mask=spec.encoder.mode == "layer_norm")
    fe.save_pretrained(out)
    return out / "preprocessor_config.json"


def export_hf(out: Path, spec: SSLModel, family: Family, state: dict,
              symbols: list[str] | None = None, **extra) -> list[Path]:
    """Write ``out`` for ``AutoModel`` (or ``AutoModelForCTC`` when ``symbols`` is given)."""
    model = hf_model(spec, family, state, None if symbols is None else len(symbols), **extra)
    model.save_pretrained(out, safe_serialization=True)
    written = [out / "config.json", out / "model.safetensors", write_feature_extractor(out, spec)]
    if symbols is not None:
        written += _write_ctc_extras(out, symbols, spec)
    return written
