"""Two real ``ssl_graph`` processes on one store: a corpus slice, specs, and process helpers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import ROOT, make_corpus

HEAD = '''
from ssl_graph import MFCC, ClusterQuality, Corpus, KMeans, Labels

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
mfcc = MFCC(corpus=corpus)
'''
#: a k-means that takes seconds (many restarts, no early stop): long enough to overlap with
SLOW_KM = "km = KMeans(features=mfcc, k=20, fit_fraction=1.0, seed=0, max_iter=300, n_init={n}, tol=0.0)\n"
FAST_KM = "km = KMeans(features=mfcc, k=8, fit_fraction=1.0, seed=0, max_iter=30)\n"
TAIL = "labels = Labels(kmeans=km)\nquality = ClusterQuality(labels=labels)\n"


def spec_text(km: str) -> str:
    return HEAD + km + TAIL


@pytest.fixture
def shared(tmp_path) -> Path:
    """A workdir with 12 demo utterances whose MFCC is already in the store (shared input)."""
    make_corpus(tmp_path, 12)
    (tmp_path / "base.py").write_text(HEAD)
    proc = start(tmp_path, "base.py")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return tmp_path


def start(wd: Path, spec: str, store: str | None = None, env: dict | None = None,
          stderr=subprocess.PIPE) -> subprocess.Popen:
    """``tests/shared/_drive.py SPEC STORE`` as a real process."""
    penv = {**os.environ, **(env or {}),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_drive.py")), spec,
         store or str(wd / "store")],
        cwd=wd, env=penv, stdout=subprocess.PIPE, stderr=stderr, text=True)


def statuses(proc: subprocess.Popen, timeout: float = 600) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def holding(wd: Path, kind: str, pid: int) -> bool:
    """Process ``pid`` holds the lock of the store's ``kind`` node (its holder record)."""
    for f in (wd / "store" / "locks").glob(f"{kind}-*.lock"):
        try:
            if json.loads(f.read_text() or "{}").get("pid") == pid:
                return True
        except (OSError, ValueError):
            continue
    return False


def wait_for(cond, timeout: float = 120.0, what: str = "condition") -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def describe_process(pid: int) -> str:
    """What a process that does not act on a signal is doing: its signal masks, threads (state,
    kernel wait channel), children, the environment that changes how a run runs, and its Python
    stack (``py-spy``, where installed). For the message of a failed wait."""
    import shutil

    proc = Path(f"/proc/{pid}")
    lines = [f"pid {pid}:"]
    try:
        lines += [ln for ln in (proc / "status").read_text().splitlines()
                  if ln.split(":")[0] in ("State", "PPid", "Threads", "SigQ", "SigPnd", "ShdPnd",
                                          "SigBlk", "SigIgn", "SigCgt")]
        masks = {ln.split(":")[0]: int(ln.split()[1], 16) for ln in lines[1:]
                 if ln.startswith(("SigIgn", "SigBlk", "SigCgt"))}
        bit = 1 << (signal.SIGINT - 1)
        lines.append("SIGINT: " + (", ".join(
            w for k, w in (("SigIgn", "ignored"), ("SigBlk", "blocked"), ("SigCgt", "caught"))
            if masks.get(k, 0) & bit) or "default (kills)"))
        lines.append("cmdline: " + (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        for task in sorted((proc / "task").iterdir(), key=lambda p: int(p.name)):
            stat = (task / "stat").read_text()
            name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
            wchan = (task / "wchan").read_text() if (task / "wchan").exists() else "?"
            status = dict(ln.split(":\t", 1) for ln in (task / "status").read_text().splitlines()
                          if ":\t" in ln)
            lines.append(f"  task {task.name} ({name}) {state} wchan={wchan} "
                         f"SigBlk={status.get('SigBlk')} SigPnd={status.get('SigPnd')}")
        env = dict(kv.split("=", 1) for kv in (proc / "environ").read_bytes().decode(
            errors="replace").split("\0") if "=" in kv)
        lines.append("env: " + " ".join(f"{k}={v[:60]}" for k, v in sorted(env.items())
                                        if k.startswith(("SSL_GRAPH", "PYTHON", "OMP", "MKL",
                                                         "NUMBA", "OPENBLAS", "DASK", "TORCH"))))
    except OSError as exc:
        lines.append(f"  ({exc})")
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                    lines.append(f"  child {p.name}: "
                                 + (p / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except (OSError, ValueError):
                continue
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if Path(spy).exists():
        try:
            out = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True,
                                 text=True, timeout=30)
            lines.append(out.stdout + out.stderr)
        except (OSError, subprocess.TimeoutExpired) as exc:
            lines.append(f"py-spy: {exc}")
    return "\n".join(lines)
