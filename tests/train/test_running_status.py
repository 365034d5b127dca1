"""`plan` tells a node a live process is training ("running: pid … step x/y") from one an
interrupted run left behind ("incomplete at step x/y (interrupted run)"); the step shown is the
live one (the ranks' heartbeats), not the last checkpoint's. ``--no-progress`` keeps the plain
progress lines, ``-q`` removes them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from ssl_graph.api import Project

from .test_runtime import _spec


def test_plan_says_running_while_a_live_process_trains(tmp_path):
    spec = _spec(tmp_path, steps=400, every=2)
    store = tmp_path / "store"
    out = tmp_path / "out.log"
    with open(out, "w") as o:
        proc = subprocess.Popen([sys.executable, "-m", "ssl_graph", "--store", str(store), "run",
                                 str(spec), "--no-progress", "-q", "--set", "hb.print_seconds=0"],
                                cwd=tmp_path, stdout=o, stderr=subprocess.PIPE,
                                env=os.environ.copy())
    try:
        deadline = time.time() + 240
        reason = ""
        while time.time() < deadline and proc.poll() is None:
            st = Project(spec, str(store)).plan()["hb"]
            if (st.record or {}).get("step"):
                reason = st.reasons[0]
                break
            time.sleep(0.5)
        assert reason.startswith(f"running: pid {proc.pid} on "), reason
        assert "at step" in reason
        assert "hb: step" not in out.read_text()  # -q: no progress lines
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    reason = Project(spec, str(store)).plan()["hb"].reasons[0]
    assert reason.startswith("incomplete at step") and reason.endswith("(interrupted run)"), reason
    from ssl_graph.report import write_report

    rep = write_report(Project(spec, str(store)), tmp_path / "report")
    assert ("training curves", "curves.png") in rep.images  # the interrupted curve is drawn
    assert (tmp_path / "report" / "curves.png").stat().st_size > 1000


def test_plan_shows_the_live_step_between_checkpoints(tmp_path):
    spec = _spec(tmp_path, steps=400, every=1000)  # no checkpoint while the test watches
    store = tmp_path / "store"
    out = tmp_path / "out.log"
    with open(out, "w") as o:
        proc = subprocess.Popen([sys.executable, "-m", "ssl_graph", "--store", str(store), "run",
                                 str(spec), "hb", "--no-progress", "--set", "hb.print_seconds=0"],
                                cwd=tmp_path, stdout=o, stderr=subprocess.STDOUT)
    try:
        deadline, reason, printed = time.time() + 240, "", 0
        while time.time() < deadline and proc.poll() is None:
            steps = re.findall(r"^hb: step (\d+)/400 \| loss", out.read_text(), re.M)
            printed = int(steps[-1]) if steps else 0
            if printed >= 3:
                reason = Project(spec, str(store)).plan()["hb"].reasons[0]
                break
            time.sleep(0.2)
        record = Project(spec, str(store)).store.record(Project(spec, str(store))["hb"].key)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert printed >= 3, out.read_text()  # --no-progress: plain lines, no bar
    assert "checkpoint" not in record and "step" not in record  # no checkpoint yet
    live = re.fullmatch(rf"running: pid {proc.pid} on .* at step (\d+)/400", reason)
    assert live and int(live[1]) >= 1, reason
