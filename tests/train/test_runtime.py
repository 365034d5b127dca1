"""Runtime settings of training nodes: --set overrides, live progress lines, TensorBoard,
SIGINT → checkpoint → resume at that step, determinism whatever ran before in the process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from ssl_graph.api import Project
from ssl_graph.cli import main
from ssl_graph.exec.overrides import apply_overrides
from ssl_graph.specs.base import SpecError
from ssl_graph.store.train_log import read_log

from ..conftest import make_corpus

SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import hubert

corpus = Corpus(root="wav")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))
hb = hubert(corpus, targets=labels, size="tiny", steps={steps}, batch_seconds=4.0,
            crop_seconds=1.0, checkpoint_every={every})
'''


def _spec(d, steps=12, every=100):
    make_corpus(d, 8)
    (d / "p.py").write_text(SPEC.format(steps=steps, every=every))
    return d / "p.py"


def _curve(project, name="hb"):
    return [r["loss"] for r in read_log(project.store.backend, project[name].key)]


def test_set_changes_runtime_fields_only(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    p = Project(spec, str(tmp_path / "store"))
    fp = p.pipeline.node("hb").fingerprint
    apply_overrides(p.pipeline, ["hb.max_batch_seconds=2", "hb.device=cpu", "hb.threads=1"])
    hb = p.pipeline.node("hb")
    assert (hb.max_batch_seconds, hb.device, hb.threads) == (2.0, "cpu", 1)
    assert hb.fingerprint == fp and p.pipeline.nodes[fp] is hb
    with pytest.raises(SpecError, match=r"hb\.batch_seconds.*semantic field"):
        apply_overrides(p.pipeline, ["hb.batch_seconds=8"])
    with pytest.raises(SpecError, match="has no field 'nope'"):
        apply_overrides(p.pipeline, ["hb.nope=1"])
    with pytest.raises(SpecError, match="no node named 'zz'"):
        apply_overrides(p.pipeline, ["zz.device=cpu"])
    with pytest.raises(SpecError, match="max_batch_seconds"):
        apply_overrides(p.pipeline, ["hb.max_batch_seconds=-1"])
    # the CLI refuses a semantic field in one line, from --set and from $SSL_GRAPH_SET
    runner = CliRunner()
    res = runner.invoke(main, ["--store", str(tmp_path / "store"), "run", str(spec), "hb",
                               "--set", "hb.seed=3"])
    assert res.exit_code == 1 and "hb.seed" in res.output and "semantic" in res.output
    assert len(res.output.strip().splitlines()) == 1
    monkeypatch.setenv("SSL_GRAPH_SET", "hb.device=cpu; hb.steps=3")
    res = runner.invoke(main, ["--store", str(tmp_path / "store"), "run", str(spec), "hb"])
    assert res.exit_code == 1 and "hb.steps" in res.output


def _read_tensorboard(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path))
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars("train/loss")}


@pytest.mark.parametrize(("workers", "sig"), [(0, signal.SIGINT), (2, signal.SIGTERM)])
def test_sigint_checkpoints_the_step_then_resumes_there(tmp_path, workers, sig):
    """A real subprocess writing to a file: progress lines appear while it trains; SIGINT
    mid-run checkpoints at the step it reached; the rerun resumes there with the same curve.
    The signal goes to the whole process group, DataLoader workers included, as Ctrl-C or a
    cluster's SIGTERM to the job does."""
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref = Project(_spec(ref_dir, steps=30), str(ref_dir / "store"))
    ref.run()
    full = _curve(ref)

    spec = _spec(run_dir, steps=30)
    env = {**os.environ, "SSL_GRAPH_STORE": str(run_dir / "store")}
    cmd = [sys.executable, "-m", "ssl_graph", "run", str(spec), "hb",
           "--set", "hb.print_seconds=0", "--set", f"hb.workers={workers}"]
    log = run_dir / "out.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline, seen = time.time() + 300, 0
        while seen < 6 and time.time() < deadline and proc.poll() is None:
            steps = re.findall(r"hb: step (\d+)/30 \| loss [\d.]+ \| acc [\d.]+ \| lr \S+ \| "
                               r"audio-s/s [\d.]+ \| ETA \d+:\d\d:\d\d", log.read_text())
            seen = int(steps[-1]) if steps else 0
            time.sleep(0.05)
        os.killpg(proc.pid, sig)
        rc = proc.wait(timeout=120)
    text = log.read_text()
    assert rc == 128 + sig, text  # 130 after SIGINT, 143 after SIGTERM
    assert 6 <= seen < 30, text
    project = Project(spec, str(run_dir / "store"))
    stopped = project.store.record(project["hb"].key)["step"]
    assert seen <= stopped < 30  # the step in flight finishes and is kept; none is lost
    assert f"hb: checkpoint written at step {stopped}/30; rerun to resume there" in text
    assert project.plan()["hb"].reasons == [f"incomplete at step {stopped}/30 (interrupted run)"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"hb: step {stopped + 1}/30" in res.stdout and "hb: step 1/30" not in res.stdout
    resumed = Project(spec, str(run_dir / "store"))
    assert _curve(resumed) == full
    # the log was appended to, never rewritten: parts of consecutive steps, no whole log.json
    node_dir = run_dir / "store" / resumed["hb"].key
    spans = [tuple(int(x) for x in p.stem.split("-")) for p in sorted((node_dir / "log").iterdir())]
    assert spans[0][0] == 1 and spans[-1][1] == 30 and len(spans) >= 2, spans
    assert all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:])), spans
    assert not (node_dir / "log.json").exists()
    pytest.importorskip("tensorboard")
    tb = _read_tensorboard(run_dir / "store" / resumed["hb"].key / "tensorboard")
    assert sorted(tb) == list(range(1, 31))
    assert np.allclose([tb[s] for s in range(1, 31)], full, rtol=1e-6)
