"""FineTune with a dev split: dev error every ``dev_every`` steps, the best checkpoint is the
node's model, ``ASRScore`` decodes the test split only, and a crash keeps the best-so-far."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.store.backend import read_json
from ssl_graph.store.train_log import read_log

from ..conftest import make_corpus

SPEC = '''
from ssl_graph import Corpus
from ssl_graph.presets import finetune_from_scratch, wav2vec2
from ssl_graph.specs.finetune import ASRScore, Split

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
arch = wav2vec2(corpus, size="tiny").model
split = Split(labeled_minutes=None, test_fraction=0.25, dev_fraction=0.25)
ft = finetune_from_scratch(arch, corpus, size="tiny", split=split, steps={steps},
                           batch_seconds=4.0, checkpoint_every=4, dev_every=3,
                           optimizer=wav2vec2(corpus, size="tiny").optimizer.with_(lr=2e-3))
score = ASRScore(model=ft)
phones = ft.with_(units="phone")
'''


def _dir(d, steps=12):
    make_corpus(d, 12)
    (d / "p.py").write_text(SPEC.format(steps=steps))
    return d


def _rows(project, name="ft"):
    return read_log(project.store.backend, project[name].key)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = _dir(tmp_path_factory.mktemp("dev"))
    project = Project(d / "p.py", str(d / "store"))
    project.run(["score", "phones"])
    return project


def test_dev_error_logged_at_every_dev_step_and_the_last(trained):
    rows = _rows(trained)
    evals = {r["step"]: r["dev_cer"] for r in rows if "dev_cer" in r}
    assert sorted(evals) == [3, 6, 9, 12]
    assert all(np.isfinite(v) and v >= 0 for v in evals.values())
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 13))  # train rows intact
    phone_rows = _rows(trained, "phones")
    assert all("dev_per" in r for r in phone_rows if r["step"] % 3 == 0)
    assert not any("dev_cer" in r for r in phone_rows)


@pytest.mark.parametrize("name, metric", [("ft", "cer"), ("phones", "per")])
def test_best_checkpoint_is_the_node_model(trained, name, metric):
    """The record names the best step; model.safetensors holds exactly those weights: their
    dev error, recomputed here from the stored model, equals the one logged at that step."""
    import torch
    from safetensors.torch import load

    from ssl_graph.kernels.edit_distance import edit_distance
    from ssl_graph.nn.ctc import build_ctc_model, greedy_decode
    from ssl_graph.train.finetune import DEV_BATCH_SECONDS
    from ssl_graph.train.score import units_for
    from ssl_graph.train.split import dev_utterances
    from ssl_graph.train.utterances import UtteranceBatcher
    from ssl_graph.train.vocab import Vocab, stored_references

    rec = trained[name].record
    evals = {r["step"]: r[f"dev_{metric}"] for r in _rows(trained, name) if f"dev_{metric}" in r}
    best_step = min(evals, key=lambda s: (evals[s], s))  # the first of equal errors is kept
    assert rec["best"] == {"step": best_step, "metric": metric, "value": evals[best_step]}
    assert rec["metrics"][f"best_dev_{metric}"] == evals[best_step]

    node = trained.pipeline.node(name)
    split = read_json(trained.store.backend, f"{trained[name].key}/split.json")
    lengths = {u: e[2] for u, e in trained.store.index(trained["corpus"].key).items()}
    assert split["dev"] == dev_utterances(lengths, node.split, {u: None for u in lengths})
    model = build_ctc_model(node, len(rec["vocab"]))
    model.load_state_dict(load(trained.store.backend.read_bytes(
        f"{trained[name].key}/model.safetensors")))
    model.eval()
    # the references as the run read them: the annotation node's stored data
    ctx = SimpleNamespace(store=trained.store,
                          state=lambda n: trained[trained.pipeline.name_of(n)])
    _, refs = stored_references(node, ctx)
    manifest = trained.plan()["corpus"].manifest
    batcher = UtteranceBatcher({u: manifest.utts[u].path for u in split["dev"]},
                               {u: lengths[u] for u in split["dev"]}, sample_rate=16000,
                               batch_seconds=DEV_BATCH_SECONDS, seed=0)
    vocab = Vocab(tuple(rec["vocab"]))
    hyps = {}
    with torch.inference_mode():
        for b in batcher.in_order():
            pad = None if b.padding_mask is None else torch.from_numpy(b.padding_mask)
            logits, frames = model(torch.from_numpy(b.wave), pad)
            hyps.update(zip(b.utts, (vocab.decode(i) for i in greedy_decode(logits, frames))))
    edits = sum(edit_distance(units_for(metric, refs[u]), units_for(metric, hyps[u]))
                for u in split["dev"])
    total = sum(len(units_for(metric, refs[u])) for u in split["dev"])
    assert edits / total == evals[best_step]


def test_score_reads_test_split_only_and_splits_are_disjoint(trained):
    split = read_json(trained.store.backend, f"{trained['ft'].key}/split.json")
    train, dev, test = set(split["labeled"]), set(split["dev"]), set(split["test"])
    assert dev and test and train
    assert not train & dev and not dev & test and not train & test
    hyps = read_json(trained.store.backend, f"{trained['score'].key}/hypotheses.json")
    assert sorted(hyps) == split["test"]
    assert trained["ft"].record["n_dev"] == len(dev)


def test_dev_every_is_semantic_only_with_a_dev_split(trained):
    ft = trained.pipeline.node("ft")
    assert ft.with_(dev_every=4).fingerprint != ft.fingerprint
    no_dev = ft.with_(split=ft.split.with_(dev_fraction=0.0))
    assert no_dev.with_(dev_every=4).fingerprint == no_dev.fingerprint
    assert "dev_every" not in no_dev.semantic()


def test_kill_9_keeps_best_so_far_and_dev_history(tmp_path, trained):
    """SIGKILL after a checkpoint, rerun: the same dev history and best step as straight."""
    d = _dir(tmp_path)
    env = {**os.environ, "SSL_GRAPH_STORE": str(d / "store")}
    cmd = [sys.executable, "-m", "ssl_graph", "run", str(d / "p.py"), "ft", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = d / "store" / Project(d / "p.py", str(d / "store"))["ft"].key / "zarr.json"
    step, deadline = 0, time.time() + 300
    while step < 8 and time.time() < deadline and proc.poll() is None:
        if meta.exists():
            attrs = json.loads(meta.read_text())["attributes"].get("ssl_graph", {})
            step = attrs.get("step", 0)
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 8 <= step < 12, f"no checkpoint at step 8 before the kill (step {step})"
    killed = json.loads(meta.read_text())["attributes"]["ssl_graph"]
    assert killed["best"]["step"] <= 6  # dev at 3 and 6 happened before the step-8 checkpoint
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    resumed = Project(d / "p.py", str(d / "store"))
    got = [(r["step"], r["dev_cer"]) for r in _rows(resumed) if "dev_cer" in r]
    want = [(r["step"], r["dev_cer"]) for r in _rows(trained) if "dev_cer" in r]
    assert got == want
    assert resumed["ft"].record["best"] == trained["ft"].record["best"]
    a = resumed.store.backend.read_bytes(f"{resumed['ft'].key}/model.safetensors")
    b = trained.store.backend.read_bytes(f"{trained['ft'].key}/model.safetensors")
    assert a == b


def test_report_states_best_dev_error(trained):
    from ssl_graph.report import build_report

    best = trained["ft"].record["best"]
    table = {r["node"]: r for r in build_report(trained).rows}
    assert table["ft"]["valid"] == f"cer {best['value']:.3f} @ {best['step']}"
