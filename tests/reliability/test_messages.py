"""Messages that used to name nothing (issue 18): a damaged checkpoint, a store URL that cannot
hold a store, a missing bucket, and a reader that closes the pipe. Each now names the file,
store or bucket and what to do, in one line; a closed stdout ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.specs.base import SpecError

from ..conftest import make_corpus
from ..shared.s3 import s3  # noqa: F401  (fixture)
from ._inputs import assert_refused

#: a tiny HuBERT config (only what planning reads: the architecture)
CONFIG = {"model_type": "hubert", "hidden_size": 32, "num_hidden_layers": 1,
          "num_attention_heads": 2, "intermediate_size": 64, "conv_dim": [16] * 7,
          "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2}

SPEC = '''
from ssl_graph import Corpus, PretrainedModel
released = PretrainedModel(path="released")
'''


def _cli(d, *args):
    env = {k: v for k, v in os.environ.items() if k != "SSL_GRAPH_DEBUG"}
    return subprocess.run([sys.executable, "-m", "ssl_graph", *args], cwd=d, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def checkpoint(tmp_path):
    """A whole safetensors checkpoint directory (weights written by safetensors itself)."""
    from safetensors.numpy import save_file

    ck = tmp_path / "released"
    ck.mkdir()
    (ck / "config.json").write_text(json.dumps(CONFIG, indent=2))
    save_file({"a.weight": np.arange(64, dtype=np.float32).reshape(8, 8),
               "b.bias": np.ones(8, np.float32)}, str(ck / "model.safetensors"))
    (tmp_path / "p.py").write_text(SPEC)
    return ck


def test_whole_checkpoint_plans(checkpoint):
    plan = Project(checkpoint.parent / "p.py", str(checkpoint.parent / "store")).plan()
    assert plan["released"].status == "stale"


@pytest.mark.parametrize("cut", [4, 40, -10], ids=["inside-length", "inside-header", "data"])
def test_truncated_safetensors_is_named_at_plan_time(checkpoint, cut):
    """It used to fail at run time in the loader: 'Error while deserializing header…'."""
    f = checkpoint / "model.safetensors"
    f.write_bytes(f.read_bytes()[:cut])
    res = _cli(checkpoint.parent, "--store", "store", "plan", "p.py")
    assert_refused(res, str(f), "damaged", "re-download it or save it again")


def test_safetensors_with_bytes_appended_is_named(checkpoint):
    f = checkpoint / "model.safetensors"
    f.write_bytes(f.read_bytes() + b"\0" * 16)
    with pytest.raises(SpecError, match=r"model\.safetensors is damaged \(.*appended to\)"):
        Project(checkpoint.parent / "p.py", str(checkpoint.parent / "store")).plan()


def test_damaged_safetensors_at_read_time_is_named(checkpoint):
    """The reader names the file too, whatever slips past the header check."""
    from ssl_graph.model_io.hf_checkpoint import read_weights

    pytest.importorskip("torch")
    f = checkpoint / "model.safetensors"
    raw = bytearray(f.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    raw[8:8 + n] = raw[8:8 + n].replace(b"F32", b"Q32")  # a dtype safetensors does not know
    f.write_bytes(bytes(raw))
    with pytest.raises(SpecError, match=rf"cannot read {f} \(.*\); re-download it"):
        read_weights(checkpoint, "released")


@pytest.mark.parametrize("text,line", [("{\n  \"model_type\": \"hubert\",\n}\n", 3),
                                       ("[1, 2]\n", 1)], ids=["not-json", "not-an-object"])
def test_config_json_that_is_not_a_json_object_is_named(checkpoint, text, line):
    """It used to say 'bad.py:3: JSONDecodeError: …', naming the spec file, not config.json."""
    (checkpoint / "config.json").write_text(text)
    res = _cli(checkpoint.parent, "--store", "store", "plan", "p.py")
    assert_refused(res, f"{checkpoint / 'config.json'}:{line}:", "restore the file")


@pytest.mark.parametrize("url", ["zip://x.zip", "zip://store::x.zip", "tar://store::x.tar"])
def test_archive_store_url_is_refused_naming_it(tmp_path, url):
    """It used to say '[Errno 21] Is a directory: <cwd>'."""
    make_corpus(tmp_path, 1)
    (tmp_path / "p.py").write_text("from ssl_graph import Corpus\ncorpus = Corpus(root='wav')\n")
    res = _cli(tmp_path, "--store", url, "plan", "p.py")
    assert_refused(res, f"store {url}:", "archive", "unpack the archive")


def test_unknown_store_protocol_is_refused_naming_it(tmp_path):
    make_corpus(tmp_path, 1)
    (tmp_path / "p.py").write_text("from ssl_graph import Corpus\ncorpus = Corpus(root='wav')\n")
    assert_refused(_cli(tmp_path, "--store", "nosuch://x", "plan", "p.py"),
                   "store nosuch://x:", "Protocol not known", "give a directory")


def test_missing_s3_bucket_is_named(s3, tmp_path):  # noqa: F811
    """It used to plan everything as new, then fail the run with 'The specified bucket does
    not exist' (which bucket, at which endpoint?)."""
    make_corpus(tmp_path, 1)
    (tmp_path / "p.py").write_text("from ssl_graph import Corpus, MFCC\ncorpus = Corpus(root='wav')\n"
                                   "mfcc = MFCC(corpus=corpus)\n")
    for args in (["plan", "p.py"], ["run", "p.py", "--no-progress", "-q"], ["ls"]):
        res = _cli(tmp_path, "--store", "s3://no-such-bucket/store", *args)
        assert_refused(res, "store s3://no-such-bucket/store:", "bucket 'no-such-bucket' does "
                       f"not exist (at {s3['url']})", "aws s3 mb s3://no-such-bucket")
    assert not s3["fs"].exists("no-such-bucket")  # nothing created it meanwhile
    # the bucket that exists still works
    assert _cli(tmp_path, "--store", "s3://ssl-graph-test/store", "plan", "p.py").returncode == 0


def test_closed_stdout_ends_quietly(tmp_path):
    """``ssl-graph query … | head -1`` used to end with 'error: [Errno 32] Broken pipe'."""
    make_corpus(tmp_path, 1)
    (tmp_path / "p.py").write_text("from ssl_graph import Corpus, MFCC\ncorpus = Corpus(root='wav')\n"
                                   "mfcc = MFCC(corpus=corpus)\n")
    assert _cli(tmp_path, "--store", "store", "run", "p.py", "--no-progress", "-q").returncode == 0
    utt = (tmp_path / "wav").iterdir().__next__().stem
    env = {k: v for k, v in os.environ.items() if k != "SSL_GRAPH_DEBUG"}
    for args in (["query", "features", "p.py:mfcc", "--utt", utt],
                 ["query", "utts", "p.py:mfcc"], ["plan", "p.py"]):
        proc = subprocess.Popen([sys.executable, "-m", "ssl_graph", "--store", "store", *args],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before the first write
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) in (0, 141), err
        assert err == "", err
