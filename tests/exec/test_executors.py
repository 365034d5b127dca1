"""Executors: the quick pipeline gives bit-identical results in-process, on a process pool and
on a real 2-worker Dask LocalCluster (loopback), also when a worker dies mid-run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.exec.executors import Lazy
from ssl_graph.exec.jobs import CRASH_ENV, ExecutorError

from ..conftest import ROOT, make_corpus, write_spec

pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("exec")
    make_corpus(d, 8)
    write_spec(d, k=8)
    return d


def outputs(project: Project) -> dict[str, bytes]:
    """Every stored result of the quick pipeline, as bytes (dtype and shape included)."""
    def b(a):
        a = np.asarray(a)
        return f"{a.dtype}{a.shape}".encode() + a.tobytes()

    mfcc, labels = project["mfcc"], project["labels"]
    utts = mfcc.utterances()
    out = {f"mfcc/{u}": b(x) for u, x in zip(utts, mfcc.features_many(utts))}
    out.update({f"labels/{u}": b(project["labels"].labels(u)) for u in labels.utterances()})
    out["centroids"] = b(project["km"].centroids)
    out["joint"] = b(project["quality"].array("joint"))
    out["metrics"] = repr(sorted(project["quality"].metrics.items())).encode()
    return out


def run(corpus_dir, tmp_path, **kw) -> dict[str, bytes]:
    project = Project(corpus_dir / "pipe.py", str(tmp_path / "store"))
    report = project.run(**kw)
    assert {n.name for n in report.nodes if n.status == "computed"} >= {"mfcc", "labels", "km"}
    return outputs(project)


@pytest.fixture(scope="module")
def reference(corpus_dir, tmp_path_factory):
    got = run(corpus_dir, tmp_path_factory.mktemp("local"))
    assert len([k for k in got if k.startswith("mfcc/")]) == 8
    return got


def test_process_pool_is_bit_identical(corpus_dir, tmp_path, reference):
    assert run(corpus_dir, tmp_path, executor="pool", workers=2) == reference


def test_deprecated_mfcc_workers_is_bit_identical(corpus_dir, tmp_path, reference):
    spec = corpus_dir / "pipe.py"
    alias = corpus_dir / "alias.py"
    alias.write_text(spec.read_text().replace("MFCC(corpus=corpus)", "MFCC(corpus=corpus, workers=2)"))
    project = Project(alias, str(tmp_path / "store"))
    assert project.pipeline.node("mfcc").fingerprint == \
        Project(spec, str(tmp_path / "store")).pipeline.node("mfcc").fingerprint
    project.run()
    assert outputs(project) == reference


def test_dask_local_cluster_is_bit_identical(corpus_dir, tmp_path, reference):
    assert run(corpus_dir, tmp_path, executor="dask", workers=2) == reference


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_a_worker_dying_mid_run_only_redoes_its_job(corpus_dir, tmp_path, reference,
                                                    monkeypatch, executor):
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ENV, str(marker))  # inherited by the workers started below
    assert run(corpus_dir, tmp_path, executor=executor, workers=2) == reference
    assert marker.exists()  # a worker really died (os._exit in its first job)


def test_bad_executor_settings_are_one_line():
    with pytest.raises(ExecutorError, match="--scheduler needs --executor dask"):
        Lazy("pool", 2, "tcp://127.0.0.1:1")
    with pytest.raises(ExecutorError, match="expected local, pool or dask"):
        Lazy("ray")


def cli(workdir, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(workdir / "store"),
                           "run", "pipe.py", "--no-progress", "-q", *args],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


def test_cli_executor_options(corpus_dir, tmp_path, reference):
    work = tmp_path / "w"
    shutil.copytree(corpus_dir, work)
    res = cli(work, "--executor", "pool", "--workers", "2")
    assert res.returncode == 0 and "computed 6 of 6 nodes" in res.stdout, res.stderr
    assert outputs(Project(work / "pipe.py", str(work / "store"))) == reference
    res = cli(work, "--executor", "dask")  # nothing stale: no cluster is started
    assert res.returncode == 0 and "computed 0 of 6 nodes" in res.stdout, res.stderr
    res = cli(work, "--executor", "pool", "--scheduler", "tcp://127.0.0.1:1")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "--scheduler needs --executor dask" in res.stderr.strip().splitlines()[-1]
