"""HuBERT iterations: layer features of a trained model → k-means → labels → iteration 2."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_graph import SpecError
from ssl_graph.api import Project
from ssl_graph.graph.pipeline import load_pipeline

from ..conftest import make_corpus

SPEC = '''
from ssl_graph import MFCC, ClusterQuality, Corpus, KMeans, LayerFeatures, Labels
from ssl_graph.presets import hubert

corpus = Corpus(root="wav", alignments="alignments.tsv")
short = dict(batch_seconds=4.0, crop_seconds=1.0, checkpoint_every=100)
labels1 = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))
it1 = hubert(corpus, targets=labels1, size="tiny", steps=6, **short)
feats2 = LayerFeatures(model=it1, layer={layer})
km2 = KMeans(features=feats2, k={k}, fit_fraction=1.0, max_iter=10)
labels2 = Labels(kmeans=km2)
quality2 = ClusterQuality(labels=labels2)
it2 = hubert(corpus, targets=labels2, size="tiny", steps=4, **short)
'''


def _write(d, k=16, layer=1):
    (d / "p.py").write_text(SPEC.format(k=k, layer=layer))


def _stale(d):
    return {n for n, st in Project(d / "p.py", str(d / "store")).plan().items() if st.stale}


def test_iteration_two_reruns_only_what_depends_on_k_or_layer(tmp_path):
    make_corpus(tmp_path, 8)
    _write(tmp_path)
    p = Project(tmp_path / "p.py", str(tmp_path / "store"))
    p.run()
    assert _stale(tmp_path) == set()
    utt = p["feats2"].utterances()[0]
    feats = p["feats2"].features(utt)
    import soundfile as sf

    n_samples = sf.info(str(tmp_path / "wav" / f"{utt}.flac")).frames
    assert feats.shape == ((n_samples - 400) // 320 + 1, 128) and feats.dtype == np.float32
    assert len(p["labels2"].labels(utt)) == len(feats)
    assert 0 < p["quality2"].metrics["pnmi"] < 1

    _write(tmp_path, k=12)
    assert _stale(tmp_path) == {"km2", "labels2", "quality2", "it2"}
    _write(tmp_path, k=16, layer=2)
    assert _stale(tmp_path) == {"feats2", "km2", "labels2", "quality2", "it2"}
    report = Project(tmp_path / "p.py", str(tmp_path / "store")).run()
    assert {n.name for n in report.nodes if n.status == "computed"} == {
        "feats2", "km2", "labels2", "quality2", "it2"}

    # the report: one row per scoring/training node, and the pictures
    from click.testing import CliRunner

    from ssl_graph.cli import main

    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["--store", str(tmp_path / "store"), "report",
                                    str(tmp_path / "p.py"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "quality2" in res.output and "it1 layer 2, k=16" in res.output
    html = (out / "report.html").read_text()
    for png in ("graph.png", "curves.png", "heatmap-quality2.png"):
        assert (out / png).stat().st_size > 5000 and png in html


def test_layer_features_match_the_trained_model(tmp_path):
    import torch

    from ssl_graph.audio.io import read_audio
    from ssl_graph.nn import build_model
    from ssl_graph.train.checkpoint import load_weights

    make_corpus(tmp_path, 8)
    _write(tmp_path)
    p = Project(tmp_path / "p.py", str(tmp_path / "store"))
    p.run(["feats2"])
    it1 = p.pipeline.node("it1")
    model = build_model(it1.model)
    load_weights(p.store.backend, p["it1"].key, model)
    model.eval()
    utt = p["feats2"].utterances()[3]
    wave = read_audio(tmp_path / "wav" / f"{utt}.flac", utt)
    with torch.inference_mode():
        want, _ = model.extract_features(torch.from_numpy(wave)[None], None, layer=1)
    np.testing.assert_allclose(p["feats2"].features(utt), want[0].numpy(), rtol=1e-5, atol=1e-5)


def test_layer_out_of_range_and_label_rate_mismatch_fail_at_plan_time(tmp_path):
    make_corpus(tmp_path, 4)
    _write(tmp_path, layer=7)
    with pytest.raises(SpecError, match="feats2: layer=7 but model it1 has 2 context layers"):
        load_pipeline(tmp_path / "p.py")
    # a 256-sample encoder stride gives 62.5 Hz frames: 100 Hz labels cannot align
    (tmp_path / "q.py").write_text(
        "from ssl_graph import *\nfrom ssl_graph.presets import hubert\n"
        "from ssl_graph.specs.components import ConvFeatureEncoder\n"
        "corpus = Corpus(root='wav')\n"
        "lab = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=5))\n"
        "base = hubert(corpus, targets=lab, size='tiny')\n"
        "odd = base.with_(model=base.model.with_(encoder=ConvFeatureEncoder(conv_layers="
        "((64, 8, 4), (64, 4, 4), (64, 4, 4), (64, 2, 2), (64, 2, 2)))))\n"
    )
    with pytest.raises(SpecError, match=r"odd: labels at 100 Hz cannot align with model frames"):
        load_pipeline(tmp_path / "q.py")
