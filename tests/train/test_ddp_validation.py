"""Validation under DDP (2 gloo ranks through torchrun): each rank evaluates its share of the
valid/dev batches and one all-reduce sums them, so the run finishes (no rank waits on another)
and logs the numbers of one process; the best dev checkpoint is the same."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from ssl_graph.api import Project
from ssl_graph.store.train_log import read_log

from ..conftest import make_corpus

# dropout and fine-tuning masks off: ranks draw their own, so only then can curves match exactly
SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import finetune_from_scratch, hubert
from ssl_graph.specs.finetune import Split

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))
hb = hubert(corpus, targets=labels, size="tiny", steps=6, batch_seconds=4.0, crop_seconds=1.0,
            checkpoint_every=100, valid=0.25, valid_every=3)
ctx = hb.model.context.with_(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                             layerdrop=0.0)
hb = hb.with_(model=hb.model.with_(context=ctx, dropout_input=0.0, dropout_features=0.0))
ft = finetune_from_scratch(hb.model, corpus, size="tiny", steps=6, batch_seconds=6.0,
                           split=Split(labeled_minutes=None, test_fraction=0.2, dev_fraction=0.3),
                           mask=None, layerdrop=0.0, activation_dropout=0.0, dev_every=2,
                           checkpoint_every=100)
'''


def _rows(project, name):
    return read_log(project.store.backend, project[name].key)


def test_two_ranks_validate_like_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        make_corpus(d, 12)
        (d / "p.py").write_text(SPEC)
    ref = Project(one / "p.py", str(one / "store"))
    ref.run(["hb", "ft"])
    res = subprocess.run(
        [sys.executable, "-m", "ssl_graph", "--store", str(two / "store"), "run",
         str(two / "p.py"), "hb", "ft", "--launcher", "torchrun", "--nproc-per-node", "2", "-q"],
        capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    ddp = Project(two / "p.py", str(two / "store"))

    want = [(r["step"], r["valid_loss"], r["valid_accuracy"]) for r in _rows(ref, "hb")
            if "valid_loss" in r]
    got = [(r["step"], r["valid_loss"], r["valid_accuracy"]) for r in _rows(ddp, "hb")
           if "valid_loss" in r]
    assert [s for s, *_ in got] == [s for s, *_ in want] == [3, 6]
    np.testing.assert_allclose([v[1:] for v in got], [v[1:] for v in want], rtol=1e-5)

    want = [(r["step"], r["dev_cer"]) for r in _rows(ref, "ft") if "dev_cer" in r]
    got = [(r["step"], r["dev_cer"]) for r in _rows(ddp, "ft") if "dev_cer" in r]
    assert [s for s, _ in want] == [2, 4, 6]
    assert got == want  # greedy decoding of (nearly) equal logits: the same edits
    assert ddp["ft"].record["best"] == ref["ft"].record["best"]
