"""LayerFeatures / LayerSweep decode audio in DataLoader workers: features bit-identical for 0
and 2 workers, and ``workers`` is a runtime field (same fingerprint, same cache)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ssl_graph.api import Project

from ..conftest import make_corpus

torch = pytest.importorskip("torch")

SPEC = '''
from ssl_graph import Corpus, LayerFeatures
from ssl_graph.presets import wav2vec2
from ssl_graph.specs.layer_features import LayerSweep

corpus = Corpus(root="wav")
pre = wav2vec2(corpus, size="tiny", steps=2, batch_seconds=2.0, crop_seconds=1.0)
feats = LayerFeatures(model=pre, layer=1, workers={workers}, chunk_seconds=2.0)
sweep = LayerSweep(model=pre, layers=(1, 2), workers={workers})
'''


def test_features_identical_for_zero_and_two_workers(tmp_path):
    a = tmp_path / "a"
    make_corpus(a, 8)
    (a / "p.py").write_text(SPEC.format(workers=0))
    pa = Project(a / "p.py", str(a / "store"))
    pa.run(["pre"])
    shutil.copytree(a, tmp_path / "b")  # the same trained model in both stores
    b = tmp_path / "b"
    (b / "p.py").write_text(SPEC.format(workers=2))
    pb = Project(b / "p.py", str(b / "store"))
    for name in ("feats", "sweep"):
        assert pa.pipeline.node(name).fingerprint == pb.pipeline.node(name).fingerprint
    pa.run(["feats", "sweep"])
    assert pb.plan()["feats"].stale  # b's store has no features yet
    pb.run(["feats", "sweep"])
    for name in ("feats", "sweep"):
        utts = pa[name].utterances()
        assert utts == pb[name].utterances() and len(utts) == 8
        for x, y in zip(pa[name].features_many(utts), pb[name].features_many(utts)):
            assert x.shape == y.shape and x.shape[0] > 0 and np.array_equal(x, y)


def test_prefetch_reads_in_order_and_falls_back_out_of_order(tmp_path):
    from ssl_graph.audio.io import read_audio
    from ssl_graph.ops.audio_prefetch import AudioPrefetch

    make_corpus(tmp_path, 6)
    files = sorted((tmp_path / "wav").glob("*.flac"))
    paths = {f.stem: f for f in files}
    todo = sorted(paths)
    pre = AudioPrefetch(paths, todo, sample_rate=16000, resample=False, workers=2, device="cpu")
    first = pre.take(todo[:4])
    assert pre._it is not None and pre._next == 4  # came from the workers
    for u, w in zip(todo[:4], first):
        assert np.array_equal(w, read_audio(paths[u], u, 16000))
    last = pre.take([todo[5]])  # skips one: read directly, the loader is stopped
    assert pre._it is None and np.array_equal(last[0], read_audio(paths[todo[5]], todo[5], 16000))
