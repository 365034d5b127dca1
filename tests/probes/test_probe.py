"""Probe nodes (SUPERB): PR, SID and frame phone classification over MFCC and over a tiny
trained model, on 24 demo utterances (8 voices); few steps, CPU, deterministic, resumable."""

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
from ssl_graph import MFCC, Corpus, LayerSweep, PretrainedModel, Probe
from ssl_graph.presets import finetune, wav2vec2

corpus = Corpus(root="wav", alignments="alignments.tsv", speakers="speakers.tsv")
mfcc = MFCC(corpus=corpus)
pre = wav2vec2(corpus, size="tiny", steps=4, batch_seconds=2.0, crop_seconds=1.0)
sweep = LayerSweep(model=pre, layers=(0, 1, 2))  # declared by the user: the probes share it
pr_mfcc = Probe(upstream=mfcc, task="pr", steps=30)
sid_mfcc = Probe(upstream=mfcc, task="sid", steps=30)
pr_pre = Probe(upstream=pre, task="pr", steps=30)
sid_pre = Probe(upstream=pre, task="sid", steps=30)
pc_pre = Probe(upstream=pre, task="pc", steps=30)
sid_top = Probe(upstream=pre, task="sid", steps=30, layers=(1, 2), head="mlp", hidden=16)
resumable = Probe(upstream=pre, task="sid", steps=12, checkpoint_every=4)
ft = finetune(pre, units="phone", labeled_minutes=0.5, size="tiny", steps=3, freeze_steps=0,
              batch_seconds=4.0)
pr_ft = Probe(upstream=ft, task="pr", steps=30)  # the fine-tuned backbone, without its head
released = PretrainedModel(path="released")  # a transformers checkpoint (random, 3 layers)
sid_released = Probe(upstream=released, corpus=corpus, task="sid", steps=30)
'''
PROBES = ("pr_mfcc", "sid_mfcc", "pr_pre", "sid_pre", "pc_pre", "sid_top", "pr_ft",
          "sid_released")


def write_project(d, spec: str = SPEC) -> None:
    import torch
    import transformers

    make_corpus(d, 24)  # with speakers.tsv: the voice of each utterance
    torch.manual_seed(0)
    cfg = transformers.HubertConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    transformers.HubertModel(cfg).save_pretrained(d / "released")
    (d / "p.py").write_text(spec)


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    write_project(d)
    project = Project(d / "p.py", str(d / "store"))
    project.run(list(PROBES))
    return project


def curve(project, name):
    return [r["loss"] for r in read_log(project.store.backend, project[name].key)]


@pytest.mark.parametrize("name", PROBES)
def test_metrics_in_the_record(probed, name):
    rec = probed[name].record
    task = rec["task"]
    metric = {"pr": "per", "sid": "accuracy", "pc": "accuracy"}[task]
    value = rec["metrics"][metric]
    assert np.isfinite(value) and value >= 0.0 and (task == "pr" or value <= 1.0)
    assert rec["n_train"] > 0 and rec["n_test"] > 0
    losses = curve(probed, name)
    assert len(losses) == 30 and np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses
    outputs = read_json(probed.store.backend, f"{probed[name].key}/test_outputs.json")
    assert len(outputs) == rec["n_test"]
    if task == "pc":  # one accuracy per layer, the best one is the headline
        assert len(rec["layer_accuracy"]) == 3 == len(rec["layers"])
        assert rec["metrics"]["accuracy"] == max(rec["layer_accuracy"])
    else:  # a softmax over the probed layers, stored
        w = np.array(rec["layer_weights"])
        assert len(w) == len(rec["layers"]) and np.isclose(w.sum(), 1.0) and (w > 0).all()


def test_layers_and_vocabularies(probed):
    assert probed["pr_mfcc"].record["layers"] == [0]
    assert probed["pr_pre"].record["layers"] == [0, 1, 2]
    assert probed["sid_top"].record["layers"] == [1, 2]
    assert probed["sid_released"].record["layers"] == [0, 1, 2, 3]
    # the PR vocabulary is the folded phones without silences, blank first
    vocab = probed["pr_pre"].record["classes"]
    assert vocab[0] == "<blank>" and "sil" not in vocab and len(vocab) > 10
    # SID: every test utterance's speaker is a training speaker (stratified split)
    speakers = probed["sid_pre"].record["classes"]
    tsv = (probed.spec_path.parent / "speakers.tsv").read_text().split()
    assert speakers == sorted(set(tsv[3::2])) and len(speakers) == 8  # after the header
    outputs = read_json(probed.store.backend, f"{probed['sid_pre'].key}/test_outputs.json")
    assert {o["ref"] for o in outputs.values()} <= set(speakers)
    # the weighted sum moved away from uniform: the layer weights learn
    assert len(set(np.round(probed["pr_pre"].record["layer_weights"], 6))) > 1


def test_one_sweep_one_forward(probed):
    """Every probe of the model reads the user's sweep: one node, one pass per utterance."""
    sweeps = [n for n in probed.pipeline.nodes.values() if n.kind == "LayerSweep"]
    assert len(sweeps) == 3 and probed["sweep"].node in sweeps  # pre's, ft's and released's
    assert probed["pr_pre"].node.features == probed["sweep"].node
    rec = probed["sweep"].record
    assert rec["utterances"] == 24 and rec["forward_passes"] >= 1
    updated = rec["updated"]
    # a new probe of the same model computes only itself: the sweep stays fresh, untouched
    d = probed.spec_path.parent
    (d / "more.py").write_text(SPEC + 'pr_long = Probe(upstream=pre, task="pr", steps=2)\n')
    more = Project(d / "more.py", probed.store)
    plan = more.plan()
    assert sorted(n for n, st in plan.items() if st.stale) == ["pr_long", "resumable"]
    more.run(["pr_long"])
    assert more["sweep"].record["updated"] == updated
    assert more["sweep"].record["forward_passes"] == rec["forward_passes"]


def test_finetuned_backbone_is_probed(probed):
    """pr_ft reads a sweep of the fine-tuned backbone: other frames than the pretrained one's."""
    ft_sweep = probed["pr_ft"].node.features
    assert ft_sweep.model == probed["ft"].node and ft_sweep.layers == (0, 1, 2)
    name = probed.pipeline.name_of(ft_sweep)
    utt = probed[name].utterances()[0]
    a, b = probed[name].features(utt), probed["sweep"].features(utt)
    assert a.shape == b.shape and not np.allclose(a[:, -128:], b[:, -128:])


def test_same_spec_twice_same_weights(probed, tmp_path):
    write_project(tmp_path)
    again = Project(tmp_path / "p.py", str(tmp_path / "store"))
    again.run(["pr_pre", "sid_mfcc"])
    for name in ("pr_pre", "sid_mfcc"):
        a, b = probed[name], again[name]
        assert a.key == b.key
        assert a.record["metrics"]["loss"] == b.record["metrics"]["loss"]
        assert {k: v for k, v in a.record["metrics"].items() if k != "train_seconds"} == \
            {k: v for k, v in b.record["metrics"].items() if k != "train_seconds"}
        raw = [p.store.backend.read_bytes(f"{p[name].key}/model.safetensors")
               for p in (probed, again)]
        assert raw[0] == raw[1]


def test_resume_after_an_interruption_repeats_the_run(probed, tmp_path, monkeypatch):
    from ssl_graph.train import probe

    src = probed.spec_path.parent
    shutil.copytree(src / "store", tmp_path / "store")  # holds `pre` and its sweep
    shutil.copytree(src / "wav", tmp_path / "wav")
    shutil.copytree(src / "released", tmp_path / "released")
    for f in ("alignments.tsv", "speakers.tsv", "p.py"):
        shutil.copy2(src / f, tmp_path / f)
    straight = Project(probed.spec_path, probed.store)
    straight.run(["resumable"])
    crashed = Project(tmp_path / "p.py", str(tmp_path / "store"))
    with ctrl_c_at_step(monkeypatch, probe.ProbeBatcher, 6):
        crashed.run(["resumable"])
    again = Project(tmp_path / "p.py", str(tmp_path / "store"))
    assert again.plan()["resumable"].reasons == ["incomplete at step 4/12 (interrupted run)"]
    again.run(["resumable"])
    assert curve(again, "resumable") == curve(straight, "resumable")
    weights = [p.store.backend.read_bytes(f"{p['resumable'].key}/model.safetensors")
               for p in (straight, again)]
    assert weights[0] == weights[1]
    assert again["resumable"].record["metrics"]["accuracy"] == \
        straight["resumable"].record["metrics"]["accuracy"]


BAD = '''
from ssl_graph import MFCC, Corpus, KMeans, Probe
corpus = Corpus(root="wav", alignments="alignments.tsv")
km = KMeans(features=MFCC(corpus=corpus), k=4)
bad = Probe(upstream=km, task="pr")
'''


def test_planner_refuses_a_bad_upstream(tmp_path):
    make_corpus(tmp_path, 2)
    (tmp_path / "p.py").write_text(BAD)
    with pytest.raises(SpecError, match=r"p\.py:5: .*a KMeans cannot be probed; give a Pretrain") as e:
        Project(tmp_path / "p.py", str(tmp_path / "store")).plan()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("line, message", [
    ('Probe(upstream=MFCC(corpus=Corpus(root="wav")), task="sid")',
     r"task='sid' needs speakers but corpus .* names none; set Corpus\(speakers="),
    ('Probe(upstream=MFCC(corpus=Corpus(root="wav")), task="pr")',
     r"task='pr' needs phone alignments but corpus .* has none"),
    ('Probe(upstream=MFCC(corpus=Corpus(root="wav")), task="pc", layers=(3,))',
     r"Probe.layers=\[3\]: give distinct layers in increasing order among \[0\]"),
    ('Probe(upstream=MFCC(corpus=Corpus(root="wav", speakers="s.tsv")), task="sid", '
     'split=Split(by="speaker"))', r"split.by='speaker' would test only unseen speakers"),
    ('Probe(upstream=MFCC(corpus=Corpus(root="wav")), corpus=Corpus(root="wav", glob="*.wav"), '
     'task="sid")', r"upstream .* holds features of corpus .*, not of .*; probe the corpus"),
])
def test_spec_errors_name_the_problem(tmp_path, line, message):
    make_corpus(tmp_path, 2)
    (tmp_path / "p.py").write_text(
        f"from ssl_graph import MFCC, Corpus, Probe, Split\nbad = {line}\n")
    with pytest.raises(SpecError, match=message) as e:
        Project(tmp_path / "p.py", str(tmp_path / "store")).plan()
    assert "\n" not in str(e.value)


def test_compare_shows_two_upstreams_side_by_side(probed):
    from click.testing import CliRunner

    from ssl_graph.cli import main

    spec, store = probed.spec_path, str(probed.store.location)
    for a, b, metric in (("pr_mfcc", "pr_pre", "per"), ("sid_mfcc", "sid_pre", "accuracy")):
        res = CliRunner().invoke(main, ["--store", store, "compare", f"{spec}:{a}", f"{spec}:{b}"],
                                 terminal_width=250)
        assert res.exit_code == 0, res.output
        va, vb = (probed[n].metrics[metric] for n in (a, b))
        assert "upstream" in res.output and f"{metric}={va:.3f}" in res.output
        assert f"{metric}={vb:.3f}" in res.output and f"({vb - va:+.3f})" in res.output


def test_report_draws_layer_weights_and_per_layer_accuracy(probed, tmp_path):
    from ssl_graph.report import write_report

    rep = write_report(probed, tmp_path)
    rows = {r["node"]: r for r in rep.rows}
    assert rows["pr_pre"]["what"] == "pre → PR probe, linear, 3 layers"
    assert rows["sid_mfcc"]["what"] == "mfcc → SID probe, linear, 1 layer"
    assert rows["pr_pre"]["per"] == probed["pr_pre"].metrics["per"]
    assert rows["sid_pre"]["accuracy"] == probed["sid_pre"].metrics["accuracy"]
    files = dict((f, t) for t, f in rep.images)
    assert {"probe-weights.png", "probe-layers.png"} <= set(files)
    assert all((tmp_path / f).stat().st_size > 0 for f in ("probe-weights.png", "probe-layers.png"))
    assert "SID probe" in (tmp_path / "report.html").read_text()


def test_edited_speakers_restale_only_speaker_probes(probed, tmp_path):
    """SID reads the speaker map, which no audio version covers: editing it restales the SID
    probes (and nothing that only reads audio or phones)."""
    src = probed.spec_path.parent
    for f in ("alignments.tsv", "p.py"):
        shutil.copy2(src / f, tmp_path / f)
    shutil.copytree(src / "wav", tmp_path / "wav")
    shutil.copytree(src / "released", tmp_path / "released")
    lines = (src / "speakers.tsv").read_text().splitlines()
    utt, _ = lines[1].split("\t")
    (tmp_path / "speakers.tsv").write_text("\n".join([lines[0], f"{utt}\tsomeone"] + lines[2:]))
    plan = Project(tmp_path / "p.py", probed.store).plan()
    stale = {n: st.reasons for n, st in plan.items() if st.stale}
    sid = {"sid_mfcc", "sid_pre", "sid_top", "sid_released"}
    assert sid <= set(stale) and not {"pr_mfcc", "pr_pre", "pc_pre", "sweep", "pre"} & set(stale)
    assert stale["sid_pre"] == ["speakers changed (speaker identification)"]


def test_pr_split_follows_finetune_rules(tmp_path):
    """PR/pc split as FineTune does: test by hash, dev apart, training within the budget."""
    from ssl_graph.train.split import split_of

    utts = make_corpus(tmp_path, 20)
    (tmp_path / "p.py").write_text('''
from ssl_graph import MFCC, Corpus, Probe, Split
corpus = Corpus(root="wav", alignments="alignments.tsv", speakers="speakers.tsv")
split = Split(test_fraction=0.25, dev_fraction=0.1, labeled_minutes=0.1)
budget = Probe(upstream=MFCC(corpus=corpus), task="pr", steps=3, split=split)
''')
    p = Project(tmp_path / "p.py", str(tmp_path / "store"))
    p.run()
    rec, split = p["budget"].record, p["budget"].node.split
    outputs = read_json(p.store.backend, f"{p['budget'].key}/test_outputs.json")
    assert sorted(outputs) == [u for u in utts if split_of(u, split) == "test"]
    train = [u for u in utts if split_of(u, split) == "train"]
    assert 1 <= rec["n_train"] < len(train)  # 6 s of the training utterances' audio
