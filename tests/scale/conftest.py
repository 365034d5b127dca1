"""A nested corpus of short WAV clips cut from the bundled demo audio (WAV, so a test can edit
a file's samples in place at the same size), with the scan cache in the test's own folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ..conftest import DEMO

SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels

corpus = Corpus(root="wav", glob="**/*.wav")
mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k=4, fit_fraction=1.0, seed=0, max_iter=10)
labels = Labels(kmeans=km)
'''


def clip(src: Path, dst: Path, seconds: float = 0.3) -> None:
    import soundfile as sf

    audio, sr = sf.read(src, frames=int(seconds * 16000), dtype="float32")
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, audio, sr, subtype="PCM_16")


def age_directories(root: Path, seconds: float = 60.0) -> None:
    """Directory mtimes in the past: the cache trusts no directory changed in the last 2 s."""
    past = time.time() - seconds
    for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        os.utime(d, (past, past))


@pytest.fixture(autouse=True)
def scan_cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("SSL_GRAPH_CACHE", str(d))
    return d


@pytest.fixture
def nested(tmp_path) -> Path:
    """``wav/a/*.wav`` (5 clips), ``wav/b/deep/*.wav`` (5 clips) and ``pipe.py``."""
    files = sorted((DEMO / "wav").glob("*.flac"))[::15][:10]
    for i, f in enumerate(files):
        sub = "a" if i < 5 else "b/deep"
        clip(f, tmp_path / "wav" / sub / f"{f.stem}.wav")
    (tmp_path / "pipe.py").write_text(SPEC)
    age_directories(tmp_path / "wav")
    return tmp_path
