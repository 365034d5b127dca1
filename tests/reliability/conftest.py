"""Fixtures for the store reliability catalog: a computed demo store, CLI runs, snapshots.

Every case damages or stresses a real store made from the bundled demo corpus, then checks the
command's exit code, that its message is one line naming what and where, and that whatever was
cached before is still there and reads back identically.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ssl_graph.cli import main

from ..conftest import ROOT, make_corpus, write_spec
from ._inputs import copy_base, make_base

NODES = ("corpus", "mfcc", "km", "labels", "quality")


def cli(workdir: Path, *args: str, store: str | None = None):
    """One in-process ``ssl-graph`` call against the workdir's store."""
    return CliRunner().invoke(main, ["--store", store or str(workdir / "store"), *args])


def cli_proc(workdir: Path, *args: str, store: str | None = None, **kw) -> subprocess.Popen:
    """A real ``ssl-graph`` process (for kills and concurrency)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "ssl_graph", "--store", store or str(workdir / "store"), *args],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def ran(res, n: int) -> bool:
    """The run's summary says it computed exactly ``n`` nodes."""
    return re.search(rf"computed {n} of \d+ nodes", res) is not None


def n_nodes(workdir: Path, spec: str = "pipe.py") -> int:
    import ssl_graph

    return len(ssl_graph.load(workdir / spec, str(workdir / "store")).pipeline.nodes)


def one_line_error(res, *must_name: str) -> str:
    """Non-zero exit, no traceback, and the error's first line names every given string."""
    assert res.exit_code != 0, res.output
    assert "Traceback" not in res.output, res.output
    line = next(ln for ln in res.output.splitlines() if ln.lower().startswith("error"))
    for what in must_name:
        assert what in line, f"{what!r} not named in: {line}"
    return line


def snapshot(workdir: Path) -> dict:
    """Every cached value the demo pipeline exposes, read through the public API."""
    import ssl_graph

    p = ssl_graph.load(workdir / "pipe.py", str(workdir / "store"))
    utts = p["mfcc"].utterances()
    return {
        "mfcc": {u: p["mfcc"].features(u) for u in utts},
        "labels": {u: p["labels"].labels(u) for u in utts},
        "centroids": p["km"].centroids,
        "quality": p["quality"].metrics,
    }


def assert_same(a: dict, b: dict) -> None:
    assert a["mfcc"].keys() == b["mfcc"].keys()
    for u in a["mfcc"]:
        np.testing.assert_array_equal(a["mfcc"][u], b["mfcc"][u])
        np.testing.assert_array_equal(a["labels"][u], b["labels"][u])
    np.testing.assert_array_equal(a["centroids"], b["centroids"])
    assert a["quality"] == b["quality"]


def node_dir(workdir: Path, kind: str) -> Path:
    (d,) = (workdir / "store" / "nodes").glob(f"{kind}-*")
    return d


def tree(path: Path) -> dict[str, bytes]:
    """Every file's bytes (to prove a command changed nothing)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and not p.name.startswith(".lock")
            and p.relative_to(path).parts[0] != "locks"}  # (lock files, not data)


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> tuple[Path, dict]:
    """The demo pipeline computed once per session (tests work on copies)."""
    wd = tmp_path_factory.mktemp("pristine")
    make_corpus(wd, 12)
    write_spec(wd, k=20)
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
    assert res.exit_code == 0, res.output
    return wd, snapshot(wd)


@pytest.fixture
def computed(pristine, tmp_path) -> tuple[Path, dict]:
    """A private copy of the computed store and its corpus, plus the snapshot to compare with."""
    src, snap = pristine
    wd = tmp_path / "w"
    shutil.copytree(src, wd, symlinks=True)
    return wd, snap


def wait_for(cond, timeout: float = 60.0, what: str = "condition") -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# the good, fully cached workdir of ``_inputs.py``, built once per module that asks for it
# (test_hostile_store.py builds a store of its own under the same names)
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory)


@pytest.fixture
def work(base, tmp_path):
    """A private copy of the good, fully cached workdir."""
    return copy_base(base[0], tmp_path / "w")
