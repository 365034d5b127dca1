"""A local transformers Wav2Vec2 / HuBERT / Data2VecAudio / WavLM checkpoint's ``config.json``
(and ``preprocessor_config.json``) as our ``SSLModel`` spec.

Plain JSON, no transformers or torch import, so a spec holding a released checkpoint plans
quickly; its weights are read by ``ssl_graph/model_io/hf_checkpoint.py`` when it runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .base import SpecError

#: transformers' Wav2Vec2Config / HubertConfig defaults (BASE), for keys a config.json omits
_DEFAULTS = dict(
    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_bias=False, feat_extract_norm="group", feat_extract_activation="gelu",
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    hidden_act="gelu", hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.1,
    layerdrop=0.1, do_stable_layer_norm=False, num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16, feat_proj_dropout=0.0, feat_proj_layer_norm=True,
    mask_time_prob=0.05, mask_time_length=10, num_codevector_groups=2,
    num_codevectors_per_group=320, codevector_dim=256, proj_codevector_dim=256,
)
#: per model type: defaults that differ from the above, and settings its model always has
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "wav2vec2": {}, "hubert": {},
    # Data2VecAudioConfig: 5 positional conv layers of kernel 19
    "data2vec-audio": dict(num_conv_pos_embeddings=5, conv_pos_kernel_size=19),
    "wavlm": dict(num_buckets=320, max_bucket_distance=800),
}
_TYPE_FIXED: dict[str, dict[str, Any]] = {
    # Data2VecAudio's conv layers always layer-norm, its transformer is always post-LN
    "data2vec-audio": dict(feat_extract_norm="layer", do_stable_layer_norm=False),
}
MODEL_TYPES = tuple(_TYPE_DEFAULTS)
#: config options whose models our network does not compute
_UNSUPPORTED = {"conv_pos_batch_norm": True, "add_adapter": True,
                "position_embeddings_type": "relative", "use_weighted_layer_sum": True}


def read_config(path: Path, what: str) -> dict:
    """``config.json`` with transformers' defaults filled in; refuses other model types."""
    file = path / "config.json"
    if not file.is_file():
        raise SpecError(f"{what}: {path} has no config.json; point path= at a transformers "
                        "directory written by save_pretrained")
    return with_defaults(read_json_file(file, what), f"{what}: {file}")


def with_defaults(raw: dict, what: str) -> dict:
    """A config's fields with its model type's defaults filled in; refuses what we lack."""
    kind = raw.get("model_type")
    if kind not in MODEL_TYPES:
        raise SpecError(f"{what} is model_type={kind!r}; only {list(MODEL_TYPES)} "
                        "checkpoints can be read")
    for key, bad in _UNSUPPORTED.items():
        if raw.get(key) == bad:
            raise SpecError(f"{what} sets {key}={bad!r}, which ssl_graph's network "
                            "does not compute")
    cfg = {**_DEFAULTS, **_TYPE_DEFAULTS[kind], **raw, **_TYPE_FIXED.get(kind, {})}
    if kind == "data2vec-audio" and cfg["num_conv_pos_embeddings"] < 2:
        raise SpecError(f"{what} sets num_conv_pos_embeddings={cfg['num_conv_pos_embeddings']} "
                        "(data2vec's positional conv layers); ssl_graph reads 2 or more (one "
                        "layer is wav2vec 2.0's weight-normed conv, a different network)")
    return cfg


def backbone_fields(cfg: dict, normalize_wave: bool) -> dict[str, Any]:
    """``SSLModel`` fields (encoder, context, feature projection) of a config with defaults:
    the one translation of HF architecture fields into ours, read by both directions' tests."""
    from .components import ConvFeatureEncoder, GatedRelativePositionBias, Transformer

    layers = tuple(zip(cfg["conv_dim"], cfg["conv_kernel"], cfg["conv_stride"], strict=True))
    encoder = ConvFeatureEncoder(
        conv_layers=layers, conv_bias=cfg["conv_bias"],
        mode="layer_norm" if cfg["feat_extract_norm"] == "layer" else "group_norm",
        activation=cfg["feat_extract_activation"], normalize_wave=normalize_wave)
    position: dict[str, Any]
    if cfg["model_type"] == "data2vec-audio":
        position = dict(pos_conv_layers=cfg["num_conv_pos_embeddings"],
                        pos_conv_kernel=cfg["conv_pos_kernel_size"])
    else:
        position = dict(pos_conv_kernel=cfg["num_conv_pos_embeddings"])
    if cfg["model_type"] == "wavlm":
        position["relative_position"] = GatedRelativePositionBias(
            num_buckets=cfg["num_buckets"], max_distance=cfg["max_bucket_distance"])
    context = Transformer(
        layers=cfg["num_hidden_layers"], dim=cfg["hidden_size"],
        ffn_dim=cfg["intermediate_size"], heads=cfg["num_attention_heads"],
        dropout=cfg["hidden_dropout"], attention_dropout=cfg["attention_dropout"],
        activation_dropout=cfg["activation_dropout"], layerdrop=cfg["layerdrop"],
        layer_norm_first=cfg["do_stable_layer_norm"],
        pos_conv_groups=cfg["num_conv_pos_embedding_groups"], activation=cfg["hidden_act"],
        **position)
    return {"encoder": encoder, "context": context, "dropout_input": cfg["feat_proj_dropout"],
            "feature_layer_norm": bool(cfg.get("feat_proj_layer_norm", True))}


def read_json_file(file: Path, what: str) -> dict:
    """A JSON object from a checkpoint's file; anything else is refused naming ``file:line``."""
    try:
        raw = json.loads(file.read_bytes())
    except json.JSONDecodeError as exc:
        raise SpecError(f"{what}: {file}:{exc.lineno}: not valid JSON ({exc.msg}, column "
                        f"{exc.colno}); restore the file save_pretrained wrote") from None
    except UnicodeDecodeError:
        raise SpecError(f"{what}: {file}: not UTF-8 JSON; restore the file save_pretrained "
                        "wrote") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{what}: {file}:1: expected a JSON object, found a "
                        f"{type(raw).__name__}; restore the file save_pretrained wrote")
    return raw


def read_preprocessor(path: Path, cfg: dict) -> dict:
    """Sampling rate and wave normalisation; without a preprocessor config, HF's convention
    (layer-norm extractors are fed normalised audio, group-norm ones raw audio)."""
    file = path / "preprocessor_config.json"
    raw = read_json_file(file, "preprocessor config") if file.is_file() else {}
    return {"sampling_rate": int(raw.get("sampling_rate", 16000)),
            "do_normalize": bool(raw.get("do_normalize", cfg["feat_extract_norm"] == "layer"))}


def ssl_model(cfg: dict, pre: dict):
    """The ``SSLModel`` whose backbone is the checkpoint's.

    HF base models carry no pretraining heads, so the objective is a placeholder that builds
    without labels (wav2vec 2.0's contrastive head on a Gumbel quantizer of the config's size):
    only the backbone is loaded, and only the backbone is used downstream.
    """
    from .components import (
        Contrastive,
        GumbelQuantizer,
        QuantizedLatents,
        SpanMask,
        SSLModel,
    )

    groups = cfg["num_codevector_groups"]
    quantizer = GumbelQuantizer(groups=groups, entries=cfg["num_codevectors_per_group"],
                                dim=cfg["codevector_dim"])
    return SSLModel(
        **backbone_fields(cfg, normalize_wave=pre["do_normalize"]), quantizer=quantizer,
        mask=SpanMask(prob=cfg["mask_time_prob"], length=cfg["mask_time_length"]),
        target=QuantizedLatents(), losses=(Contrastive(),),
        final_dim=cfg["proj_codevector_dim"], sample_rate=pre["sampling_rate"])


def hf_backbone(config: Any) -> dict[str, Any]:
    """``SSLModel`` fields (encoder, context, dropouts) matching an HF Wav2Vec2 / HuBERT /
    Data2VecAudio / WavLM config.

    Use as ``SSLModel(**hf_backbone(cfg), target=..., losses=...)`` before
    :func:`load_hf_state_dict`. HF models never normalise the wave themselves (their feature
    extractor does), so ``normalize_wave`` stays False.
    """
    return backbone_fields(with_defaults(config.to_dict(), "hf_backbone"), normalize_wave=False)
