"""Shared by the input-side catalog tests: one good cached pipeline, copied per test, and the
checks every case makes (refused with one line naming what and where; the cache untouched)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from ..conftest import make_corpus

#: glob="*" so bad files of any extension (and directories) join the corpus as they would
GOOD_SPEC = '''
from ssl_graph import MFCC, ClusterQuality, Corpus, KMeans, Labels

corpus = Corpus(root="wav", glob="*", alignments="alignments.tsv")
mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k=20, fit_fraction=1.0, seed=0, max_iter=30)
labels = Labels(kmeans=km)
quality = ClusterQuality(labels=labels)
'''

#: the same audio listed by a manifest (``m.tsv``, which each test writes)
MANIFEST_SPEC = '''
from ssl_graph import MFCC, Corpus

corpus = Corpus(root=".", manifest="m.tsv")
mfcc = MFCC(corpus=corpus)
'''


def build_base(d: Path) -> dict:
    """A 12-utterance pipeline run to completion, and what it stored (read back via the API)."""
    from ssl_graph.api import Project

    make_corpus(d, 12)
    (d / "pipe.py").write_text(GOOD_SPEC)
    Project(d / "pipe.py", str(d / "store")).run()
    return snapshot(d)


def snapshot(d: Path) -> dict:
    from ssl_graph.api import Project

    p = Project(d / "pipe.py", str(d / "store"))
    utts = p["mfcc"].utterances()
    return {
        "utts": utts,
        "mfcc": {u: p["mfcc"].features(u) for u in utts},
        "labels": {u: p["labels"].labels(u) for u in p["labels"].utterances()},
        "centroids": p["km"].centroids,
        "quality": p["quality"].metrics,
    }


def assert_intact(d: Path, snap: dict) -> None:
    """Everything the good run cached still reads back, identical."""
    now = snapshot(d)
    assert now["utts"] == snap["utts"]
    assert sorted(now["labels"]) == sorted(snap["labels"])
    for u in snap["utts"]:
        np.testing.assert_array_equal(now["mfcc"][u], snap["mfcc"][u])
        np.testing.assert_array_equal(now["labels"][u], snap["labels"][u])
    np.testing.assert_array_equal(now["centroids"], snap["centroids"])
    assert now["quality"] == snap["quality"]


def copy_base(base: Path, dst: Path) -> Path:
    shutil.copytree(base, dst, symlinks=True)  # copy2 keeps mtimes: the copy's cache is fresh
    return dst


def cli(d: Path, *args: str) -> subprocess.CompletedProcess:
    """``ssl-graph`` in a fresh process (as a user runs it), in ``d``."""
    env = {k: v for k, v in os.environ.items() if k != "SSL_GRAPH_DEBUG"}
    return subprocess.run([sys.executable, "-m", "ssl_graph", "--store", "store", *args],
                          cwd=d, env=env, capture_output=True, text=True, timeout=300)


def assert_refused(res: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit ≠ 0 with exactly one ``error:`` line on stderr holding every needle; no traceback."""
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def demo_wave(d: Path, utt: str | None = None) -> tuple[np.ndarray, int]:
    path = sorted((d / "wav").glob("*.flac"))[0] if utt is None else d / "wav" / f"{utt}.flac"
    return sf.read(str(path), dtype="float32")



def make_base(tmp_path_factory) -> tuple[Path, dict]:
    """For a module-scoped ``base`` fixture: the good workdir and its snapshot."""
    d = tmp_path_factory.mktemp("base")
    return d, build_base(d)
