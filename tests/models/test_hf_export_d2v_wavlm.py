"""data2vec- and WavLM-shaped models of ours written as transformers directories load as
``Data2VecAudioModel`` / ``WavLMModel`` (and their ``ForCTC``) with equal outputs, every layer."""

from __future__ import annotations

import pytest
import torch
import transformers

from ssl_graph.audio.io import read_audio
from ssl_graph.model_io.hf_export import export_hf, hf_family
from ssl_graph.nn import build_model
from ssl_graph.nn.ctc import CTCModel
from ssl_graph.specs.base import SpecError
from ssl_graph.specs.components import GatedRelativePositionBias
from ssl_graph.specs.components_presets import hubert_model
from ssl_graph.specs.nodes import MFCC, Corpus, KMeans, Labels
from ssl_graph.train.vocab import CHARS

from ..conftest import DEMO

TOL = 1e-5
#: few buckets and a short max distance, so 1.5 s (74 frames) reach the log and far buckets
BIAS = GatedRelativePositionBias(num_buckets=16, max_distance=40)


@pytest.fixture(scope="module")
def wave():
    path = sorted((DEMO / "wav").glob("*.flac"))[0]
    return torch.from_numpy(read_audio(path, path.stem, 16000, False))[None, :24000]


@pytest.fixture(scope="module")
def labels():
    return Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root=str(DEMO / "wav"))), k=10))


def _spec(family: str, labels, pre_ln: bool = False):
    """A tiny HuBERT with data2vec's positional conv stack or WavLM's relative bias."""
    spec = hubert_model("tiny", labels=labels)
    ctx = spec.context.with_(layers=3, layer_norm_first=pre_ln)
    enc = spec.encoder
    if family == "data2vec-audio":  # data2vec's conv layers layer-norm
        ctx = ctx.with_(pos_conv_layers=3, pos_conv_kernel=5)
        enc = enc.with_(mode="layer_norm", conv_bias=True)
    else:
        ctx = ctx.with_(relative_position=BIAS)
        if pre_ln:
            enc = enc.with_(mode="layer_norm", conv_bias=True)
    return spec.with_(context=ctx, encoder=enc)


def _perturbed(model):
    with torch.no_grad():  # random weights are too regular (LN 1/0, gate const 1): perturb all
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _hf_input(out, wave):
    fe = transformers.AutoFeatureExtractor.from_pretrained(out)
    return torch.from_numpy(fe(wave[0].numpy(), sampling_rate=16000,
                               return_tensors="np").input_values)


@pytest.mark.parametrize("family,pre_ln", [("data2vec-audio", False), ("wavlm", False),
                                           ("wavlm", True)])
def test_backbone_hidden_states_equal(family, pre_ln, labels, wave, tmp_path):
    torch.manual_seed(0)
    spec = _spec(family, labels, pre_ln)
    assert hf_family(spec) == family
    ours = _perturbed(build_model(spec).eval())
    export_hf(tmp_path, spec, family, ours.state_dict())
    hf = transformers.AutoModel.from_pretrained(tmp_path).eval()
    assert hf.config.model_type == family
    assert type(hf).__name__ == {"wavlm": "WavLMModel"}.get(family, "Data2VecAudioModel")
    with torch.no_grad():
        ref = hf(_hf_input(tmp_path, wave), output_hidden_states=True)
        for layer in range(spec.context.layers):
            mine, _ = ours.extract_features(wave, layer=layer)
            assert (mine - ref.hidden_states[layer]).abs().max() <= TOL, layer
        last, _ = ours.extract_features(wave)
    assert last.shape == ref.last_hidden_state.shape == (1, 74, spec.context.dim)
    assert (last - ref.last_hidden_state).abs().max() <= TOL


@pytest.mark.parametrize("family", ["data2vec-audio", "wavlm"])
def test_ctc_logits_equal(family, labels, wave, tmp_path):
    torch.manual_seed(1)
    spec = _spec(family, labels)
    ours = _perturbed(CTCModel(spec, len(CHARS)).eval())
    export_hf(tmp_path, spec, family, ours.state_dict(), list(CHARS))
    hf = transformers.AutoModelForCTC.from_pretrained(tmp_path).eval()
    assert type(hf).__name__ == {"wavlm": "WavLMForCTC"}.get(family, "Data2VecAudioForCTC")
    with torch.no_grad():
        logits, _ = ours(wave)
        ref = hf(_hf_input(tmp_path, wave)).logits
    assert (logits - ref).abs().max() <= TOL


@pytest.mark.parametrize("change,part", [
    (lambda s: s.with_(context=s.context.with_(pos_conv_layers=3, pos_conv_kernel=5)),
     "both pos_conv_layers=3"),
    (lambda s: s.with_(context=s.context.with_(relative_position=BIAS.with_(gated=False))),
     "gated=False"),
])
def test_shapes_transformers_lacks_are_refused(change, part, labels):
    with pytest.raises(SpecError, match=part):
        hf_family(change(_spec("wavlm", labels)), "m")


def test_data2vec_needs_layer_norm_convs_and_post_ln(labels):
    spec = _spec("data2vec-audio", labels)
    with pytest.raises(SpecError, match="encoder.mode='group_norm'"):
        hf_family(spec.with_(encoder=spec.encoder.with_(mode="group_norm")), "m")
    with pytest.raises(SpecError, match="layer_norm_first=True"):
        hf_family(spec.with_(context=spec.context.with_(layer_norm_first=True)), "m")
