"""Our transformer with data2vec's positional conv stack / WavLM's gated relative position bias
reproduces transformers' ``Data2VecAudioModel`` / ``WavLMModel``, every hidden layer, given the
same weights (HF → ours; ours → HF is ``tests/models/test_hf_export.py``)."""

from __future__ import annotations

import pytest
import torch
import transformers

from ssl_graph.nn import build_model, load_hf_state_dict
from ssl_graph.nn.relative_position import relative_position_buckets
from ssl_graph.specs.components import (
    Contrastive,
    GatedRelativePositionBias,
    GumbelQuantizer,
    QuantizedLatents,
    SpanMask,
    SSLModel,
    Transformer,
)
from ssl_graph.specs.hf_config import hf_backbone

TOL = 1e-5
SMALL = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
             conv_dim=(32,) * 7, num_conv_pos_embedding_groups=4)


def _config(kind: str, **extra):
    if kind == "data2vec-audio":
        return transformers.Data2VecAudioConfig(**{
            **SMALL, "num_conv_pos_embeddings": 3, "conv_pos_kernel_size": 5, "conv_bias": True,
            **extra})
    # few buckets and a short max distance, so 2 s (99 frames) reach the log and far buckets
    return transformers.WavLMConfig(**{**SMALL, "num_conv_pos_embeddings": 16, "num_buckets": 16,
                                       "max_bucket_distance": 40, **extra})


def _ours(cfg):
    spec = SSLModel(**hf_backbone(cfg), quantizer=GumbelQuantizer(groups=2, entries=8, dim=32),
                    final_dim=32, mask=SpanMask(), target=QuantizedLatents(),
                    losses=(Contrastive(),))
    return build_model(spec).eval()


def _randomise(hf):
    """Move the parameters HF initialises to constants (LN 1/0, gate const 1), so a mapping
    that drops or swaps them fails."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "layer_norm" in name or "gru_rel_pos_const" in name or "rel_attn_embed" in name:
                p.copy_(p + 0.3 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def wave():
    return torch.randn(2, 32000, generator=torch.Generator().manual_seed(0))


CASES = [("data2vec-audio", {}), ("wavlm", {}),
         ("wavlm", dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)),
         ("wavlm", dict(num_buckets=320, max_bucket_distance=800))]


@pytest.mark.parametrize("kind,extra", CASES, ids=["data2vec", "wavlm-base", "wavlm-large",
                                                   "wavlm-320-buckets"])
def test_every_hidden_layer_equals_transformers(kind, extra, wave):
    torch.manual_seed(1)
    cfg = _config(kind, **extra)
    hf_cls = transformers.Data2VecAudioModel if kind == "data2vec-audio" else transformers.WavLMModel
    hf = hf_cls(cfg).eval()
    _randomise(hf)
    ours = _ours(cfg)
    ctx = ours.spec.context
    if kind == "wavlm":
        assert ctx.relative_position == GatedRelativePositionBias(
            num_buckets=cfg.num_buckets, max_distance=cfg.max_bucket_distance)
    else:
        assert (ctx.pos_conv_layers, ctx.pos_conv_kernel) == (3, 5)
    assert load_hf_state_dict(ours, hf.state_dict()) == []
    with torch.no_grad():
        ref = hf(wave, output_hidden_states=True)
        last, pad = ours.extract_features(wave)
        layers = [ours.extract_features(wave, layer=i)[0] for i in range(cfg.num_hidden_layers)]
    assert pad is None and last.shape == ref.last_hidden_state.shape == (2, 99, 64)
    assert (last - ref.last_hidden_state).abs().max() <= TOL
    for i, mine in enumerate(layers):
        assert (mine - ref.hidden_states[i]).abs().max() <= TOL, f"hidden state {i}"


@pytest.mark.parametrize("kind", ["data2vec-audio", "wavlm"])
def test_padded_rows_equal_transformers_alone(kind, wave):
    """A padded row computes what transformers computes for that utterance alone: neither the
    positional conv stack nor the relative bias lets padding reach a valid frame."""
    torch.manual_seed(2)
    cfg = _config(kind, **({} if kind == "data2vec-audio" else {"feat_extract_norm": "layer"}))
    hf_cls = transformers.Data2VecAudioModel if kind == "data2vec-audio" else transformers.WavLMModel
    hf = hf_cls(cfg).eval()
    ours = _ours(cfg)
    load_hf_state_dict(ours, hf.state_dict())
    w = wave.clone()
    w[1, 20000:] = 0.0
    pad = torch.zeros(2, 32000, dtype=torch.bool)
    pad[1, 20000:] = True
    with torch.no_grad():
        alone = [hf(w[:1]).last_hidden_state[0], hf(w[1:, :20000]).last_hidden_state[0]]
        out, frame_pad = ours.extract_features(w, pad)
    assert frame_pad is not None and int((~frame_pad[1]).sum()) == alone[1].size(0) == 62
    for b, ref in enumerate(alone):
        assert (out[b][~frame_pad[b]] - ref).abs().max() <= TOL


def test_buckets_by_hand():
    """8 buckets: 2 per direction exact (offsets 0, 1), then log-spaced to max_distance=8."""
    b = relative_position_buckets(12, 8, 8)
    # key j − query i = d: d ≤ 0 → 0..3, d > 0 → 4..7; |d| < 2 exact, then 2 + ⌊log(|d|/2) /
    # log(4) · 2⌋ capped at 3
    def want(d):
        a = abs(d)
        inner = a if a < 2 else min(3, 2 + int(torch.log(torch.tensor(a / 2)) / torch.log(
            torch.tensor(4.0)) * 2))
        return (4 if d > 0 else 0) + inner
    for i in range(12):
        for j in range(12):
            assert int(b[i, j]) == want(j - i), (i, j)
    assert int(b[0, 11]) == 7 and int(b[11, 0]) == 3 and int(b[3, 3]) == 0 and int(b[3, 4]) == 5


def test_transformer_spec_refuses_bad_bias_and_conv_fields():
    with pytest.raises(ValueError, match="num_buckets=321 must be even"):
        GatedRelativePositionBias(num_buckets=321)
    with pytest.raises(ValueError, match="max_distance=80 must exceed"):
        GatedRelativePositionBias(num_buckets=320, max_distance=80)
    with pytest.raises(ValueError, match="pos_conv_layers"):
        Transformer(pos_conv_layers=0)


def test_ungated_bias_is_added_as_it_is():
    """gated=False: no gate parameters; a layer's logits get the shared table's bias as is,
    so with zero q/k projections attention is softmax(bias) over the keys."""
    spec = Transformer(layers=1, dim=8, ffn_dim=16, heads=2, pos_conv_kernel=4, pos_conv_groups=2,
                       relative_position=GatedRelativePositionBias(num_buckets=8, max_distance=8,
                                                                   gated=False))
    from ssl_graph.nn.transformer import TransformerModule

    torch.manual_seed(0)
    mod = TransformerModule(spec).eval()
    assert not any("gate" in k for k in mod.state_dict())
    attn = mod.layers[0].attn
    with torch.no_grad():
        for p in (attn.q_proj, attn.k_proj):
            p.weight.zero_()
            p.bias.zero_()
        attn.v_proj.weight.copy_(torch.eye(8))
        attn.v_proj.bias.zero_()
        attn.out_proj.weight.copy_(torch.eye(8))
        attn.out_proj.bias.zero_()
    x = torch.randn(1, 6, 8)
    bias = mod.relative_position(6)  # (H, T, T)
    with torch.no_grad():
        y = attn(x, None, bias)
    probs = torch.softmax(bias, -1)  # (H, T, T)
    want = torch.einsum("hij,jhd->ihd", probs, x[0].view(6, 2, 4)).reshape(6, 8)
    torch.testing.assert_close(y[0], want, rtol=1e-5, atol=1e-6)


def test_equal_width_projection_is_refused_unless_identity():
    """Our network has no feature projection at equal conv/transformer widths: a checkpoint's
    projection there is read only if it is the identity, never dropped silently."""
    cfg = _config("wavlm", conv_dim=(64,) * 7)
    hf = transformers.WavLMModel(cfg)
    with pytest.raises(ValueError, match="equal widths"):
        load_hf_state_dict(_ours(cfg), hf.state_dict())
    with torch.no_grad():
        hf.feature_projection.projection.weight.copy_(torch.eye(64))
        hf.feature_projection.projection.bias.zero_()
    assert load_hf_state_dict(_ours(cfg), hf.state_dict()) == []
