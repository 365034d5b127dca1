"""Training numerics do not depend on what ran before in the process (issue 8, defect 9).

An uninterrupted ``run`` fits k-means (Numba's OpenMP pool) before training in the same process;
a resumed run trains in a fresh one. Both must give bit-identical weights.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ssl_graph.api import Project

from ..conftest import make_corpus
from .test_runtime import SPEC


def _run(d, *nodes, env):
    cmd = [sys.executable, "-m", "ssl_graph", "run", str(d / "p.py"), *nodes, "--no-progress",
           "-q"]
    res = subprocess.run(cmd, env={**env, "SSL_GRAPH_STORE": str(d / "store")},
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def _weights(d) -> bytes:
    p = Project(d / "p.py", str(d / "store"))
    return p.store.backend.read_bytes(f"{p['hb'].key}/model.safetensors")


def test_training_after_kmeans_in_process_equals_training_in_a_fresh_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        make_corpus(d, 8)
        (d / "p.py").write_text(SPEC.format(steps=6, every=100))
    _run(a, "hb", env=env)  # MFCC, k-means, labels, then training: one process
    _run(b, "labels", env=env)
    _run(b, "hb", env=env)  # training alone in a fresh process
    assert _weights(a) == _weights(b)


def test_default_threads_one_on_small_boxes_and_shared_between_ranks(monkeypatch):
    from ssl_graph.train.threads import default_threads, fixed_threads

    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_threads(2) == default_threads(4) == 1
    assert default_threads(6) == 6 and default_threads(64) == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert default_threads(16) == 1 and default_threads(64) == 8
    import numba
    import torch

    before = torch.get_num_threads(), numba.get_num_threads()
    with fixed_threads(1):
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert (torch.get_num_threads(), numba.get_num_threads()) == before
