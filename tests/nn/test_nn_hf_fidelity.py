"""Our encoder + transformer reproduce transformers' Wav2Vec2 / HuBERT given the same weights."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from ssl_graph.nn import build_model, load_hf_state_dict
from ssl_graph.specs.components import (
    Contrastive,
    GumbelQuantizer,
    QuantizedLatents,
    SpanMask,
    SSLModel,
)
from ssl_graph.specs.hf_config import hf_backbone

TOL = 1e-5
# (feat_extract_norm, do_stable_layer_norm): BASE-like post-LN and LARGE-like pre-LN
MODES = [("group", False), ("layer", True)]
CLASSES = ["wav2vec2", "hubert"]


def _config(kind: str, norm: str, stable: bool, **extra):
    cls = transformers.Wav2Vec2Config if kind == "wav2vec2" else transformers.HubertConfig
    return cls(
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm=norm,
        do_stable_layer_norm=stable,
        conv_bias=stable,
        **extra,
    )


def _ours(cfg, **fields):
    fields = {"quantizer": GumbelQuantizer(groups=2, entries=8, dim=32), "final_dim": 32, **fields}
    spec = SSLModel(
        **hf_backbone(cfg),
        mask=SpanMask(),
        target=QuantizedLatents(),
        losses=(Contrastive(),),
        **fields,
    )
    return build_model(spec).eval()


@pytest.fixture(scope="module")
def wave():
    return torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kind", CLASSES)
@pytest.mark.parametrize("norm,stable", MODES)
def test_same_outputs(kind, norm, stable, wave):
    torch.manual_seed(1)
    cfg = _config(kind, norm, stable)
    hf_cls = transformers.Wav2Vec2Model if kind == "wav2vec2" else transformers.HubertModel
    hf = hf_cls(cfg).eval()
    ours = _ours(cfg)
    assert load_hf_state_dict(ours, hf.state_dict()) == []
    with torch.no_grad():
        ref = hf(wave, output_hidden_states=True)
        ref_conv = hf.feature_extractor(wave).transpose(1, 2)
        conv = ours.encoder(wave)
        last, pad = ours.extract_features(wave)
        mid, _ = ours.extract_features(wave, layer=1)
        first, _ = ours.extract_features(wave, layer=0)
    assert pad is None
    assert conv.shape == ref_conv.shape == (2, 24, 32)
    assert (conv - ref_conv).abs().max() <= TOL
    assert (last - ref.last_hidden_state).abs().max() <= TOL
    assert (mid - ref.hidden_states[1]).abs().max() <= TOL
    assert (first - ref.hidden_states[0]).abs().max() <= TOL
    if kind == "wav2vec2":  # HF also returns the layer-normed conv features
        normed = ours.feature_norm(conv)
        assert (normed - ref.extract_features).abs().max() <= TOL


@pytest.mark.parametrize("norm,stable", MODES)
def test_padded_batch(norm, stable, wave):
    """Each row of a padded batch gives transformers' output for that utterance alone: padding
    never enters a normalisation (group-norm encoders included, where transformers' padded
    batch differs from its own unpadded output) nor an attention."""
    torch.manual_seed(2)
    cfg = _config("wav2vec2", norm, stable)
    hf = transformers.Wav2Vec2Model(cfg).eval()
    ours = _ours(cfg)
    load_hf_state_dict(ours, hf.state_dict())
    attn = torch.ones(2, 8000, dtype=torch.long)
    attn[1, 5000:] = 0
    w = wave.clone()
    w[1, 5000:] = 0.0
    with torch.no_grad():
        alone = [hf(w[:1]).last_hidden_state[0], hf(w[1:, :5000]).last_hidden_state[0]]
        out, pad = ours.extract_features(w, attn == 0)
    assert pad is not None and int((~pad[1]).sum()) == 15  # conv lengths of 5000 samples
    for b, ref in enumerate(alone):
        assert (out[b][~pad[b]] - ref).abs().max() <= TOL


def test_pos_conv_weight_variants(wave):
    """Old-style weight_g/weight_v keys and a plain (non weight-normed) weight load the same."""
    torch.manual_seed(3)
    cfg = _config("wav2vec2", "group", False)
    hf = transformers.Wav2Vec2Model(cfg).eval()
    sd = hf.state_dict()
    with torch.no_grad():
        ref = hf(wave).last_hidden_state
    prefix = "encoder.pos_conv_embed.conv."
    g, v = (
        sd.pop(prefix + "parametrizations.weight.original0"),
        sd.pop(prefix + "parametrizations.weight.original1"),
    )
    old = {**sd, prefix + "weight_g": g, prefix + "weight_v": v}
    plain = {**sd, prefix + "weight": hf.encoder.pos_conv_embed.conv.weight.detach()}
    for variant in (old, plain):
        ours = _ours(cfg)
        assert load_hf_state_dict(ours, variant) == []
        with torch.no_grad():
            out, _ = ours.extract_features(wave)
        assert (out - ref).abs().max() <= TOL


def test_pretraining_heads_and_quantizer(wave):
    torch.manual_seed(4)
    cfg = _config(
        "wav2vec2",
        "group",
        False,
        num_codevector_groups=2,
        num_codevectors_per_group=8,
        codevector_dim=32,
        proj_codevector_dim=16,
    )
    hf = transformers.Wav2Vec2ForPreTraining(cfg).eval()
    ours = _ours(cfg, final_dim=16)
    assert load_hf_state_dict(ours, hf.state_dict()) == []
    with torch.no_grad():
        feats = hf.wav2vec2(wave).extract_features  # layer-normed conv features
        ref_q, _ = hf.quantizer(feats)
        q = ours.quantizer(feats)
    assert (q.x - ref_q).abs().max() <= TOL
    head = ours.heads["contrastive"]
    assert torch.equal(head.final_proj.weight, hf.project_hid.weight)
    assert torch.equal(head.project_q.weight, hf.project_q.weight)


def test_strict_refuses_missing_backbone():
    cfg = _config("hubert", "group", False)
    sd = transformers.HubertModel(cfg).state_dict()
    sd.pop("encoder.layers.0.feed_forward.output_dense.weight")
    with pytest.raises(KeyError, match="backbone"):
        load_hf_state_dict(_ours(cfg), sd)
