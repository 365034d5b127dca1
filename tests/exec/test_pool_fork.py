"""Pool workers start from a forkserver, never from the coordinator: forked from a process that
had run k-means (Numba's OpenMP pool) or torch threads, they aborted ("fork() called from a
process already using GNU OpenMP") or hung. Each case runs in a fresh interpreter, as a user
would run it, so what ran before in the test process does not matter."""

from __future__ import annotations

import os
import subprocess
import sys

from ssl_graph.api import Project

from ..conftest import ROOT, make_corpus, write_spec

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _python(cwd, *args):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300)


def test_a_pool_run_after_in_process_kmeans_keeps_its_workers(tmp_path):
    make_corpus(tmp_path, 60)  # enough frames for k-means to run its threads
    write_spec(tmp_path, k=8)
    Project(tmp_path / "pipe.py", str(tmp_path / "store")).run()
    write_spec(tmp_path, k=9)  # k-means (in the coordinator), then Labels (on the pool)
    res = _python(tmp_path, "-m", "ssl_graph", "--store", str(tmp_path / "store"), "run",
                  "pipe.py", "--no-progress", "-q", "--executor", "pool", "--workers", "2")
    assert res.returncode == 0 and "computed 3 of 6 nodes" in res.stdout, res.stderr[-2000:]
    assert "OpenMP" not in res.stderr


SESSION = """
from ssl_graph.api import Project
from ssl_graph.store.backend import read_json
p = Project("pipe.py", "store")
p.run(progress=False)                       # k-means starts OpenMP threads in this process
text = open("pipe.py").read()
open("pipe.py", "w").write(text.replace("k=8", "k=9"))
p = Project("pipe.py", "store")
p.run(progress=False, executor="pool", workers=2)   # no __main__ guard, a second run
print("labels", sorted(p.store.record(p["labels"].key)["parts"]))
"""


def test_a_second_run_in_one_session_from_an_unguarded_script(tmp_path):
    """A notebook or a script: k-means ran in this process, then a pool run; the script calls
    ``run`` at top level (no ``if __name__ == '__main__'``), which workers must not re-run."""
    make_corpus(tmp_path, 60)
    write_spec(tmp_path, k=8)
    (tmp_path / "session.py").write_text(SESSION)
    res = _python(tmp_path, "session.py")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "labels ['parts/j-" in res.stdout  # the pool's workers wrote the new labels
    assert "OpenMP" not in res.stderr and "bootstrapping" not in res.stderr
