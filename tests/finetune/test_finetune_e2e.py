"""Pretrain → FineTune → ASRScore through ``Project`` on 12 demo utterances (tiny, few steps)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.specs.base import SpecError
from ssl_graph.store.backend import read_json
from ssl_graph.store.train_log import read_log

from ..conftest import make_corpus
from ..interrupts import ctrl_c_at_step

SPEC = '''
from ssl_graph import Corpus
from ssl_graph.presets import finetune, finetune_from_scratch, wav2vec2
from ssl_graph.specs.finetune import ASRScore, Split

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
pre = wav2vec2(corpus, size="tiny", steps=10, batch_seconds=2.0, crop_seconds=1.0,
               checkpoint_every=5)
short = dict(size="tiny", split=Split(labeled_minutes={minutes}, test_fraction=0.25),
             steps=20, batch_seconds=4.0, checkpoint_every=10)
ft = finetune(pre, freeze_steps=5, **short)
score = ASRScore(model=ft)
scratch = finetune_from_scratch(pre.model, corpus, **short)
scratch_score = ASRScore(model=scratch)
head_only = ft.with_(steps=2, freeze_steps=1000)
resumable = ft.with_(steps=4, freeze_steps=1, checkpoint_every=2)
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("finetune")
    make_corpus(d, 12)
    (d / "p.py").write_text(SPEC.format(minutes=0.5))
    project = Project(d / "p.py", str(d / "store"))
    project.run(["score", "scratch_score", "head_only"])
    return project


def curve(project, name):
    return [r["loss"] for r in read_log(project.store.backend, project[name].key)]


@pytest.mark.parametrize("name", ["ft", "scratch"])
def test_ctc_loss_falls(trained, name):
    losses = np.array(curve(trained, name))
    assert len(losses) == 20 and np.isfinite(losses).all()
    assert losses[-5:].mean() < losses[:5].mean(), losses
    rec = trained[name].record
    assert rec["units"] == "char" and len(rec["vocab"]) == 29
    assert 0 < rec["labeled_seconds"] <= 30.0 and rec["n_labeled"] >= 1


def test_log_as_a_data_frame(trained):
    frame = trained["ft"].log(as_frame=True)
    assert frame["loss"].tolist() == curve(trained, "ft") and len(frame) == 20


@pytest.mark.parametrize("name", ["score", "scratch_score"])
def test_scores_and_hypotheses_for_every_test_utterance(trained, name):
    rec = trained[name].record
    assert set(rec["metrics"]) == {"cer", "wer"}
    assert 0.0 <= rec["metrics"]["cer"] <= 1.5
    hyps = read_json(trained.store.backend, f"{trained[name].key}/hypotheses.json")
    ft_name = {"score": "ft", "scratch_score": "scratch"}[name]
    split = read_json(trained.store.backend, f"{trained[ft_name].key}/split.json")
    assert sorted(hyps) == split["test"] and rec["n_test_utts"] == len(split["test"]) > 0
    assert not set(split["test"]) & set(split["labeled"])
    assert all({"ref", "hyp", "cer", "wer"} <= set(h) for h in hyps.values())


def test_head_only_while_frozen(trained):
    from safetensors.torch import load

    backend = trained.store.backend
    pre = load(backend.read_bytes(f"{trained['pre'].key}/model.safetensors"))
    ft = load(backend.read_bytes(f"{trained['head_only'].key}/model.safetensors"))
    backbone = {k[len("net."):]: v for k, v in ft.items() if k.startswith("net.")}
    assert backbone and set(backbone) <= set(pre)
    assert all(np.array_equal(v.numpy(), pre[k].numpy()) for k, v in backbone.items())
    # the unfrozen fine-tune kept the conv encoder (feature_grad_mult=0) but moved the context
    full = load(backend.read_bytes(f"{trained['ft'].key}/model.safetensors"))
    enc = [k for k in full if k.startswith("net.encoder.")]
    ctx = [k for k in full if k.startswith("net.context.layers.")]
    assert all(np.array_equal(full[k].numpy(), pre[k[4:]].numpy()) for k in enc)
    assert not all(np.array_equal(full[k].numpy(), pre[k[4:]].numpy()) for k in ctx)


def test_budget_change_keeps_pretrain_fresh(trained):
    d = trained.spec_path.parent
    (d / "q.py").write_text(SPEC.format(minutes=0.25))
    plan = Project(d / "q.py", trained.store).plan()
    assert not plan["pre"].stale
    assert plan["ft"].stale and plan["score"].stale and plan["scratch"].stale
    same = Project(trained.spec_path, trained.store).plan()
    assert not any(same[n].stale for n in ("pre", "ft", "score", "scratch", "scratch_score"))


def test_resume_after_a_crash_repeats_the_curve(trained, tmp_path, monkeypatch):
    from ssl_graph.train import utterances

    src = trained.spec_path.parent
    shutil.copytree(src / "store", tmp_path / "store")  # holds the trained `pre`
    shutil.copytree(src / "wav", tmp_path / "wav")
    for f in ("transcripts.tsv", "alignments.tsv", "p.py"):
        shutil.copy2(src / f, tmp_path / f)
    straight = Project(trained.spec_path, trained.store)
    straight.run(["resumable"])
    crashed = Project(tmp_path / "p.py", str(tmp_path / "store"))
    with ctrl_c_at_step(monkeypatch, utterances.UtteranceBatcher, 3):
        crashed.run(["resumable"])
    again = Project(tmp_path / "p.py", str(tmp_path / "store"))
    assert again.plan()["resumable"].reasons == ["incomplete at step 2/4 (interrupted run)"]
    again.run(["resumable"])
    assert curve(again, "resumable") == curve(straight, "resumable")


SPEC_ERRORS = '''
from ssl_graph import Corpus
from ssl_graph.presets import finetune, wav2vec2
from ssl_graph.specs.finetune import ASRScore

corpus = Corpus(root="wav"{annotations})
ft = finetune(wav2vec2(corpus, size="tiny"), units="{units}", size="tiny")
score = ASRScore(model=ft{metrics})
'''


@pytest.mark.parametrize("annotations, units, metrics, message", [
    ("", "char", "", "ft: units='char' needs transcripts but corpus corpus has none"),
    (", transcripts='transcripts.tsv'", "phone", "", "ft: units='phone' needs phone alignments"),
    (", alignments='alignments.tsv'", "phone", ", metrics=('wer',)",
     r"score: metric\(s\) \['wer'\] do not apply to 'phone' units of ft"),
])
def test_plan_time_errors_are_one_line(tmp_path, annotations, units, metrics, message):
    make_corpus(tmp_path, 2)
    (tmp_path / "e.py").write_text(SPEC_ERRORS.format(annotations=annotations, units=units,
                                                      metrics=metrics))
    with pytest.raises(SpecError, match=message) as err:
        Project(tmp_path / "e.py", str(tmp_path / "store")).plan()
    assert "\n" not in str(err.value)
