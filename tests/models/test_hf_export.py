"""Our models written as transformers directories load in transformers with equal outputs."""

from __future__ import annotations

import pytest
import torch
import transformers

from ssl_graph.audio.io import read_audio
from ssl_graph.model_io.hf_export import export_hf, hf_family
from ssl_graph.nn import build_model
from ssl_graph.nn.ctc import CTCModel
from ssl_graph.specs.base import SpecError
from ssl_graph.specs.components import ConvFeatureEncoder
from ssl_graph.specs.components_presets import (
    hubert_model,
    vq_wav2vec_model,
    wav2vec2_model,
    wav2vec_model,
)
from ssl_graph.specs.nodes import MFCC, Corpus, KMeans, Labels
from ssl_graph.train.vocab import CHARS

from ..conftest import DEMO

TOL = 1e-5


@pytest.fixture(scope="module")
def wave():
    path = sorted((DEMO / "wav").glob("*.flac"))[0]
    return torch.from_numpy(read_audio(path, path.stem, 16000, False))[None, :24000]


@pytest.fixture(scope="module")
def labels():
    corpus = Corpus(root=str(DEMO / "wav"))
    return Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=10))


def _backbone(spec, mode: str):
    """Tiny geometry in the BASE (group_norm, post-LN) or LARGE (layer_norm, pre-LN) layout."""
    enc = spec.encoder.with_(mode=mode, conv_bias=mode == "layer_norm")
    ctx = spec.context.with_(layer_norm_first=mode == "layer_norm", layers=3)
    return spec.with_(encoder=enc, context=ctx)


def _spec(family, mode, labels):
    base = hubert_model("tiny", labels=labels) if family == "hubert" else wav2vec2_model("tiny")
    return _backbone(base, mode)


def _hf_input(out, wave):
    fe = transformers.AutoFeatureExtractor.from_pretrained(out)
    return torch.from_numpy(fe(wave[0].numpy(), sampling_rate=16000,
                               return_tensors="np").input_values)


@pytest.mark.parametrize("family", ["wav2vec2", "hubert"])
@pytest.mark.parametrize("mode", ["group_norm", "layer_norm"])
def test_backbone_hidden_states_equal(family, mode, labels, wave, tmp_path):
    torch.manual_seed(0)
    spec = _spec(family, mode, labels)
    assert hf_family(spec) == family
    ours = build_model(spec).eval()
    with torch.no_grad():  # random weights are too regular: perturb every tensor
        for p in ours.parameters():
            p.add_(0.05 * torch.randn_like(p))
    export_hf(tmp_path, spec, family, ours.state_dict())
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {
        p.name for p in tmp_path.iterdir()}
    hf = transformers.AutoModel.from_pretrained(tmp_path).eval()
    assert hf.config.model_type == family
    with torch.no_grad():
        ref = hf(_hf_input(tmp_path, wave), output_hidden_states=True)
        for layer in range(spec.context.layers):
            mine, _ = ours.extract_features(wave, layer=layer)
            assert (mine - ref.hidden_states[layer]).abs().max() <= TOL, layer
        last, _ = ours.extract_features(wave)
    assert last.shape == ref.last_hidden_state.shape
    assert (last - ref.last_hidden_state).abs().max() <= TOL


@pytest.mark.parametrize("mode", ["group_norm", "layer_norm"])
def test_ctc_logits_and_processor(mode, labels, wave, tmp_path):
    torch.manual_seed(1)
    spec = _spec("hubert", mode, labels)
    ours = CTCModel(spec, len(CHARS)).eval()
    with torch.no_grad():
        ours.proj.bias.normal_()
    export_hf(tmp_path, spec, "hubert", ours.state_dict(), list(CHARS))
    hf = transformers.AutoModelForCTC.from_pretrained(tmp_path).eval()
    proc = transformers.AutoProcessor.from_pretrained(tmp_path)
    assert type(hf).__name__ == "HubertForCTC" and hf.config.pad_token_id == 0
    assert proc.tokenizer.convert_ids_to_tokens(list(range(len(CHARS)))) == list(CHARS)
    with torch.no_grad():
        logits, _ = ours(wave)
        ref = hf(_hf_input(tmp_path, wave)).logits
    assert (logits - ref).abs().max() <= TOL
    ids = ref.argmax(-1)[0].tolist()
    ours_text = proc.decode(ids)  # HF's CTC decoding of our logits is ours: collapse, drop blank
    from ssl_graph.nn.ctc import greedy_decode
    from ssl_graph.train.vocab import tokens_to_text

    assert ours_text == tokens_to_text([CHARS[i] for i in greedy_decode(logits)[0]])


def test_wave_normalisation_goes_to_the_feature_extractor(labels, wave, tmp_path):
    """Our per-utterance layer norm (eps 1e-5) becomes HF's do_normalize (eps 1e-7): the model
    is exact (above); the preprocessing differs by that epsilon only."""
    torch.manual_seed(3)
    spec = _spec("wav2vec2", "layer_norm", labels)
    spec = spec.with_(encoder=spec.encoder.with_(normalize_wave=True))
    ours = build_model(spec).eval()
    export_hf(tmp_path, spec, "wav2vec2", ours.state_dict())
    fe = transformers.AutoFeatureExtractor.from_pretrained(tmp_path)
    assert fe.do_normalize and fe.return_attention_mask
    hf = transformers.AutoModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        mine, _ = ours.extract_features(wave)
        ref = hf(_hf_input(tmp_path, wave)).last_hidden_state
    assert (mine - ref).abs().max() <= 1e-2


def test_same_width_model_gets_identity_projection(labels, wave, tmp_path):
    torch.manual_seed(2)
    spec = wav2vec2_model("tiny")
    spec = spec.with_(encoder=spec.encoder.with_(conv_layers=((128, 10, 5),) + ((128, 3, 2),) * 4
                                                  + ((128, 2, 2),) * 2))
    ours = build_model(spec).eval()
    assert ours.feature_proj is None
    export_hf(tmp_path, spec, "wav2vec2", ours.state_dict())
    hf = transformers.AutoModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        mine, _ = ours.extract_features(wave)
        assert (mine - hf(wave).last_hidden_state).abs().max() <= TOL


@pytest.mark.parametrize("build,part", [
    (lambda: wav2vec_model("tiny"), "Wav2VecEncoder"),
    (lambda: vq_wav2vec_model("tiny"), "Wav2VecEncoder"),
    (lambda: wav2vec2_model("tiny").with_(
        context=wav2vec_model("tiny").context, encoder=ConvFeatureEncoder()), "ConvContext"),
])
def test_unrepresentable_architectures_refused(build, part):
    with pytest.raises(SpecError, match=part):
        hf_family(build(), "m")


def test_mixed_variant_refused(labels):
    """HuBERT-style masked prediction of Gumbel codes: no HF class pretrains it."""
    from ssl_graph.specs.components import CodeTargets, MaskedPrediction

    mixed = wav2vec2_model("tiny").with_(target=CodeTargets(), losses=(MaskedPrediction(),))
    with pytest.raises(SpecError, match="mixed variant"):
        hf_family(mixed, "m")
    assert hf_family(mixed, "m", hint="hubert") == "hubert"  # its backbone still is HuBERT's
