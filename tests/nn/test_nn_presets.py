"""Every preset builds; tiny ones train a step on CPU; base ones have the papers' sizes."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from ssl_graph.nn import build_model
from ssl_graph.specs.components import (
    CodeTargets,
    CommitmentLoss,
    Contrastive,
    Diversity,
    FeaturePenalty,
    KMeansQuantizer,
    MaskedPrediction,
    QuantizedLatents,
    Transformer,
    data2vec_model,
    hubert_model,
    vq_wav2vec_model,
    wav2vec2_model,
    wav2vec_model,
    wavlm_model,
)
from ssl_graph.specs.nodes import MFCC, Corpus, KMeans, Labels

LABELS = (
    Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root="audio")), k=100)),
    Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root="audio")), k=50)),
)

TINY = {
    "wav2vec": lambda: wav2vec_model("tiny"),
    "vq_wav2vec_gumbel": lambda: vq_wav2vec_model("tiny", "gumbel"),
    "vq_wav2vec_kmeans": lambda: vq_wav2vec_model("tiny", "kmeans"),
    "wav2vec2": lambda: wav2vec2_model("tiny"),
    "hubert": lambda: hubert_model("tiny", LABELS[0]),
    "hubert_ensemble": lambda: hubert_model("tiny", LABELS),
    "data2vec": lambda: data2vec_model("tiny"),
    "wavlm": lambda: wavlm_model("tiny", LABELS[0]),
    # the mix: HuBERT masked prediction of a Gumbel quantizer's codes
    "hubert_gumbel_codes": lambda: wav2vec2_model("tiny").with_(
        target=CodeTargets(), losses=(MaskedPrediction(), Diversity(), FeaturePenalty())
    ),
    "wav2vec2_kmeans": lambda: wav2vec2_model("tiny").with_(
        quantizer=KMeansQuantizer(dim=64, entries=32), losses=(Contrastive(), CommitmentLoss())
    ),
}


def _batch(spec):
    g = torch.Generator().manual_seed(0)
    wave = torch.randn(2, 16000, generator=g)
    pad = torch.zeros(2, 16000, dtype=torch.bool)
    pad[1, 14000:] = True  # one shorter utterance
    targets = None
    if spec.target.kind == "ClusterTargets":
        targets = [torch.randint(0, k, (2, 98), generator=g) for k in spec.num_classes()]
    return wave, pad, targets


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_forward_backward(name):
    torch.manual_seed(0)
    spec = TINY[name]()
    model = build_model(spec).train()
    model.set_num_updates(1000)
    wave, pad, targets = _batch(spec)
    out = model(wave, pad, targets, mask_seed=3)
    assert torch.isfinite(out.loss) and out.sample_size > 0
    (out.loss / out.sample_size).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    logs = out.scalars()
    assert {"loss", "sample_size"} <= set(logs)
    assert "accuracy" in logs or "loss_regression" in logs  # data2vec regresses, scores nothing
    assert logs["loss"] == pytest.approx(
        sum(v for k, v in logs.items() if k.startswith("loss_")), rel=1e-4
    )
    if spec.quantized and spec.quantizer.kind == "GumbelQuantizer":
        assert logs["temperature"] == pytest.approx(spec.quantizer.temperature_at(1000))
        assert {"prob_perplexity", "code_perplexity"} <= set(logs)
    model.eval()
    with torch.no_grad():
        feats, fpad = model.extract_features(wave, pad)
        mid, _ = model.extract_features(wave, pad, layer=1)
    assert feats.shape[:2] == fpad.shape and feats.shape[-1] == spec.context_dim
    assert mid.shape == feats.shape


def test_masks_and_negatives_follow_the_seed():
    spec = wav2vec2_model("tiny")
    model = build_model(spec).eval()  # eval: no dropout, so only the seed matters
    wave, pad, _ = _batch(spec)
    a = model(wave, pad, mask_seed=5)
    b = model(wave, pad, mask_seed=5)
    c = model(wave, pad, mask_seed=6)
    assert torch.equal(a.mask, b.mask) and a.loss.item() == b.loss.item()
    assert not torch.equal(a.mask, c.mask)
    assert not (a.mask & a.padding_mask).any()  # padded frames are never masked


def test_hubert_trims_frames_to_labels():
    spec = hubert_model("tiny", LABELS[0])
    model = build_model(spec).eval()
    wave = torch.randn(1, 16000)
    out = model(wave, None, [torch.randint(0, 100, (1, 97))], mask_seed=0)
    assert out.mask.shape == (1, 48)  # 49 frames, but 97 labels at ratio 2 cover 48
    with pytest.raises(ValueError, match="1 label set"):
        model(wave, None, None, mask_seed=0)


def test_labels_enter_the_semantics_by_fingerprint():
    sem = hubert_model("tiny", LABELS).semantic()
    assert sem["target"]["labels"] == [
        {"node": "Labels", "fingerprint": lab.fingerprint} for lab in LABELS
    ]
    assert wav2vec2_model("tiny").with_(target=QuantizedLatents()) == wav2vec2_model("tiny")


def test_base_models_have_paper_sizes():
    def count(spec):
        return sum(p.numel() for p in build_model(spec).parameters())

    assert count(wav2vec2_model("base")) == pytest.approx(95e6, rel=0.05)
    k500 = Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root="audio")), k=500))
    assert count(hubert_model("base", k500)) == pytest.approx(95e6, rel=0.05)
    for spec in (wav2vec_model("base"), wav2vec_model("large"), vq_wav2vec_model("base")):
        assert count(spec) > 10e6  # builds; the wav2vec papers give no parameter counts


def test_base_and_large_presets_follow_the_papers():
    w2v2 = wav2vec2_model("base")
    assert isinstance(w2v2.context, Transformer) and w2v2.context.heads == 12
    assert w2v2.encoder.stride == 320 and w2v2.encoder.receptive_field == 400
    assert w2v2.quantizer.temperature == (2.0, 0.5, 0.999995)
    large = wav2vec2_model("large")
    assert large.context.layer_norm_first and large.encoder.mode == "layer_norm"
    assert large.quantizer.temperature[1] == 0.1 and large.final_dim == 768
    assert hubert_model("base", LABELS[0]).mask.prob == 0.8
    w2v = wav2vec_model("base")
    assert w2v.step_offset() == 3 and w2v.encoder.receptive_field == 465
    assert wav2vec_model("large").encoder.extra_linear == 2
    assert vq_wav2vec_model("base").target.steps == 8


def test_invalid_combinations_are_refused():
    spec = wav2vec2_model("tiny")
    with pytest.raises(ValidationError, match="MaskedPrediction needs target"):
        spec.with_(losses=(MaskedPrediction(),))
    with pytest.raises(ValidationError, match="CommitmentLoss needs quantizer"):
        spec.with_(losses=(Contrastive(), CommitmentLoss()))
    with pytest.raises(ValidationError, match="set mask=SpanMask"):
        spec.with_(mask=None)
    with pytest.raises(ValidationError, match="causal context"):
        wav2vec_model("tiny").with_(
            context=Transformer(layers=1, dim=64, heads=4, pos_conv_groups=4)
        )
