"""Pretrain nodes: every preset trains with falling loss; resume reproduces the same curve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.store.train_log import read_log

from ..conftest import make_corpus
from ..interrupts import ctrl_c_at_step

SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import hubert, vq_wav2vec, wav2vec, wav2vec2
from ssl_graph.specs.components import (CodeTargets, Diversity, FeaturePenalty, GumbelQuantizer,
                                        MaskedPrediction)

corpus = Corpus(root="wav")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))
short = dict(steps={steps}, batch_seconds=4.0, crop_seconds=1.0, checkpoint_every={every},
             seed={seed})
w2v = wav2vec(corpus, size="tiny", **short)
vq = vq_wav2vec(corpus, size="tiny", **short)
vq_kmeans = vq_wav2vec(corpus, size="tiny", quantizer="kmeans", **short)
w2v2 = wav2vec2(corpus, size="tiny", **short)
hb = hubert(corpus, targets=labels, size="tiny", **short)
mixed = hb.with_(model=hb.model.with_(
    quantizer=GumbelQuantizer(groups=2, entries=32, dim=64), target=CodeTargets(),
    losses=(MaskedPrediction(), Diversity(weight=0.1), FeaturePenalty(weight=10.0))))
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train all six tiny variants once for the module (30 short steps each)."""
    d = tmp_path_factory.mktemp("pretrain")
    make_corpus(d, 12)
    (d / "p.py").write_text(SPEC.format(steps=30, every=10, seed=0))
    project = Project(d / "p.py", str(d / "store"))
    project.run()
    return project


def curve(project, name):
    return read_log(project.store.backend, project[name].key)


@pytest.mark.parametrize("name", ["w2v", "vq", "vq_kmeans", "w2v2", "hb", "mixed"])
def test_each_variant_trains_with_falling_loss(trained, name):
    rows = curve(trained, name)
    assert [r["step"] for r in rows] == list(range(1, 31))
    losses = np.array([r["loss"] for r in rows])
    assert np.isfinite(losses).all()
    assert losses[-5:].mean() < losses[:5].mean(), losses
    rec = trained[name].record
    assert rec["device"] == "cpu" and rec["metrics"]["train_seconds"] > 0
    assert trained.store.backend.exists(f"{trained[name].key}/model.safetensors")


def test_logged_metrics_per_objective(trained):
    assert {"accuracy", "prob_perplexity", "temperature", "audio_s_per_s"} <= set(curve(trained, "w2v2")[-1])
    assert {"code_perplexity", "loss_commitment"} <= set(curve(trained, "vq_kmeans")[-1])
    temps = [r["temperature"] for r in curve(trained, "w2v2")]
    assert temps[0] > temps[-1]  # Gumbel temperature anneals


def _spec_dir(tmp_path, steps, every, seed=0):
    make_corpus(tmp_path, 8)
    (tmp_path / "p.py").write_text(SPEC.format(steps=steps, every=every, seed=seed))
    return tmp_path


def test_same_seed_same_curve_and_resume_after_a_crash(tmp_path, monkeypatch):
    from ssl_graph.train import data

    a = _spec_dir(tmp_path / "a", steps=12, every=4)
    pa = Project(a / "p.py", str(a / "store"))
    pa.run(["hb"])
    full = [r["loss"] for r in curve(pa, "hb")]

    b = _spec_dir(tmp_path / "b", steps=12, every=4)
    pb = Project(b / "p.py", str(b / "store"))
    with ctrl_c_at_step(monkeypatch, data.CropSampler, 9):
        pb.run(["hb"])
    plan = Project(b / "p.py", str(b / "store")).plan()
    assert plan["hb"].reasons == ["incomplete at step 8/12 (interrupted run)"]
    pb2 = Project(b / "p.py", str(b / "store"))
    pb2.run(["hb"])
    assert [r["loss"] for r in curve(pb2, "hb")] == full


def test_kill_9_mid_training_then_resume(tmp_path):
    d = _spec_dir(tmp_path, steps=40, every=5)
    env = {**os.environ, "SSL_GRAPH_STORE": str(d / "store")}
    cmd = [sys.executable, "-m", "ssl_graph", "run", str(d / "p.py"), "hb", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    project = Project(d / "p.py", str(d / "store"))
    key = project["hb"].key
    meta = d / "store" / key / "zarr.json"
    step, deadline = 0, time.time() + 300
    while step < 10 and time.time() < deadline and proc.poll() is None:
        if meta.exists():
            step = json.loads(meta.read_text())["attributes"].get("ssl_graph", {}).get("step", 0)
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 10 <= step < 40, f"training did not reach a checkpoint before the kill (step {step})"
    plan = Project(d / "p.py", str(d / "store")).plan()
    assert plan["hb"].stale and plan["hb"].reasons[0].startswith("incomplete at step")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    resumed = Project(d / "p.py", str(d / "store"))
    rows = curve(resumed, "hb")
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert resumed["hb"].record["status"] == "complete"


def test_device_is_runtime_and_checkpoints_are_safetensors(trained):
    hb = trained.pipeline.node("hb")
    assert hb.with_(device="cuda", checkpoint_every=7).fingerprint == hb.fingerprint
    assert hb.with_(seed=1).fingerprint != hb.fingerprint
    raw = trained.store.backend.read_bytes(f"{trained['hb'].key}/model.safetensors")
    from safetensors.torch import load

    weights = load(raw)
    assert any("encoder" in k for k in weights) and all(v.dtype.is_floating_point for v in weights.values())


def test_gc_keeps_final_weights_and_drops_finished_checkpoints(trained):
    from ssl_graph.store.gc import collect

    key = trained["hb"].key
    assert trained.store.backend.listdir(f"{key}/ckpt")  # the step-20 checkpoint is still there
    removed = [k for k, _ in collect(trained.store, dry_run=True).removed]
    assert f"{key}/ckpt/step-00000020" in removed
    assert not any(k.endswith("model.safetensors") or k == key for k in removed)
