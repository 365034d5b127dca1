"""DDP through torchrun: 2 CPU processes on gloo train the same curve as 1 process; a SIGKILL
of the whole job mid-run resumes from the last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ssl_graph.api import Project

from ..conftest import make_corpus
from .test_runtime import _curve

# dropout off: ranks draw their own dropout, so only a dropout-free curve can match exactly
SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import hubert

corpus = Corpus(root="wav")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))
hb = hubert(corpus, targets=labels, size="tiny", steps={steps}, batch_seconds=4.0,
            crop_seconds=1.0, checkpoint_every=4)
ctx = hb.model.context.with_(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                             layerdrop=0.0)
hb = hb.with_(model=hb.model.with_(context=ctx, dropout_input=0.0, dropout_features=0.0))
'''


def _dir(d, steps):
    make_corpus(d, 8)
    (d / "p.py").write_text(SPEC.format(steps=steps))
    return d


def _cmd(d):
    return [sys.executable, "-m", "ssl_graph", "--store", str(d / "store"), "run",
            str(d / "p.py"), "--launcher", "torchrun", "--nproc-per-node", "2", "--no-progress"]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The 1-process loss curve."""
    one = _dir(tmp_path_factory.mktemp("one"), steps=12)
    ref = Project(one / "p.py", str(one / "store"))
    ref.run()
    return np.array(_curve(ref))


def test_two_gloo_ranks_equal_one_process_and_resume_after_sigkill(tmp_path, single):
    two = _dir(tmp_path / "two", steps=12)
    proc = subprocess.Popen(_cmd(two), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own group: kill the job, ranks too
    project = Project(two / "p.py", str(two / "store"))
    meta = two / "store" / project["hb"].key / "zarr.json"
    step, deadline = 0, time.time() + 300
    while step < 4 and time.time() < deadline and proc.poll() is None:
        if meta.exists():
            step = json.loads(meta.read_text())["attributes"]["ssl_graph"].get("step", 0)
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 4 <= step < 12, f"no checkpoint before the kill (step {step})"
    reasons = Project(two / "p.py", str(two / "store")).plan()["hb"].reasons
    assert reasons[0].startswith("incomplete at step"), reasons
    res = subprocess.run(_cmd(two), capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[:4000]
    assert "hb: step 1/12" not in res.stdout  # resumed, not restarted
    done = Project(two / "p.py", str(two / "store"))
    assert done["hb"].record["status"] == "complete"
    ddp = np.array(_curve(done))
    assert len(ddp) == 12
    # same global batch, same masks: only the all-reduce's summation order differs
    np.testing.assert_allclose(ddp, single, rtol=1e-5)


def test_torchrun_started_ranks_run_the_cli(tmp_path, single):
    """``torchrun -m ssl_graph run SPEC`` from a cluster script: rank 0 runs the runner."""
    d = _dir(tmp_path, steps=12)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "ssl_graph", "--store", str(d / "store"), "run", str(d / "p.py"), "-q"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[:4000]
    assert res.stdout.count("computed 5 of 5 nodes") == 1  # one report: rank 0's
    assert "hb: step" not in res.stdout  # -q: no progress lines from any rank
    np.testing.assert_allclose(_curve(Project(d / "p.py", str(d / "store"))), single, rtol=1e-5)
