"""The writer lock under real processes: SIGKILL with MFCC worker pools, a lock left by a dead
holder, concurrent runs, readable lock messages (defect 2), and URL stores (defect 10)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import textwrap
from pathlib import Path

import numpy as np

from ssl_graph.audio.io import read_audio
from ssl_graph.audio.mfcc import mfcc_hubert

from ..conftest import DEMO
from ._kill import pool_processes
from .conftest import assert_same, cli, cli_proc, n_nodes, one_line_error, ran, snapshot, wait_for

WORKERS_SPEC = '''
from ssl_graph import MFCC, Corpus

corpus = Corpus(root="wav")
mfcc = MFCC(corpus=corpus, workers=2)
'''


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _kill_all(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_sigkill_during_mfcc_with_workers_leaves_the_store_writable(tmp_path):
    wav = tmp_path / "wav"
    wav.mkdir()
    for f in sorted((DEMO / "wav").glob("*.flac"))[:24]:  # 96 utterances: seconds of MFCC
        for i in range(4):
            shutil.copy2(f, wav / f"{f.stem}-{i}.flac")
    (tmp_path / "pipe.py").write_text(WORKERS_SPEC)
    proc = cli_proc(tmp_path, "run", "pipe.py", "--no-progress")
    workers: list[int] = []
    try:
        wait_for(lambda: len(pool_processes(proc.pid)[0]) >= 2 or proc.poll() is not None,
                 what="the MFCC worker pool")
        workers = pool_processes(proc.pid)[1]  # the workers, their forkserver, the tracker
        assert proc.poll() is None and len(workers) >= 3, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        wait_for(lambda: all(_gone(w) for w in workers), timeout=10,
                 what="the workers to die with their parent")
    finally:
        _kill_all([proc.pid, *workers])
    res = cli(tmp_path, "run", str(tmp_path / "pipe.py"), "--no-progress", "-q")
    assert res.exit_code == 0, res.output  # was: "being written by {pid: <dead>}"
    assert ran(res.output, 2) or ran(res.output, 1), res.output
    import ssl_graph

    p = ssl_graph.load(tmp_path / "pipe.py", str(tmp_path / "store"))
    assert len(p["mfcc"].utterances()) == 96
    for utt in ("car-0006-0", sorted(p["mfcc"].utterances())[-1]):
        expected = mfcc_hubert(read_audio(wav / f"{utt}.flac", utt))
        np.testing.assert_array_equal(p["mfcc"].features(utt), expected)


ORPHAN = textwrap.dedent('''
    import fcntl, json, os, socket, sys, time
    fd = os.open(os.path.join(sys.argv[1], ".lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a run whose forked workers kept the lock fd
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": "2026-01-01T00:00:00"}).encode())
    child = os.fork()
    if child == 0:
        time.sleep(120)
        os._exit(0)
    print(child, flush=True)
    time.sleep(120)
''')


def test_lock_of_a_dead_holder_is_reported_and_cleared(computed):
    wd, snap = computed
    import subprocess

    holder = subprocess.Popen([sys.executable, "-c", ORPHAN, str(wd / "store")],
                              stdout=subprocess.PIPE, text=True)
    orphan = int(holder.stdout.readline())
    try:
        holder.kill()
        holder.wait(10)
        res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
        assert res.exit_code == 0, res.output
        assert f"pid {holder.pid} on {socket.gethostname()}" in res.output
        assert "no longer running" in res.output and "lock was cleared" in res.output
        assert "{" not in res.output
        res = cli(wd, "gc")  # and the next writer finds a normal lock again
        assert res.exit_code == 0 and "cleared" not in res.output
    finally:
        _kill_all([orphan])
    assert_same(snapshot(wd), snap)


def test_gc_during_a_run_is_refused_and_a_second_run_is_not(computed):
    wd, snap = computed
    spec = (wd / "pipe.py").read_text().replace("max_iter=30)", "max_iter=300, n_init=150, tol=0.0)")
    (wd / "slow.py").write_text(spec)
    proc = cli_proc(wd, "run", "slow.py", "--no-progress", "-q")
    reg = wd / "store" / "locks" / "runs" / f"{socket.gethostname()}-{proc.pid}.json"
    try:
        wait_for(reg.exists, what="the first run to take the lock")
        res = cli(wd, "gc")
        line = one_line_error(res, f"being written by pid {proc.pid} on {socket.gethostname()}")
        assert "{" not in line and "wait for that to finish" in line
        # runs share the store: a run of the other spec (all fresh) goes through meanwhile
        res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
        assert res.exit_code == 0 and ran(res.output, 0), res.output
        assert proc.poll() is None, "the slow run ended before the checks: make it slower"
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    finally:
        _kill_all([proc.pid])
    assert ran(out, 3)
    assert cli(wd, "verify").exit_code == 0
    assert_same(snapshot(wd), snap)  # pipe.py's own results untouched by the other spec's run


def test_local_url_store_is_written_and_locked(computed):
    wd, snap = computed
    url = f"local://{wd / 'store2'}"
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q", store=url)
    assert res.exit_code == 0 and ran(res.output, n_nodes(wd)), res.output
    assert (wd / "store2" / ".lock").exists() and (wd / "store2" / "locks").is_dir()
    utt = sorted(snap["mfcc"])[0]
    res = cli(wd, "query", "features", f"{wd / 'pipe.py'}:mfcc", "--utt", utt, "--json", store=url)
    np.testing.assert_array_equal(np.asarray(json.loads(res.output)["data"], np.float32),
                                  snap["mfcc"][utt])
