"""Two real ``ssl_graph`` processes on one store: a corpus slice, specs, and process helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import ROOT, make_corpus

HEAD = '''
from ssl_graph import MFCC, ClusterQuality, Corpus, KMeans, Labels

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
mfcc = MFCC(corpus=corpus)
'''
#: a k-means that takes seconds (many restarts, no early stop): long enough to overlap with
SLOW_KM = "km = KMeans(features=mfcc, k=20, fit_fraction=1.0, seed=0, max_iter=300, n_init={n}, tol=0.0)\n"
FAST_KM = "km = KMeans(features=mfcc, k=8, fit_fraction=1.0, seed=0, max_iter=30)\n"
TAIL = "labels = Labels(kmeans=km)\nquality = ClusterQuality(labels=labels)\n"


def spec_text(km: str) -> str:
    return HEAD + km + TAIL


@pytest.fixture
def shared(tmp_path) -> Path:
    """A workdir with 12 demo utterances whose MFCC is already in the store (shared input)."""
    make_corpus(tmp_path, 12)
    (tmp_path / "base.py").write_text(HEAD)
    proc = start(tmp_path, "base.py")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return tmp_path


def start(wd: Path, spec: str, store: str | None = None, env: dict | None = None,
          stderr=subprocess.PIPE) -> subprocess.Popen:
    """``tests/shared/_drive.py SPEC STORE`` as a real process."""
    penv = {**os.environ, **(env or {}),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_drive.py")), spec,
         store or str(wd / "store")],
        cwd=wd, env=penv, stdout=subprocess.PIPE, stderr=stderr, text=True)


def statuses(proc: subprocess.Popen, timeout: float = 600) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def holding(wd: Path, kind: str, pid: int) -> bool:
    """Process ``pid`` holds the lock of the store's ``kind`` node (its holder record)."""
    for f in (wd / "store" / "locks").glob(f"{kind}-*.lock"):
        try:
            if json.loads(f.read_text() or "{}").get("pid") == pid:
                return True
        except (OSError, ValueError):
            continue
    return False


def wait_for(cond, timeout: float = 120.0, what: str = "condition") -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
