"""Shared fixtures: a small real corpus (a slice of the bundled demo corpus) in a temp dir."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """The processes the tests start take SIGINT as a terminal's foreground job does, however
    pytest was started. A job a non-interactive shell starts in the background (``pytest &`` in
    a script, ``(pytest &)``, a harness without job control) inherits SIGINT ignored (POSIX), and
    every child then inherits the ignore across exec: a real run that a test interrupts, as a user
    presses Ctrl-C, rightly honours it and never stops. Python installs its KeyboardInterrupt
    handler only where SIGINT is at its default, so here it is put back, once, for the session
    (pytest itself is then interruptible too, as it is run from a terminal)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True, scope="session")
def _private_scan_cache(tmp_path_factory):
    """Corpus-scan and index memos (``SSL_GRAPH_CACHE``) go to the session's temp dir, not the
    user's ~/.cache; subprocesses the tests start inherit it."""
    import os

    old = os.environ.get("SSL_GRAPH_CACHE")
    os.environ["SSL_GRAPH_CACHE"] = str(tmp_path_factory.mktemp("ssl-graph-cache"))
    yield
    if old is None:
        os.environ.pop("SSL_GRAPH_CACHE", None)
    else:
        os.environ["SSL_GRAPH_CACHE"] = old
DEMO = ROOT / "data" / "demo"

SPEC_TEMPLATE = '''
from ssl_graph import MFCC, ClusterQuality, Corpus, KMeans, Labels

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k={k}, fit_fraction=1.0, seed=0, max_iter=30)
labels = Labels(kmeans=km)
quality = ClusterQuality(labels=labels)
'''


def _filter_tsv(src: Path, dst: Path, utts: set[str]) -> None:
    lines = src.read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split("\t", 1)[0] in utts]
    dst.write_text("\n".join(keep) + "\n")


def make_corpus(dst: Path, n: int) -> list[str]:
    """Copy the first n demo utterances (sorted ids, so several voices) with their annotations."""
    files = sorted((DEMO / "wav").glob("*.flac"))
    # take utterances from different voices: stride through the sorted list
    step = max(1, len(files) // n)
    chosen = files[::step][:n]
    (dst / "wav").mkdir(parents=True)
    for f in chosen:
        shutil.copy2(f, dst / "wav" / f.name)
    utts = {f.stem for f in chosen}
    _filter_tsv(DEMO / "transcripts.tsv", dst / "transcripts.tsv", utts)
    _filter_tsv(DEMO / "alignments.tsv", dst / "alignments.tsv", utts)
    _filter_tsv(DEMO / "speakers.tsv", dst / "speakers.tsv", utts)
    return sorted(utts)


def add_extra_utterance(dst: Path, index: int = 0) -> str:
    """Move one of the demo's held-back utterances into a test corpus (audio + annotations)."""
    extra = sorted((DEMO / "extra").glob("*.flac"))[index]
    shutil.copy2(extra, dst / "wav" / extra.name)
    for tsv in ("transcripts.tsv", "alignments.tsv", "speakers.tsv"):
        rows = [ln for ln in (DEMO / "extra" / tsv).read_text().splitlines()[1:]
                if ln.split("\t", 1)[0] == extra.stem]
        with open(dst / tsv, "a") as fh:
            fh.write("\n".join(rows) + "\n")
    return extra.stem


@pytest.fixture
def workdir(tmp_path) -> Path:
    utts = make_corpus(tmp_path, 12)
    assert len(utts) == 12
    write_spec(tmp_path, k=20)
    return tmp_path


def write_spec(workdir: Path, k: int = 20, template: str = SPEC_TEMPLATE) -> Path:
    spec = workdir / "pipe.py"
    spec.write_text(template.format(k=k))
    return spec


@pytest.fixture
def project(workdir):
    from ssl_graph.api import Project

    return Project(workdir / "pipe.py", str(workdir / "store"))
