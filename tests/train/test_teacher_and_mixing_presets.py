"""The presets after HuBERT on the demo audio: data2vec (EMA teacher), WavLM (relative position
bias + utterance mixing) and HuBERT + a data2vec teacher (two target sources) train a few
steps, and a run killed after a checkpoint resumes to the very weights — teacher included — and
loss curve of a run that never stopped."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from ssl_graph.api import Project  # noqa: E402
from ssl_graph.store.train_log import read_log  # noqa: E402

from ..conftest import make_corpus  # noqa: E402

SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import data2vec, hubert, wavlm
from ssl_graph.specs.components import FeaturePenalty, MaskedPrediction, Regression, TeacherTargets

corpus = Corpus(root="wav")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))
short = dict(size="tiny", steps=12, batch_seconds=4.0, crop_seconds=1.0, checkpoint_every=2)
d2v = data2vec(corpus, **short)
wlm = wavlm(corpus, targets=labels, **short)
hb = hubert(corpus, targets=labels, **short)
teacher = TeacherTargets(ema_decay=0.9, ema_end_decay=0.99, ema_anneal_end_step=10,
                         top_k_layers=2)
hbt = hb.with_(model=hb.model.with_(target=(hb.model.target, teacher),
                                    losses=(MaskedPrediction(), Regression(), FeaturePenalty())))
'''
NAMES = ("d2v", "wlm", "hbt")


def _project(d) -> Project:
    make_corpus(d, 8)
    (d / "p.py").write_text(SPEC)
    return Project(d / "p.py", str(d / "store"))


def _raw(project, name) -> bytes:
    return project.store.backend.read_bytes(f"{project[name].key}/model.safetensors")


def _weights(project, name) -> dict:
    from safetensors.torch import load

    return load(_raw(project, name))


def _losses(project, name) -> list[float]:
    return [r["loss"] for r in read_log(project.store.backend, project[name].key)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    project = _project(tmp_path_factory.mktemp("teacher"))
    project.run(list(NAMES))
    return project


def test_each_trains_and_logs_its_objective(trained):
    for name in NAMES:
        rows = read_log(trained.store.backend, trained[name].key)
        assert [r["step"] for r in rows] == list(range(1, 13)), name
        assert all(math.isfinite(r["loss"]) for r in rows), name
    d2v = read_log(trained.store.backend, trained["d2v"].key)
    decay = [r["ema_decay"] for r in d2v]  # τ anneals 0.99 → 0.999 over the tiny run
    assert decay[0] == pytest.approx(0.99, abs=1e-4) and decay == sorted(decay)
    assert all("loss_regression" in r and r["target_std"] > 0 for r in d2v)
    hbt = read_log(trained.store.backend, trained["hbt"].key)
    assert all("loss_regression" in r and "loss_masked" in r for r in hbt)
    assert all("accuracy" in r for r in read_log(trained.store.backend, trained["wlm"].key))


def test_the_teacher_is_in_the_weights_and_trails_the_student(trained):
    w = _weights(trained, "d2v")
    teacher = {k.split("teacher.", 1)[1]: v for k, v in w.items() if ".teacher." in k}
    student = {k[len("context."):]: v for k, v in w.items() if k.startswith("context.")}
    assert teacher and teacher.keys() == student.keys()
    layers = [k for k in student if k.startswith("layers.")]
    # averaged layers differ from the student's (τ < 1), the positional conv is copied
    assert all(not torch.equal(teacher[k], student[k]) for k in layers if k.endswith("weight"))
    assert all(torch.equal(teacher[k], student[k]) for k in student if k.startswith("pos_conv."))


def test_sigkill_after_a_checkpoint_resumes_to_the_same_teacher_and_weights(trained, tmp_path):
    project = _project(tmp_path)
    env = {**os.environ, "SSL_GRAPH_STORE": str(tmp_path / "store")}
    cmd = [sys.executable, "-m", "ssl_graph", "run", str(tmp_path / "p.py"), "d2v",
           "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = tmp_path / "store" / project["d2v"].key / "zarr.json"
    step, deadline = 0, time.time() + 300
    while step < 4 and time.time() < deadline and proc.poll() is None:
        if meta.exists():
            step = json.loads(meta.read_text())["attributes"].get("ssl_graph", {}).get("step", 0)
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 4 <= step < 12, f"no checkpoint before the kill (step {step})"
    resumed = Project(tmp_path / "p.py", str(tmp_path / "store"))
    assert resumed.plan()["d2v"].reasons[0].startswith("incomplete at step")
    resumed.run(["d2v"])
    assert _raw(resumed, "d2v") == _raw(trained, "d2v")
    assert _losses(resumed, "d2v") == _losses(trained, "d2v")


@pytest.mark.parametrize("name", ["wlm", "hbt"])
def test_a_crash_after_a_checkpoint_resumes_to_the_same_weights(trained, tmp_path, monkeypatch,
                                                                name):
    from ssl_graph.train import data

    project = _project(tmp_path)
    real = data.CropSampler.batch

    def crash(self, step, *args, **kwargs):  # dies after the step-4 checkpoint, no clean stop
        if step == 5:
            raise RuntimeError("simulated crash")
        return real(self, step, *args, **kwargs)

    monkeypatch.setattr(data.CropSampler, "batch", crash)
    with pytest.raises(Exception, match="simulated crash"):
        project.run([name])
    monkeypatch.setattr(data.CropSampler, "batch", real)
    resumed = Project(tmp_path / "p.py", str(tmp_path / "store"))
    assert resumed.plan()[name].reasons == ["incomplete at step 4/12 (interrupted run)"]
    resumed.run([name])
    assert _raw(resumed, name) == _raw(trained, name)
    assert _losses(resumed, name) == _losses(trained, name)


def test_compare_puts_a_tiny_wavlm_beside_a_tiny_hubert(trained):
    """`compare p.py:wlm p.py:hb`: the two objectives side by side, the shared inputs named."""
    from click.testing import CliRunner

    from ssl_graph.cli import main

    trained.run(["hb"])
    spec = trained.spec_path
    res = CliRunner().invoke(main, ["--store", str(trained.store.backend.root), "compare",
                                    f"{spec}:wlm", f"{spec}:hb"], terminal_width=250)
    assert res.exit_code == 0, res.output
    from ssl_graph.compare import compare

    row = compare(trained, trained, ["wlm"], ["hb"])[0]
    assert row.status == "differs" and row.kind == "Pretrain"
    changed = " ".join(row.changes)
    assert "model.augmentation" in changed and "model.context.relative_position" in changed
    assert "".join(res.output.split()).count("model.") >= 2, res.output  # wrapped, not cut
    for side, name in ((row.a, "wlm"), (row.b, "hb")):  # each side's own metrics, printed
        assert side == trained[name].metrics or set(side) <= set(trained[name].metrics)
        assert math.isfinite(side["loss"]) and f"{side['loss']:.3f}" in res.output, res.output
    assert row.a["loss"] != row.b["loss"]
