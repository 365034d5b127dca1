"""Two runs on one local store at the same time (real processes, bundled demo audio): disjoint
nodes are computed concurrently; a node the other run is computing is waited for and reused;
a node whose computing run is killed is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager

import numpy as np

import ssl_graph

from .conftest import (
    FAST_KM,
    SLOW_KM,
    describe_process,
    holding,
    spec_text,
    start,
    statuses,
    wait_for,
)


def test_disjoint_nodes_are_computed_at_the_same_time(shared):
    wd = shared
    (wd / "slow.py").write_text(spec_text(SLOW_KM.format(n=200)))
    (wd / "fast.py").write_text(spec_text(FAST_KM))
    a = start(wd, "slow.py")
    try:
        wait_for(lambda: holding(wd, "kmeans", a.pid) or a.poll() is not None,
                 what="the slow run to start its k-means")
        assert a.poll() is None, a.communicate()
        b, _ = statuses(start(wd, "fast.py"))  # not refused, not waiting: its nodes are its own
        assert a.poll() is None, "the slow run ended first: the two runs did not overlap"
        assert b["mfcc"][0] == "fresh" and b["km"][0] == "computed", b
        assert b["labels"][0] == "computed" and b["quality"][0] == "computed", b
        sa, _ = statuses(a)
    finally:
        a.kill()
    assert sa["km"][0] == "computed" and sa["quality"][0] == "computed", sa
    for spec, k in (("slow.py", 20), ("fast.py", 8)):
        p = ssl_graph.load(wd / spec, str(wd / "store"))
        assert p["km"].centroids.shape[0] == k
        assert all(0 <= int(p["labels"].labels(u).max()) < k for u in p["mfcc"].utterances())
    names = (wd / "store" / "names").iterdir()
    assert {n.name for n in names} >= {"slow.json", "fast.json", "base.json"}


def test_a_node_being_computed_is_waited_for_then_reused(shared):
    wd = shared
    (wd / "a.py").write_text(spec_text(SLOW_KM.format(n=200)))
    (wd / "b.py").write_text(spec_text(SLOW_KM.format(n=200)))  # same nodes, another spec file
    a = start(wd, "a.py")
    try:
        wait_for(lambda: holding(wd, "kmeans", a.pid) or a.poll() is not None,
                 what="run A to start its k-means")
        assert a.poll() is None, a.communicate()
        b = start(wd, "b.py")
        sb, err_b = statuses(b)
        sa, _ = statuses(a)
    finally:
        a.kill()
    host = socket.gethostname()
    assert f"waiting for km: computed by pid {a.pid} on {host} since " in err_b, err_b
    assert err_b.count("waiting for km:") == 1, err_b  # (then "still waiting" lines)
    assert sa["km"][0] == "computed", sa
    assert sb["km"] == ["fresh", ["computed by the run we waited for"]], sb
    assert all(s[0] == "fresh" for s in sb.values()), sb  # A finished everything B needed
    p = ssl_graph.load(wd / "b.py", str(wd / "store"))  # B's names point at A's results
    q = ssl_graph.load(wd / "a.py", str(wd / "store"))
    np.testing.assert_array_equal(p["km"].centroids, q["km"].centroids)
    assert p["quality"].metrics == q["quality"].metrics


@contextmanager
def b_waiting_for_a(wd, restarts: int, start_b):
    """Run A computing the k-means of ``a.py`` while run B (``start_b(stderr file)``) waits
    for it; yields (A, B, B's stderr file) and ends both however the test ends."""
    (wd / "a.py").write_text(spec_text(SLOW_KM.format(n=restarts)))
    (wd / "b.py").write_text(spec_text(SLOW_KM.format(n=restarts)))
    a = start(wd, "a.py")
    b = None
    try:
        wait_for(lambda: holding(wd, "kmeans", a.pid) or a.poll() is not None,
                 what="run A to start its k-means")
        assert a.poll() is None, a.communicate()
        err = wd / "b.err"
        with open(err, "w") as fh:
            b = start_b(fh)
            wait_for(lambda: "waiting for km" in err.read_text() or b.poll() is not None,
                     what="run B to wait for A's k-means")
            assert b.poll() is None, err.read_text()
            yield a, b, err
    finally:
        a.kill()
        if b is not None:
            b.kill()


def test_a_killed_runs_node_is_taken_over(shared):
    wd = shared
    with b_waiting_for_a(wd, 200, lambda fh: start(wd, "b.py", stderr=fh)) as (a, b, err):
        os.kill(a.pid, signal.SIGKILL)
        a.wait(30)
        sb, _ = statuses(b)
    assert sb["km"][0] == "computed" and sb["quality"][0] == "computed", sb
    assert f"pid {a.pid}" in err.read_text()
    p = ssl_graph.load(wd / "b.py", str(wd / "store"))
    assert p["km"].centroids.shape == (20, 39)
    assert statuses(start(wd, "a.py"))[0]["km"][0] == "fresh"  # A's rerun reuses B's result


def test_ctrl_c_while_waiting_for_another_runs_node_exits_at_once(shared):
    wd = shared

    def cli_run(fh):
        return subprocess.Popen([sys.executable, "-m", "ssl_graph", "run", "b.py", "--store",
                                 str(wd / "store"), "--no-progress"],
                                cwd=wd, stdout=fh, stderr=subprocess.STDOUT)

    # A must still be computing when B is interrupted: 2000 restarts is minutes of k-means even
    # on an idle box (A is killed when the test ends), 200 was not always enough
    with b_waiting_for_a(wd, 2000, cli_run) as (a, b, err):
        b.send_signal(signal.SIGINT)
        try:
            rc = b.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError("run B did not act on SIGINT within 10 s:\n"
                                 + describe_process(b.pid)) from None
        assert a.poll() is None  # A computes on; B only stopped waiting
    text = err.read_text()
    assert rc == 130 and "Traceback" not in text, text
