"""Same spec and seed → the same trained weights whether the global batch runs in one forward,
in micro-batches (``max_batch_seconds``) or over 2 gloo ranks, for every objective: wav2vec,
vq-wav2vec (Gumbel and k-means), wav2vec 2.0 and HuBERT (fp32, dropout off)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ssl_graph.api import Project  # noqa: E402
from ssl_graph.exec.overrides import apply_overrides  # noqa: E402
from ssl_graph.specs.base import SpecError  # noqa: E402

from ..conftest import make_corpus  # noqa: E402
from .test_runtime import _curve  # noqa: E402

NODES = ("w2v", "vq", "vqk", "w2v2", "hb")
# 3 updates of 4+ one-second crops; dropout off: ranks and micro-batches draw their own dropout
SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import hubert, vq_wav2vec, wav2vec, wav2vec2

corpus = Corpus(root="wav")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))


def no_dropout(node):
    m = node.model
    ctx = m.context.with_(dropout=0.0)
    if hasattr(ctx, "layerdrop"):
        ctx = ctx.with_(attention_dropout=0.0, activation_dropout=0.0, layerdrop=0.0)
    return node.with_(model=m.with_(context=ctx, dropout_input=0.0, dropout_features=0.0,
                                    dropout_context=0.0))


small = dict(size="tiny", steps=3, batch_seconds=4.0, crop_seconds=1.0, min_seconds=1.0)
w2v = no_dropout(wav2vec(corpus, **small))
vq = no_dropout(vq_wav2vec(corpus, **small))
vqk = no_dropout(vq_wav2vec(corpus, quantizer="kmeans", **small))
w2v2 = no_dropout(wav2vec2(corpus, **small))
hb = no_dropout(hubert(corpus, targets=labels, **small))
'''


def _project(d, sets=()):
    make_corpus(d, 8)
    (d / "p.py").write_text(SPEC)
    project = Project(d / "p.py", str(d / "store"))
    apply_overrides(project.pipeline, list(sets))
    return project


def _weights(project, name):
    from safetensors.torch import load

    raw = load(project.store.backend.read_bytes(f"{project[name].key}/model.safetensors"))
    return torch.cat([raw[k].flatten().double() for k in sorted(raw)])


def _assert_same_training(a, b, rtol=1e-5):
    for name in NODES:
        wa, wb = _weights(a, name), _weights(b, name)
        err = float((wa - wb).norm() / wa.norm())
        assert err <= rtol, f"{name}: weights differ by {err:.2e} relative"
        np.testing.assert_allclose(_curve(b, name), _curve(a, name), rtol=rtol, err_msg=name)


@pytest.fixture(scope="module")
def unsplit(tmp_path_factory):
    project = _project(tmp_path_factory.mktemp("unsplit"))
    project.run()
    return project


def test_micro_batches_train_the_unsplit_weights(tmp_path, unsplit):
    # one row per forward: every row's distractors, noise and loss shares computed apart
    project = _project(tmp_path, [f"{n}.max_batch_seconds=1" for n in NODES])
    project.run()
    _assert_same_training(unsplit, project)


def test_two_gloo_ranks_train_the_unsplit_weights(tmp_path, unsplit):
    # ranks alone for three objectives, ranks × micro-batches for the two with batch statistics
    d = tmp_path
    _project(d)
    sets = [f"--set={n}.max_batch_seconds=1" for n in ("w2v2", "vqk")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "ssl_graph", "--store", str(d / "store"), "run", str(d / "p.py"), "-q", *sets]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-4000:]
    _assert_same_training(unsplit, Project(d / "p.py", str(d / "store")))


def test_cross_sample_distractors_make_the_split_semantic(tmp_path):
    make_corpus(tmp_path, 2)
    (tmp_path / "p.py").write_text(SPEC + (
        "loss = w2v2.model.losses[0].with_(cross_sample_negatives=10)\n"
        "cross = w2v2.with_(model=w2v2.model.with_(losses=(loss, *w2v2.model.losses[1:])))\n"))
    project = Project(tmp_path / "p.py", str(tmp_path / "store"))
    cross, plain = project.pipeline.node("cross"), project.pipeline.node("w2v2")
    assert cross.with_(max_batch_seconds=1.0).fingerprint != cross.fingerprint
    assert plain.with_(max_batch_seconds=1.0).fingerprint == plain.fingerprint
    apply_overrides(project.pipeline, ["w2v2.max_batch_seconds=1"])
    with pytest.raises(SpecError, match=r"--set cross: max_batch_seconds changes what"):
        apply_overrides(project.pipeline, ["cross.max_batch_seconds=1"])


def test_only_models_whose_draws_changed_have_a_new_op_version(tmp_path):
    """Models trained before per-row draws restale (op version 2) unless every run of theirs
    computes what it did: HuBERT's trained models stay valid, unless it masks channels."""
    project = _project(tmp_path)
    versions = {n: project.pipeline.node(n).op_version for n in NODES}
    assert versions == {"w2v": 2, "vq": 2, "vqk": 2, "w2v2": 2, "hb": 1}
    hb = project.pipeline.node("hb")
    assert hb.fingerprint_payload()["op_version"] == 1
    chans = hb.with_(model=hb.model.with_(mask=hb.model.mask.with_(channel_prob=0.1)))
    assert chans.op_version == 2
