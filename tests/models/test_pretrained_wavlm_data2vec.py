"""Released WavLM and data2vec-audio checkpoints (random, saved by transformers) as nodes: a
layer sweep over WavLM gives units, HuBERT-style pre-training continues from each release, and
the continued models export back as ``WavLMModel`` / ``Data2VecAudioModel`` with equal outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from ssl_graph.api import Project
from ssl_graph.audio.io import read_audio
from ssl_graph.specs.base import SpecError

from ..conftest import make_corpus

SPEC = '''
from ssl_graph import Corpus, KMeans, Labels, LayerFeatures, LayerSweep, PretrainedModel
from ssl_graph.presets import hubert
from ssl_graph.specs.components import ClusterTargets, MaskedPrediction, NoQuantizer

corpus = Corpus(root="wav")
wavlm = PretrainedModel(path="wavlm")
d2v = PretrainedModel(path="d2v")
sweep = LayerSweep(model=wavlm, layers=(0, 2, 3), corpus=corpus, batch_seconds=8.0)
l2 = sweep.layer(2)
direct2 = LayerFeatures(model=wavlm, layer=2, corpus=corpus)
km = KMeans(features=l2, k=4, fit_fraction=1.0, seed=0, max_iter=5)
units = Labels(kmeans=km)
d2v_feats = LayerFeatures(model=d2v, layer=1, corpus=corpus)


def continued(release):
    model = release.model.with_(quantizer=NoQuantizer(), target=ClusterTargets(labels=(units,)),
                                losses=(MaskedPrediction(),))
    return hubert(corpus, targets=units, size="tiny", steps=2, batch_seconds=2.0,
                  crop_seconds=1.0).with_(model=model, init=release)


wavlm_it = continued(wavlm)
d2v_it = continued(d2v)
'''
GEOMETRY = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                conv_dim=(16,) * 7, num_conv_pos_embedding_groups=2, layerdrop=0.0)


def save_releases(d, seed: int = 0) -> None:
    torch.manual_seed(seed)
    cfg = transformers.WavLMConfig(**GEOMETRY, num_conv_pos_embeddings=16, num_buckets=16,
                                   max_bucket_distance=40)  # 1-3 s reach the far buckets
    transformers.WavLMModel(cfg).save_pretrained(d / "wavlm")
    cfg = transformers.Data2VecAudioConfig(**GEOMETRY, num_conv_pos_embeddings=2,
                                           conv_pos_kernel_size=5)
    transformers.Data2VecAudioModel(cfg).save_pretrained(d / "d2v")
    # raw waves, so HF's model sees what ours does (a layer-norm encoder's default is to
    # normalise each wave in the feature extractor, with another epsilon than ours)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(d / "d2v")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("wavlm_d2v")
    utts = make_corpus(d, 6)
    save_releases(d)
    (d / "p.py").write_text(SPEC)
    project = Project(d / "p.py", str(d / "store"))
    project.run(["direct2", "d2v_feats", "wavlm_it", "d2v_it"])
    project.utts = utts
    return project


def _wave(project, utt: str) -> torch.Tensor:
    wav = project.spec_path.parent / "wav" / f"{utt}.flac"
    return torch.from_numpy(read_audio(wav, utt, 16000, False))[None]


def test_released_configs_become_our_components(project):
    wavlm, d2v = project["wavlm"].node, project["d2v"].node
    assert wavlm.model_type == "wavlm" and d2v.model_type == "data2vec-audio"
    bias = wavlm.model.context.relative_position
    assert (bias.num_buckets, bias.max_distance, bias.gated) == (16, 40, True)
    assert d2v.model.context.relative_position is None
    assert (d2v.model.context.pos_conv_layers, d2v.model.context.pos_conv_kernel) == (2, 5)
    assert d2v.model.encoder.mode == "layer_norm"  # data2vec's conv layers always layer-norm
    assert not d2v.model.encoder.normalize_wave  # as its preprocessor_config.json says


@pytest.mark.parametrize("name,release,layer", [("direct2", "wavlm", 2), ("d2v_feats", "d2v", 1)])
def test_layer_features_equal_transformers(project, name, release, layer):
    cls = transformers.WavLMModel if release == "wavlm" else transformers.Data2VecAudioModel
    hf = cls.from_pretrained(project.spec_path.parent / release).eval()
    for utt in project.utts[:3]:
        with torch.no_grad():
            ref = hf(_wave(project, utt), output_hidden_states=True).hidden_states[layer][0]
        ours = project[name].features(utt)
        assert ours.shape == tuple(ref.shape)
        assert np.abs(ours - ref.numpy()).max() <= 1e-5, utt


def test_wavlm_sweep_equals_one_utterance_at_a_time_and_gives_units(project):
    """The sweep pads 2-3 utterances per forward: the relative bias must not see the padding."""
    assert 1 < project["sweep"].record["forward_passes"] < len(project.utts)
    for utt in project.utts:
        a, b = project["l2"].features(utt), project["direct2"].features(utt)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-5, utt
    assert project["km"].centroids.shape == (4, 32)
    assert project["wavlm_it"].record["step"] == 2


@pytest.mark.parametrize("node,family,cls", [("wavlm_it", "wavlm", "WavLMModel"),
                                             ("d2v_it", "data2vec-audio", "Data2VecAudioModel")])
def test_continued_models_export_as_their_family(project, node, family, cls, tmp_path):
    from ssl_graph.nn import build_model
    from ssl_graph.train.checkpoint import load_weights

    project[node].export(tmp_path / node)
    hf = transformers.AutoModel.from_pretrained(tmp_path / node).eval()
    assert type(hf).__name__ == cls and hf.config.model_type == family
    ours = build_model(project[node].node.model).eval()
    load_weights(project.store.backend, project[node].key, ours)
    wave = _wave(project, project.utts[0])
    with torch.no_grad():
        ref = hf(wave, output_hidden_states=True)
        for layer in range(3):
            mine, _ = ours.extract_features(wave, layer=layer)
            assert (mine - ref.hidden_states[layer]).abs().max() <= 1e-5, layer
        last, _ = ours.extract_features(wave)
    assert (last - ref.last_hidden_state).abs().max() <= 1e-5


def test_init_from_a_different_backbone_is_refused(project):
    """The WavLM release cannot initialise a model without its relative position bias."""
    it = project["wavlm_it"].node
    plain = it.model.with_(context=it.model.context.with_(relative_position=None))
    with pytest.raises(SpecError, match="different backbone .context.relative_position"):
        it.with_(model=plain).check(lambda node: "it")
    it.check(lambda node: "it")  # (the release's own backbone passes)
