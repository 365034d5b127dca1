"""Pretrain(valid=...): held-out loss/accuracy every ``valid_every`` steps, in the log, the
record and the plain progress lines; the held-out utterances never train; evaluation changes
no weight (so ``valid_every`` is runtime); a crash keeps the valid history."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.specs.base import SpecError
from ssl_graph.store.train_log import read_log

from ..conftest import make_corpus
from ..interrupts import ctrl_c_at_step

SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import hubert, wav2vec2

corpus = Corpus(root="wav")
other = Corpus(root="other")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))
short = dict(steps=12, batch_seconds=4.0, crop_seconds=1.0, checkpoint_every=4)
hb = hubert(corpus, targets=labels, size="tiny", valid=0.25, valid_every={every}, **short)
w2v2 = wav2vec2(corpus, size="tiny", valid=other, valid_every=5, **short)
'''


def _dir(d, every=4):
    make_corpus(d, 12)
    make_corpus(d / "o", 3)
    (d / "o" / "wav").rename(d / "other")
    (d / "p.py").write_text(SPEC.format(every=every))
    return d


def _rows(project, name="hb"):
    return read_log(project.store.backend, project[name].key)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = _dir(tmp_path_factory.mktemp("valid"))
    project = Project(d / "p.py", str(d / "store"))
    project.run(["hb", "w2v2"])
    return project


def test_valid_loss_and_accuracy_at_every_valid_step_and_the_last(trained):
    rows = _rows(trained)
    evals = [r for r in rows if "valid_loss" in r]
    assert [r["step"] for r in evals] == [4, 8, 12]
    assert [r["step"] for r in rows] == list(range(1, 13))  # log_every=1: no extra row
    for r in evals:
        assert np.isfinite(r["valid_loss"]) and r["valid_loss"] > 0
        assert 0.0 <= r["valid_accuracy"] <= 1.0
    assert len({r["valid_loss"] for r in evals}) == 3  # the weights moved, so did the loss
    m = trained["hb"].record["metrics"]
    assert m["valid_loss"] == evals[-1]["valid_loss"]
    assert m["valid_accuracy"] == evals[-1]["valid_accuracy"]
    assert trained.pipeline.node("hb").fingerprint  # handle.log() shows the same rows
    assert [r.get("valid_loss") for r in trained["hb"].log()] == [r.get("valid_loss") for r in rows]


def test_another_corpus_as_valid_set(trained):
    evals = [r for r in _rows(trained, "w2v2") if "valid_loss" in r]
    assert [r["step"] for r in evals] == [5, 10, 12]
    assert all(np.isfinite(r["valid_loss"]) for r in evals)
    assert {"valid_loss", "valid_accuracy"} <= set(trained["w2v2"].record["metrics"])
    assert trained["w2v2"].record["valid_utterances"] == 3


def test_held_out_utterances_never_train(trained):
    from ssl_graph.train.loop import _sampler
    from ssl_graph.train.split import valid_holdout

    lengths = trained.store.index(trained["corpus"].key)
    held = valid_holdout(lengths, 0.25, 0)
    assert 0 < len(held) < len(lengths)
    assert trained["hb"].record["valid_utterances"] == len(held)
    # stable under growth: more utterances never move an existing one across
    bigger = {**{u: 1 for u in lengths}, **{f"new-{i}": 1 for i in range(50)}}
    assert valid_holdout(bigger, 0.25, 0) & set(lengths) == held
    assert valid_holdout(lengths, 0.25, 1) != held  # valid_seed draws another set

    from ssl_graph.ops.base import RunContext

    states = trained.plan()
    ctx = RunContext(trained.store, {s.node.fingerprint: s for s in states.values()})
    sampler, valid = _sampler(states["hb"], ctx)
    assert set(sampler.utts).isdisjoint(held) and set(sampler.utts) | held == set(lengths)
    assert sorted(u for b in valid for u in b.utts) == sorted(held)
    trained_on = {u for step in range(12) for u in sampler.batch(step).utts}
    assert trained_on and trained_on.isdisjoint(held)


def test_fingerprint_follows_valid_not_valid_every(trained):
    hb = trained.pipeline.node("hb")
    assert hb.with_(valid_every=7).fingerprint == hb.fingerprint
    assert hb.with_(valid=0.3).fingerprint != hb.fingerprint
    assert hb.with_(valid_seed=1).fingerprint != hb.fingerprint
    plain = hb.with_(valid=None)
    assert "valid" not in plain.semantic() and "valid_seed" not in plain.semantic()
    assert plain.with_(valid_seed=3).fingerprint == plain.fingerprint  # no fraction to draw


def test_valid_every_changes_no_weight(tmp_path, trained):
    """Evaluating at other steps leaves the training untouched: same loss curve, same bytes."""
    d = _dir(tmp_path, every=3)
    other = Project(d / "p.py", str(d / "store"))
    assert other.pipeline.node("hb").fingerprint == trained.pipeline.node("hb").fingerprint
    other.run(["hb"])
    assert [r["loss"] for r in _rows(other)] == [r["loss"] for r in _rows(trained)]
    assert [r["step"] for r in _rows(other) if "valid_loss" in r] == [3, 6, 9, 12]
    a = other.store.backend.read_bytes(f"{other['hb'].key}/model.safetensors")
    b = trained.store.backend.read_bytes(f"{trained['hb'].key}/model.safetensors")
    assert a == b
    # the same weights give the same valid numbers: the last evaluation matches exactly
    assert _rows(other)[-1]["valid_loss"] == _rows(trained)[-1]["valid_loss"]


def test_crash_then_resume_keeps_valid_history(tmp_path, trained, monkeypatch):
    from ssl_graph.train import data

    d = _dir(tmp_path)
    with ctrl_c_at_step(monkeypatch, data.CropSampler, 9):
        Project(d / "p.py", str(d / "store")).run(["hb"])
    again = Project(d / "p.py", str(d / "store"))
    assert again.plan()["hb"].reasons == ["incomplete at step 8/12 (interrupted run)"]
    again.run(["hb"])
    assert _rows(again) == [{**r, "audio_s_per_s": _rows(again)[i]["audio_s_per_s"]}
                            for i, r in enumerate(_rows(trained))]


def test_plain_lines_show_validation(tmp_path, trained):
    import subprocess
    import sys

    d = _dir(tmp_path)
    (d / "p.py").write_text(SPEC.format(every=6).replace("steps=12", "steps=6"))
    res = subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(d / "store"), "run",
                          str(d / "p.py"), "hb"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    line = next(ln for ln in res.stdout.splitlines() if "valid loss" in ln)
    assert line.startswith("hb: step 6/6 | valid loss ") and "valid acc " in line


@pytest.mark.parametrize("valid, message", [
    ("1.5", "Pretrain.valid=1.5 must be a fraction in (0, 1)"),
    ("other_hb", "valid=other has no cluster labels"),
])
def test_bad_valid_is_one_line(tmp_path, valid, message):
    d = _dir(tmp_path)
    spec = SPEC.format(every=4).replace("valid=0.25", f"valid={valid.replace('_hb', '')}")
    (d / "p.py").write_text(spec)
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Project(d / "p.py", str(d / "store")).plan()


def test_report_draws_valid_beside_train(trained, tmp_path):
    from ssl_graph.report import build_report, valid_series, write_report

    rows = _rows(trained)
    series = valid_series(rows)
    assert [(r["step"], r["loss"], r["accuracy"]) for r in series] == [
        (r["step"], r["valid_loss"], r["valid_accuracy"]) for r in rows if "valid_loss" in r]
    table = {r["node"]: r for r in build_report(trained).rows}
    assert table["hb"]["valid"] == trained["hb"].record["metrics"]["valid_loss"]
    rep = write_report(trained, tmp_path / "report")
    assert ("training curves", "curves.png") in rep.images
    assert (tmp_path / "report" / "curves.png").stat().st_size > 10_000


def test_a_fraction_holding_out_nothing_is_one_clear_error(tmp_path):
    d = _dir(tmp_path)
    (d / "p.py").write_text(SPEC.format(every=4).replace("valid=0.25", "valid=0.001"))
    p = Project(d / "p.py", str(d / "store"))
    with pytest.raises(Exception, match=r"hb: valid=0.001 holds out 0 of 12 utterances, none at "
                                        r"least min_seconds=1 long; raise valid"):
        p.run(["hb"])
    assert p.store.record(p["labels"].key)["status"] == "complete"  # upstream work is kept


def test_tensorboard_gets_valid_scalars(trained):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trained.store.backend.root / trained["hb"].key / "tensorboard"))
    acc.Reload()
    got = {e.step: e.value for e in acc.Scalars("valid/loss")}
    want = {r["step"]: r["valid_loss"] for r in _rows(trained) if "valid_loss" in r}
    assert got.keys() == want.keys() and np.allclose(list(got.values()), list(want.values()))
    assert "valid/accuracy" in acc.Tags()["scalars"] and "train/valid_loss" not in acc.Tags()["scalars"]


def test_ctrl_c_after_a_validation_then_resume_keeps_its_history(tmp_path, trained):
    """SIGINT (Ctrl-C) in a real run right after the step-4 validation: the step checkpoints,
    the rerun resumes there, and the log equals the uninterrupted one, valid rows included."""
    import signal
    import subprocess
    import sys

    d = _dir(tmp_path)
    cmd = [sys.executable, "-m", "ssl_graph", "--store", str(d / "store"), "run", str(d / "p.py"),
           "hb"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("hb: step 4/12 | valid loss"):
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=300)
    assert proc.returncode != 0  # stopped, not finished
    again = Project(d / "p.py", str(d / "store"))
    reason = again.plan()["hb"].reasons[0]
    assert reason.startswith("incomplete at step") and "/12" in reason, reason
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "hb: step 1/12" not in res.stdout  # resumed, not restarted
    got, want = _rows(Project(d / "p.py", str(d / "store"))), _rows(trained)
    drop = ("audio_s_per_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in got] == \
        [{k: v for k, v in r.items() if k not in drop} for r in want]
