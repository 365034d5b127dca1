"""`plan` tells a node a live process is training ("running: pid … step x/y") from one an
interrupted run left behind ("incomplete at step x/y (interrupted run)")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ssl_graph.api import Project

from .test_runtime import _spec


def test_plan_says_running_while_a_live_process_trains(tmp_path):
    spec = _spec(tmp_path, steps=400, every=2)
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "ssl_graph", "--store", str(store), "run",
                             str(spec), "--no-progress", "-q"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
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
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    reason = Project(spec, str(store)).plan()["hb"].reasons[0]
    assert reason.startswith("incomplete at step") and reason.endswith("(interrupted run)"), reason
    from ssl_graph.report import write_report

    rep = write_report(Project(spec, str(store)), tmp_path / "report")
    assert ("training curves", "curves.png") in rep.images  # the interrupted curve is drawn
    assert (tmp_path / "report" / "curves.png").stat().st_size > 1000
