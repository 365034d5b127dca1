"""Stopping a ``--launcher torchrun`` job: Ctrl-C (SIGINT to the run's process group) or a SIGTERM
to the run checkpoints on every rank and exits 130/143 with one line, no traceback; a SIGKILL of
the run takes torchrun's agent and its ranks down with it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssl_graph.api import Project

from ..conftest import make_corpus
from ..reliability._kill import children
from .test_ddp import SPEC

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, pdeathsig")


def _start(d: Path, steps: int = 400) -> tuple[subprocess.Popen, Path, Path]:
    make_corpus(d, 8)
    (d / "p.py").write_text(SPEC.format(steps=steps))
    out, err = d / "out.log", d / "err.log"
    cmd = [sys.executable, "-m", "ssl_graph", "--store", str(d / "store"), "run", str(d / "p.py"),
           "--launcher", "torchrun", "--nproc-per-node", "2", "--no-progress",
           "--set", "hb.print_seconds=0"]
    with open(out, "w") as o, open(err, "w") as e:  # its own group, as a shell's job
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, start_new_session=True)
    return proc, out, err


def _wait_for_step(proc: subprocess.Popen, out: Path, step: int) -> int:
    deadline, seen = time.time() + 300, 0
    while seen < step and time.time() < deadline and proc.poll() is None:
        steps = re.findall(r"hb: step (\d+)/400", out.read_text())
        seen = int(steps[-1]) if steps else 0
        time.sleep(0.05)
    assert seen >= step, f"no training step {step} seen:\n{out.read_text()[-2000:]}"
    return seen


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize(("sig", "to"), [
    (signal.SIGINT, "job"),  # Ctrl-C: the terminal signals the foreground job (the run)
    (signal.SIGTERM, "run"),  # `kill PID`
    (signal.SIGTERM, "all"),  # a cluster's scancel: every process at once, torchrun's too
])
def test_a_signal_checkpoints_every_rank_and_exits_quietly(tmp_path, sig, to):
    proc, out, err = _start(tmp_path)
    try:
        seen = _wait_for_step(proc, out, 3)
        ranks = _descendants(proc.pid)
        if to == "job":
            os.killpg(proc.pid, sig)
        elif to == "run":
            proc.send_signal(sig)
        else:
            for p in [proc.pid, *ranks]:
                os.kill(p, sig)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = err.read_text()
    assert rc == 128 + sig, text
    assert "Traceback" not in text + out.read_text(), text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    project = Project(tmp_path / "p.py", str(tmp_path / "store"))
    stopped = project.store.record(project["hb"].key)["step"]
    assert stopped >= seen
    assert lines == [f"hb: checkpoint written at step {stopped}/400; rerun to resume there"], text
    time.sleep(0.5)
    assert not [p for p in ranks if _alive(p)]


def test_sigkill_of_the_run_leaves_no_rank_alive(tmp_path):
    proc, out, _ = _start(tmp_path)
    procs: list[int] = []
    try:
        _wait_for_step(proc, out, 2)
        procs = _descendants(proc.pid)
        assert len(procs) >= 3, procs  # the agent and its two ranks
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(_alive(p) for p in procs):
            time.sleep(0.05)
        alive = [p for p in procs if _alive(p)]
    finally:  # (nothing is left, unless the test failed)
        for p in [proc.pid, *procs]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    assert not alive, f"still running 2 s after the run was killed: {alive}"
