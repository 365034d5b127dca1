"""FineTune at scale: micro-batches and 2 DDP ranks give the unsplit loss curve (masks and
dropout off, so the runs draw nothing at random that a split could change). One batch holds a
single utterance, so one rank stands in with weight 0 for that step."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from ssl_graph.api import Project
from ssl_graph.exec.overrides import apply_overrides
from ssl_graph.store.train_log import read_log

from ..conftest import make_corpus
from .test_runtime import _curve

SPEC = '''
from ssl_graph import Corpus
from ssl_graph.presets import finetune, wav2vec2
from ssl_graph.specs.finetune import Split

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
pre = wav2vec2(corpus, size="tiny", steps=4, batch_seconds=2.0, crop_seconds=1.0)
ft = finetune(pre, size="tiny", split=Split(labeled_minutes=0.5, test_fraction=0.25), steps=6,
              batch_seconds=6.0, freeze_steps=2, mask=None, layerdrop=0.0,
              activation_dropout=0.0, checkpoint_every=100)
'''


def _project(d, *overrides):
    make_corpus(d, 12)
    (d / "p.py").write_text(SPEC)
    p = Project(d / "p.py", str(d / "store"))
    apply_overrides(p.pipeline, list(overrides))
    return p


def test_finetune_micro_batches_and_two_ranks_equal_the_unsplit_curve(tmp_path):
    whole = _project(tmp_path / "whole")
    whole.run(["ft"])
    split = _project(tmp_path / "split", "ft.max_batch_seconds=1.5")
    split.run(["ft"])
    sizes = [r["batch_size"] for r in read_log(whole.store.backend, whole['ft'].key)]
    assert max(sizes) >= 2 and min(sizes) == 1  # 1.5 s really splits; one batch < 2 ranks
    ref = np.array(_curve(whole, "ft"))
    np.testing.assert_allclose(_curve(split, "ft"), ref, rtol=1e-5)

    d = tmp_path / "ddp"
    ddp = _project(d)
    ddp.run(["pre"])  # pre-training in one process: its dropout would differ across ranks
    res = subprocess.run(
        [sys.executable, "-m", "ssl_graph", "--store", str(d / "store"), "run", str(d / "p.py"),
         "ft", "--launcher", "torchrun", "--nproc-per-node", "2", "-q"],
        capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    np.testing.assert_allclose(_curve(Project(d / "p.py", str(d / "store")), "ft"), ref,
                               rtol=1e-5)
