"""A layer sweep is one batched forward pass per utterance, equal to one-at-a-time extraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from ssl_graph.api import Project

from ..conftest import make_corpus

SPEC = '''
from ssl_graph import KMeans, Corpus, LayerFeatures, LayerSweep, PretrainedModel

corpus = Corpus(root="wav")
released = PretrainedModel(path="released")
sweep = LayerSweep(model=released, layers=(0, 1, 3), corpus=corpus, batch_seconds={batch})
l0, l1, l3 = sweep.layer(0), sweep.layer(1), sweep.layer(3)
km3 = KMeans(features=l3, k=4, fit_fraction=1.0, seed=0, max_iter=5)
d0 = LayerFeatures(model=released, layer=0, corpus=corpus)
d1 = LayerFeatures(model=released, layer=1, corpus=corpus)
d3 = LayerFeatures(model=released, layer=3, corpus=corpus)
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    utts = make_corpus(d, 8)
    torch.manual_seed(0)
    cfg = transformers.HubertConfig(  # group-norm encoder: the case padding would break
        hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    transformers.HubertModel(cfg).save_pretrained(d / "released")
    (d / "p.py").write_text(SPEC.format(batch=8.0))  # ~2-3 utterances per padded batch
    project = Project(d / "p.py", str(d / "store"))
    project.run()
    project.utts = utts
    return project


def test_sweep_equals_one_utterance_at_a_time(project):
    for layer in (0, 1, 3):
        sliced, direct = project[f"l{layer}"], project[f"d{layer}"]
        assert sliced.utterances() == direct.utterances() == project.utts
        for u in project.utts:
            a, b = sliced.features(u), direct.features(u)
            assert a.shape == b.shape and a.shape[1] == 32
            assert np.abs(a - b).max() <= 1e-5, (layer, u)


def test_one_forward_per_utterance_batched(project):
    rec = project["sweep"].record
    assert rec["utterances"] == len(project.utts) == 8
    assert 1 < rec["forward_passes"] < 8  # batched, and every utterance went through once
    assert all(project[n].record["forward_passes"] == 0 for n in ("l0", "l1", "l3"))
    lengths = project["sweep"].lengths()
    assert lengths == project["l3"].lengths()
    assert project["sweep"].features(project.utts[0]).shape[1] == 3 * 32
    assert project["km3"].centroids.shape == (4, 32)


def test_sliced_layer_must_be_in_the_sweep(project):
    from ssl_graph import LayerFeatures
    from ssl_graph.specs.base import SpecError

    sweep = project["sweep"].node
    bad = LayerFeatures(sweep=sweep, layer=2)
    with pytest.raises(SpecError, match="not among"):
        bad.check(lambda n: "x")
    with pytest.raises(ValueError, match="increasing order"):
        sweep.with_(layers=(3, 1))
