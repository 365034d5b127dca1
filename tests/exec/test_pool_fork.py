"""A process pool forks its workers at the start of a run: forked after the coordinator ran
k-means (Numba's OpenMP pool), they aborted ("fork() called from a process already using GNU
OpenMP") and the run gave up after 4 deaths."""

from __future__ import annotations

import os
import subprocess
import sys

from ssl_graph.api import Project

from ..conftest import ROOT, make_corpus, write_spec


def test_a_pool_run_after_in_process_kmeans_keeps_its_workers(tmp_path):
    make_corpus(tmp_path, 60)  # enough frames for k-means to run its threads
    write_spec(tmp_path, k=8)
    Project(tmp_path / "pipe.py", str(tmp_path / "store")).run()
    write_spec(tmp_path, k=9)  # k-means (in the coordinator), then Labels (on the pool)
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(tmp_path / "store"),
                          "run", "pipe.py", "--no-progress", "-q", "--executor", "pool",
                          "--workers", "2"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and "computed 3 of 6 nodes" in res.stdout, res.stderr[-2000:]
    assert "OpenMP" not in res.stderr
