"""Spec-side cases of the issue-8 catalog: every broken spec file is refused with one line that
names the file (and line or field) and what to do, and nothing cached before is touched."""

from __future__ import annotations

import pytest

from ._inputs import assert_intact, assert_refused, cli

HEAD = "from ssl_graph import MFCC, Corpus, KMeans, Labels, LayerFeatures\n" \
       "from ssl_graph.presets import wav2vec2\n" \
       "corpus = Corpus(root='wav', glob='*', alignments='alignments.tsv')\n"




def _refused(work, base, body: str | bytes, *needles: str, command: str = "plan") -> str:
    spec = work / "bad.py"
    spec.write_bytes(body if isinstance(body, bytes) else (HEAD + body).encode())
    args = ["run", "bad.py", "--no-progress", "-q"] if command == "run" else [command, "bad.py"]
    line = assert_refused(cli(work, *args), *needles)
    assert_intact(work, base[1])
    return line


def test_syntax_error(work, base):
    _refused(work, base, "mfcc = MFCC(corpus=corpus\n", "bad.py:4", "syntax error")


def test_import_error(work, base):
    _refused(work, base, "import no_such_module_xyz\n", "bad.py:4", "No module named 'no_such_module_xyz'")


def test_no_nodes(work, base):
    _refused(work, base, b"x = 1\n", "bad.py", "declares no nodes", "module-level variables")


def test_missing_spec_file(work, base):
    line = assert_refused(cli(work, "plan", "nope.py"), "nope.py", "not found")
    assert "spec file" in line
    assert_intact(work, base[1])


def test_not_utf8_spec_file(work, base):
    _refused(work, base, HEAD.encode() + "# caf\u00e9\n".encode("latin-1"), "bad.py", "not UTF-8",
             "0xe9", "save the spec file as UTF-8")


def test_dependency_cycle(work, base):
    body = ("mfcc = MFCC(corpus=corpus)\nkm = KMeans(features=mfcc, k=5)\nlabels = Labels(kmeans=km)\n"
            "object.__setattr__(km, 'features', labels)\n")
    _refused(work, base, body, "bad.py", "dependency cycle: km → labels → km")


def test_unknown_field(work, base):
    _refused(work, base, "mfcc = MFCC(corpus=corpus, delta=1)\n", "bad.py:4", "MFCC.delta",
             "no such field", "MFCC has: corpus, deltas, workers")


def test_wrong_type(work, base):
    _refused(work, base, "km = KMeans(features=MFCC(corpus=corpus), k='many')\n", "bad.py:4",
             "KMeans.k", "valid integer")


@pytest.mark.parametrize("k", [0, -3])
def test_k_not_positive(work, base, k):
    _refused(work, base, f"km = KMeans(features=MFCC(corpus=corpus), k={k})\n", "bad.py:4",
             "KMeans.k", "greater than or equal to 2")


def test_k_more_than_frames(work, base):
    body = "km = KMeans(features=MFCC(corpus=corpus), k=1000000, fit_fraction=0.01)\n"
    _refused(work, base, body, "km:", "frames sampled for k=1000000", "raise fit_fraction or lower k",
             command="run")


def test_mask_prob_not_below_one(work, base):
    body = "from ssl_graph.specs.components import SpanMask\nm = SpanMask(prob=1.0)\n"
    _refused(work, base, body, "bad.py:5", "SpanMask.prob", "less than 1")


def test_negative_steps(work, base):
    _refused(work, base, "pre = wav2vec2(corpus, size='tiny', steps=-5)\n", "bad.py", "Pretrain.steps",
             "greater than or equal to 1")


def test_labels_batch_frames_zero(work, base):
    body = "km = KMeans(features=MFCC(corpus=corpus), k=5)\nlab = Labels(kmeans=km, batch_frames=0)\n"
    _refused(work, base, body, "bad.py:5", "Labels.batch_frames", "greater than or equal to 1")


def test_mfcc_workers_zero(work, base):
    _refused(work, base, "mfcc = MFCC(corpus=corpus, workers=0)\n", "bad.py:4", "MFCC.workers",
             "greater than or equal to 1")


def test_layer_features_chunk_seconds_zero(work, base):
    body = "pre = wav2vec2(corpus, size='tiny')\nf = LayerFeatures(model=pre, layer=1, chunk_seconds=0)\n"
    _refused(work, base, body, "bad.py:5", "LayerFeatures.chunk_seconds", "greater than 0")


def test_training_min_seconds_below_receptive_field(work, base):
    """Training crops to the shortest utterance of a batch; it must never see one without a frame."""
    _refused(work, base, "pre = wav2vec2(corpus, size='tiny', min_seconds=0.0)\n", "pre:",
             "min_seconds=0.0", "receptive field", "set min_seconds >= 0.025")


def test_unknown_target_name(work, base):
    body = "mfcc = MFCC(corpus=corpus)\n__targets__ = ['mfc']\n"
    _refused(work, base, body, "bad.py", "__targets__ names unknown node(s) ['mfc']", "nodes: corpus, mfcc")


def test_negative_seed(work, base):
    _refused(work, base, "km = KMeans(features=MFCC(corpus=corpus), k=5, seed=-1)\n", "bad.py:4",
             "KMeans.seed", "greater than or equal to 0")


def test_zero_sample_rate(work, base):
    _refused(work, base, "c2 = Corpus(root='wav', sample_rate=0)\n", "bad.py:4", "Corpus.sample_rate",
             "greater than or equal to 1")


# ---- specs that exit or are interrupted while imported (issue 18) ------------------------------
@pytest.mark.parametrize("call,shown", [
    ("import sys; sys.exit(0)", "sys.exit(0)"),
    ("import sys; sys.exit(3)", "sys.exit(3)"),
    ("exit()", "sys.exit(None)"),
    ("import os; os._exit(3)", "os._exit(3)"),
    ("from os import _exit; _exit(0)", "os._exit(0)"),
], ids=["sys.exit-0", "sys.exit-3", "exit", "os._exit", "from-os-import-_exit"])
@pytest.mark.parametrize("command", ["plan", "run"])
def test_spec_that_exits_at_import_is_an_error(work, base, call, shown, command):
    """It used to look like success (exit 0, nothing printed, nothing done) or fail silently."""
    body = f"mfcc = MFCC(corpus=corpus)\n{call}\n"
    line = _refused(work, base, body, "bad.py:5", f"called {shown}", "nothing was planned or run",
                    "remove the call", command=command)
    assert line.startswith("error: ")


def test_spec_that_raises_keyboardinterrupt_at_import(work, base):
    (work / "bad.py").write_text(HEAD + "mfcc = MFCC(corpus=corpus)\nraise KeyboardInterrupt\n")
    for args in (["plan", "bad.py"], ["run", "bad.py", "--no-progress", "-q"]):
        res = cli(work, *args)
        assert res.returncode == 130, res.stderr
        assert "Traceback" not in res.stderr
        assert res.stderr.strip().splitlines() == [
            f"interrupted: spec file {work / 'bad.py'}:5 was being imported; nothing was planned "
            "or run"]
        assert "committed" not in res.stderr  # nothing ran: nothing to claim
    assert_intact(work, base[1])


def test_spec_that_dies_at_import_holds_no_lock(work, base):
    """``posix._exit`` (or a signal) cannot be intercepted, so its exit code is the process's;
    specs are imported before any store lock is taken, so no run registration is left behind
    and the next exclusive command (gc) proceeds at once."""
    (work / "bad.py").write_text(HEAD + "mfcc = MFCC(corpus=corpus)\nimport posix; posix._exit(3)\n")
    res = cli(work, "run", "bad.py", "--no-progress", "-q")
    assert res.returncode == 3 and res.stdout == res.stderr == ""
    runs = work / "store" / "locks" / "runs"
    assert not (runs.exists() and any(runs.iterdir()))
    res = cli(work, "gc")
    assert res.returncode == 0, res.stderr
    assert_intact(work, base[1])
