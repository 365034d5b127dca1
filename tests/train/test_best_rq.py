"""BEST-RQ and the mixed wav2vec 2.0 + random-projection model train on demo audio: the loss
falls, a split step (micro-batches of one row, 2 gloo ranks) trains the unsplit weights (the noise
of masked frames and the targets are per row), downstream nodes read it, and a run killed with SIGKILL resumes to the uninterrupted
run's curve and weights (the projections and codebooks are in the checkpoint)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ssl_graph.api import Project  # noqa: E402
from ssl_graph.exec.overrides import apply_overrides  # noqa: E402
from ssl_graph.store.train_log import read_log  # noqa: E402

from ..conftest import make_corpus  # noqa: E402

SPEC = '''
from ssl_graph import Corpus, KMeans, Labels, LayerFeatures
from ssl_graph.presets import best_rq, finetune, wav2vec2
from ssl_graph.specs.finetune import ASRScore, SpanMask, Split
from ssl_graph.specs.components import (FeaturePenalty, MaskedPrediction, NoQuantizer,
                                        RandomProjectionTargets)

corpus = Corpus(root="wav", transcripts="transcripts.tsv")


def no_dropout(node):
    m = node.model
    ctx = m.context.with_(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                          layerdrop=0.0)
    return node.with_(model=m.with_(context=ctx, dropout_input=0.0, dropout_features=0.0,
                                    dropout_context=0.0))


def random_projection(node):  # specs/mixed.py's w2v2_random_projection
    return node.with_(model=node.model.with_(
        quantizer=NoQuantizer(), final_dim=0,
        target=RandomProjectionTargets(stack=2, codebook_size=512, codebook_dim=16),
        losses=(MaskedPrediction(logits="linear"), FeaturePenalty(weight=10.0))))


small = dict(size="tiny", steps={steps}, batch_seconds=4.0, crop_seconds=1.0, min_seconds=1.0,
             checkpoint_every={every})
br = no_dropout(best_rq(corpus, **small))
rp = no_dropout(random_projection(wav2vec2(corpus, **small)))
grouped = dict(small, batch_seconds=17.0, group_seconds=8.5, crop_seconds=2.8)
br_g = no_dropout(best_rq(corpus, **grouped))
rp_g = no_dropout(random_projection(wav2vec2(corpus, **grouped)))

# downstream of a BEST-RQ model: layer features → units, CTC fine-tuning (with noise masks) → WER
units = Labels(kmeans=KMeans(features=LayerFeatures(model=br, layer=1), k=8, max_iter=5))
ft = finetune(br, size="tiny", split=Split(labeled_minutes=0.5, test_fraction=0.25), steps=4,
              batch_seconds=4.0, freeze_steps=1,
              mask=SpanMask(prob=0.5, length=2, replace="noise", channel_prob=0.0))
score = ASRScore(model=ft)
'''
NODES = ("br", "rp", "br_g", "rp_g")


def _project(d, steps=3, every=100, sets=(), n=8):
    make_corpus(d, n)
    (d / "p.py").write_text(SPEC.format(steps=steps, every=every))
    project = Project(d / "p.py", str(d / "store"))
    apply_overrides(project.pipeline, list(sets))
    return project


def _curve(project, name):
    return [r["loss"] for r in read_log(project.store.backend, project[name].key)]


def _weights(project, name):
    from safetensors.torch import load

    raw = load(project.store.backend.read_bytes(f"{project[name].key}/model.safetensors"))
    return {k: raw[k] for k in sorted(raw)}


def _flat(weights):
    return torch.cat([v.flatten().double() for v in weights.values()])


@pytest.fixture(scope="module")
def unsplit(tmp_path_factory):
    project = _project(tmp_path_factory.mktemp("unsplit"))
    project.run(list(NODES))
    return project


def test_micro_batches_train_the_unsplit_weights(tmp_path, unsplit):
    project = _project(tmp_path, sets=[f"{n}.max_batch_seconds=1" for n in NODES])
    project.run(list(NODES))
    for name in NODES:
        wa, wb = _flat(_weights(unsplit, name)), _flat(_weights(project, name))
        err = float((wa - wb).norm() / wa.norm())
        assert err <= 1e-5, f"{name}: weights differ by {err:.2e} relative"
        np.testing.assert_allclose(_curve(project, name), _curve(unsplit, name), rtol=1e-5,
                                   err_msg=name)


def test_two_gloo_ranks_train_the_unsplit_weights(tmp_path, unsplit):
    d = tmp_path
    _project(d)
    sets = [f"--set={n}.max_batch_seconds=1" for n in ("br_g", "rp")]  # ranks × micro-batches
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "ssl_graph", "--store", str(d / "store"), "run", str(d / "p.py"), *NODES, "-q",
           *sets]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-4000:]
    ranks = Project(d / "p.py", str(d / "store"))
    for name in NODES:
        wa, wb = _flat(_weights(unsplit, name)), _flat(_weights(ranks, name))
        err = float((wa - wb).norm() / wa.norm())
        assert err <= 1e-5, f"{name}: weights differ by {err:.2e} relative"


def test_the_frozen_quantizer_is_saved_and_untouched_by_training(unsplit):
    from ssl_graph.nn import build_model

    for name in ("br", "rp"):
        saved = _weights(unsplit, name)
        fresh = build_model(unsplit.pipeline.node(name).model).state_dict()
        for key in ("target_sources.0.projections", "target_sources.0.codebooks"):
            torch.testing.assert_close(saved[key], fresh[key], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["br", "rp"])
def test_loss_falls_and_a_kill_9_resumes_to_the_uninterrupted_run(tmp_path, name):
    ref = _project(tmp_path / "ref", steps=40, every=5, n=12)
    ref.run([name])
    full = _curve(ref, name)
    assert len(full) == 40 and np.isfinite(full).all()
    assert np.mean(full[-5:]) < np.mean(full[:5]), full

    d = tmp_path / "killed"
    _project(d, steps=40, every=5, n=12)
    env = {**os.environ, "SSL_GRAPH_STORE": str(d / "store")}
    cmd = [sys.executable, "-m", "ssl_graph", "run", str(d / "p.py"), name, "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = d / "store" / Project(d / "p.py", str(d / "store"))[name].key / "zarr.json"
    step, deadline = 0, time.time() + 300
    while step < 10 and time.time() < deadline and proc.poll() is None:
        if meta.exists():
            step = json.loads(meta.read_text())["attributes"].get("ssl_graph", {}).get("step", 0)
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 10 <= step < 40, f"training did not reach a checkpoint before the kill (step {step})"
    plan = Project(d / "p.py", str(d / "store")).plan()
    assert plan[name].stale and plan[name].reasons[0].startswith("incomplete at step")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    resumed = Project(d / "p.py", str(d / "store"))
    assert _curve(resumed, name) == full
    a, b = _weights(ref, name), _weights(resumed, name)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_layer_features_units_finetuning_and_scores_read_a_best_rq_model(unsplit):
    unsplit.run(["units", "score"])
    assert unsplit["units"].record["status"] == "complete"
    rows = read_log(unsplit.store.backend, unsplit["ft"].key)
    assert len(rows) == 4 and np.isfinite([r["loss"] for r in rows]).all()
    assert unsplit["score"].record["metrics"]["wer"] >= 0.0
