"""Same spec and seed → the same trained weights whether a step runs unsplit in one process, in
micro-batches (``max_batch_seconds``) or over 2 gloo ranks, for every objective: wav2vec,
vq-wav2vec (Gumbel and k-means), wav2vec 2.0, HuBERT, data2vec (its EMA teacher moves after each
update), WavLM (utterance mixing across the global batch) and HuBERT + a data2vec teacher (fp32,
dropout off); each with one crop
group a step (one forward unsplit) and with several groups of different widths a step (several
forwards even unsplit; ranks' blocks of rows cut through a group)."""

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

PRESETS = ("w2v", "vq", "vqk", "w2v2", "hb", "d2v", "wlm", "hbt")
NODES = PRESETS + tuple(f"{n}_g" for n in PRESETS)
# 3 updates of 4 one-second crops (one group), or of 2 groups of up to 3 crops of 2.8 s (the 8
# utterances are 2.7 to 5.3 s: 3 groups in the length order, widths 2.8, 2.8 and 2.67 s);
# dropout off: ranks and micro-batches draw their own dropout
SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import data2vec, hubert, vq_wav2vec, wav2vec, wav2vec2, wavlm
from ssl_graph.specs.components import FeaturePenalty, MaskedPrediction, Regression, TeacherTargets

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
d2v = no_dropout(data2vec(corpus, **small))
wlm = no_dropout(wavlm(corpus, targets=labels, **small))
teacher = TeacherTargets(ema_decay=0.9, top_k_layers=2, layer_output="block")
hbt = hb.with_(model=hb.model.with_(target=(hb.model.target, teacher),
                                    losses=(MaskedPrediction(), Regression(), FeaturePenalty())))

grouped = dict(small, batch_seconds=17.0, group_seconds=8.5, crop_seconds=2.8)
w2v_g = no_dropout(wav2vec(corpus, **grouped))
vq_g = no_dropout(vq_wav2vec(corpus, **grouped))
vqk_g = no_dropout(vq_wav2vec(corpus, quantizer="kmeans", **grouped))
w2v2_g = no_dropout(wav2vec2(corpus, **grouped))
hb_g = no_dropout(hubert(corpus, targets=labels, **grouped))
d2v_g = no_dropout(data2vec(corpus, **grouped))
wlm_g = no_dropout(wavlm(corpus, targets=labels, **grouped))
hbt_g = hb_g.with_(model=hbt.model)
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


def test_the_grouped_steps_hold_several_groups_that_ranks_cut_through(unsplit):
    """What the ``*_g`` nodes' steps hold: 2 groups of different widths, and a rank boundary
    inside a group (so a rank holds a piece of it), else the test would not test that."""
    import soundfile as sf

    from ssl_graph.train.batching import LengthPlan

    sr = 16000
    node = unsplit.pipeline.node("w2v2_g")
    wav = unsplit.spec_path.parent / "wav"
    lengths = {f.stem: sf.info(str(f)).frames for f in sorted(wav.glob("*.flac"))}
    plan = LengthPlan(lengths, group_budget=int(node.group_seconds * sr), groups_per_step=2,
                      seed=node.seed, max_samples=int(node.crop_seconds * sr),
                      min_samples=int(node.min_seconds * sr))
    steps = [plan.step(k) for k in range(node.steps)]
    assert any(len(s.groups) == 2 and len({g.width for g in s.groups}) == 2 for s in steps)
    assert any(len(pieces) == 2 and any(p.offset or len(p.utts) < p.rows for p in pieces)
               for s in steps for pieces in (s.share(0, 2)[0], s.share(1, 2)[0]))


def test_micro_batches_train_the_unsplit_weights(tmp_path, unsplit):
    # one row per forward: every row's distractors, noise and loss shares computed apart
    project = _project(tmp_path, [f"{n}.max_batch_seconds=1" for n in NODES])
    project.run()
    _assert_same_training(unsplit, project)


def test_two_gloo_ranks_train_the_unsplit_weights(tmp_path, unsplit):
    # ranks alone for three objectives, ranks × micro-batches for the two with batch statistics
    d = tmp_path
    _project(d)
    sets = [f"--set={n}.max_batch_seconds=1" for n in ("w2v2", "vqk", "w2v2_g", "vq_g", "d2v_g",
                                                       "wlm_g")]
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


def test_every_pretraining_has_op_version_2(tmp_path):
    """Length-sorted batches and per-row draws changed every pre-training's batches: models
    trained before (op version 1) retrain once, whatever their objective."""
    project = _project(tmp_path)
    for name in PRESETS:
        node = project.pipeline.node(name)
        assert node.op_version == 2 and node.fingerprint_payload()["op_version"] == 2, name
