"""Kill harness: SIGKILL real ``ssl-graph run`` processes, rerun, compare with an uninterrupted run.

Shared by ``test_kill.py`` (a few chosen kill points) and ``benchmarks/kill_harness.py`` (many
seeded random ones). A reference run of a pipeline holding every node kind is made once, through
``_killed_run.py``, which logs each node start and store write and snapshots the store as each
node starts. A kill point then starts from the snapshot of the node it aims at (so a kill late in
the pipeline does not pay for the nodes before it), kills the run either from outside after a
delay or from inside at an exact write, runs ``verify`` on what the kill left, reruns to
completion, verifies again and compares every node's outputs with the reference's, bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..conftest import ROOT, make_corpus

RUNNER = Path(__file__).with_name("_killed_run.py")

#: every node kind, each as small as it can be and still do its work (a few training steps,
#: checkpoints every step or two so kills land between them, two MFCC worker processes)
SPEC = '''
from ssl_graph import MFCC, ASRScore, ClusterQuality, Corpus, KMeans, Labels, LayerFeatures
from ssl_graph.presets import finetune, hubert

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
mfcc = MFCC(corpus=corpus, workers=2)
km = KMeans(features=mfcc, k=20, fit_fraction=1.0, seed=0, max_iter=10)
labels = Labels(kmeans=km)
quality = ClusterQuality(labels=labels)
it1 = hubert(corpus, targets=labels, size="tiny", steps=4, batch_seconds=2.0, crop_seconds=1.0,
             checkpoint_every=1)
feats = LayerFeatures(model=it1, layer=1)
km2 = KMeans(features=feats, k=10, fit_fraction=1.0, seed=0, max_iter=10)
labels2 = Labels(kmeans=km2)
quality2 = ClusterQuality(labels=labels2)
ft = finetune(it1, units="char", labeled_minutes=0.5, size="tiny", steps=4, batch_seconds=4.0,
              checkpoint_every=2)
score = ASRScore(model=ft)
'''

#: record fields and logged values that measure time, not results
TIMING = {"updated", "seconds", "decode_seconds", "fit_seconds", "train_seconds", "audio_s_per_s"}
#: record fields that name where a result lives (parts, commits), not what it is
WHERE = {"commit", "index", "parts", "arrays", "checkpoint"}


def env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def cli(workdir: Path, store: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """A plain ``ssl-graph`` process (reruns and verify carry no instrumentation)."""
    return subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(store), *args],
                          cwd=workdir, env=env(), capture_output=True, text=True, timeout=timeout)


def watched(workdir: Path, store: Path, events: Path, **kill) -> subprocess.Popen:
    """``ssl-graph run pipe.py`` through ``_killed_run.py`` (``kill``: its KILL_* settings)."""
    extra = {f"KILL_{k.upper()}": str(v) for k, v in kill.items() if v is not None}
    return subprocess.Popen(
        [sys.executable, str(RUNNER), "--store", str(store), "run", "pipe.py", "--no-progress", "-q"],
        cwd=workdir, env={**env(), **extra, "KILL_EVENTS": str(events)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@dataclass
class Event:
    t: float
    what: str  # "start" | "write"
    node: str
    kind: str = ""  # start: the node's kind
    n: int = 0  # write: its number within the node
    op: str = ""  # write: file | array | delete
    key: str = ""


def read_events(path: Path) -> list[Event]:
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        f = line.split(" ")
        if len(f) == 4 and f[1] == "start":
            out.append(Event(float(f[0]), "start", f[2], kind=f[3]))
        elif len(f) == 6 and f[1] == "write":
            out.append(Event(float(f[0]), "write", f[2], n=int(f[3]), op=f[4], key=f[5]))
    return out  # a line torn by the kill is dropped


# ------------------------------------------------------------------------------ outputs
def _plain(rows):
    if isinstance(rows, dict):
        return {k: _plain(v) for k, v in rows.items() if k not in TIMING}
    if isinstance(rows, list):
        return [_plain(r) for r in rows]
    return rows


def outputs(workdir: Path, store: Path) -> dict[str, dict]:
    """Every node's results through the public API: name -> {item: value}."""
    from safetensors.numpy import load

    from ssl_graph.api import Project
    from ssl_graph.specs.nodes import Corpus, Labels

    p = Project(workdir / "pipe.py", str(store))
    out = {}
    for name in p.names:
        h, items = p[name], {}
        rec = h.record
        items["record"] = _plain({k: v for k, v in rec.items() if k not in WHERE | {"metrics"}})
        items["metrics"] = _plain(h.metrics)
        if h.node.per_utterance:
            if isinstance(h.node, Corpus):  # it stores lengths only (audio stays in the files)
                got = h.lengths()
            else:
                read = h.labels if isinstance(h.node, Labels) else h.features
                got = {u: read(u) for u in h.utterances()}
            items.update({f"utt {u}": a for u, a in got.items()})
        for arr in rec.get("arrays") or {}:
            items[f"array {arr}"] = h.array(arr)
        if rec.get("weights"):
            items["log"] = _plain(h.log())
            raw = p.store.backend.read_bytes(f"{h.key}/{rec['weights']}")
            items.update({f"weight {k}": v for k, v in load(raw).items()})
        if rec.get("hypotheses"):
            items["hypotheses"] = h.hypotheses()
        for doc in ("texts.json", "utts.json", "fit_utts.json", "split.json"):
            value = p.store.document(h.key, doc, object)
            if value is not None:
                items[doc] = value
        out[name] = items
    return out


def same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def differences(ref: dict, got: dict) -> list[str]:
    """'node: item' for every output that is missing, extra or not bit-identical."""
    diffs = []
    for name in sorted(ref.keys() | got.keys()):
        r, g = ref.get(name, {}), got.get(name, {})
        diffs += [f"{name}: {item}" for item in sorted(r.keys() | g.keys())
                  if item not in r or item not in g or not same(r[item], g[item])]
    return diffs


# ------------------------------------------------------------------------------ reference
@dataclass
class Reference:
    workdir: Path
    store: Path
    order: list[tuple[str, str]]  # (name, kind) in the order the run computes them
    snapshots: dict[str, Path]  # name -> the store as the run left it when that node started
    writes: dict[str, list[Event]]  # name -> its store writes
    spans: dict[str, tuple[float, float]]  # name -> (start, end) seconds from the first start
    outputs: dict[str, dict]
    seconds: float


def reference(workdir: Path, n_utts: int = 12) -> Reference:
    """Corpus + spec in ``workdir``, then one uninterrupted, watched run of the whole spec."""
    make_corpus(workdir, n_utts)
    (workdir / "pipe.py").write_text(SPEC)
    store, events, snaps = workdir / "ref-store", workdir / "ref-events", workdir / "snapshots"
    snaps.mkdir()
    t0 = time.monotonic()
    proc = watched(workdir, store, events, snapshots=snaps)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"reference run failed:\n{out}\n{err}"
    seconds = time.monotonic() - t0
    ev = read_events(events)
    starts = [e for e in ev if e.what == "start"]
    t_end = max(e.t for e in ev)
    spans = {s.node: (s.t - starts[0].t, (nxt.t if nxt else t_end) - starts[0].t)
             for s, nxt in zip(starts, [*starts[1:], None])}
    return Reference(
        workdir, store, [(s.node, s.kind) for s in starts],
        {s.node: snaps / f"{i:02d}" for i, s in enumerate(starts)},
        {s.node: [e for e in ev if e.what == "write" and e.node == s.node] for s in starts},
        spans, outputs(workdir, store), seconds)


# ------------------------------------------------------------------------------ kill points
@dataclass
class KillPoint:
    """Where to kill. ``node``: the run starts from the store as the reference left it when that
    node started (None: from an empty store). Then either ``write``: SIGKILL from inside at that
    node's n-th store write (``phase`` before/after/torn), or ``delay``: SIGKILL from outside that
    many seconds after ``after``'s start (its name, default ``node``; the first node when the run
    starts empty) — or after its ``after_write``-th write, or once MFCC ``workers`` are up."""

    node: str | None
    write: int | None = None
    phase: str = "before"
    delay: float = 0.0
    after: str | None = None
    after_write: int = 0
    workers: bool = False

    def __str__(self) -> str:
        start = f"from {self.node}" if self.node else "from empty"
        if self.write:
            return f"{start}, {self.phase} write {self.write}"
        what = "workers up" if self.workers else (
            f"write {self.after_write}" if self.after_write else "start")
        return f"{start}, {self.delay:.2f}s after {self.after or self.node or 'first'} {what}"


@dataclass
class Outcome:
    point: KillPoint
    killed_in: str  # the node computing when the kill landed ("-" if the run had finished)
    kind: str
    killed: bool
    verify_killed: list[str]  # DAMAGED lines of verify on what the kill left
    rerun_rc: int
    verify_rerun: list[str]
    diffs: list[str] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)  # MFCC workers alive after the kill
    seconds: float = 0.0
    message: str = ""

    @property
    def identical(self) -> bool:
        """The rerun succeeded, verifies clean and reproduces the reference."""
        return self.rerun_rc == 0 and not self.verify_rerun and not self.diffs and not self.orphans

    @property
    def ok(self) -> bool:
        return self.killed and self.identical


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def pool_processes(pid: int) -> tuple[list[int], list[int]]:
    """(workers, all) of a run's pool: workers are the processes its forkserver forked (the
    run's grandchildren); all adds the forkserver and the run's other children. Every one must
    die with the run."""
    direct = children(pid)
    workers = [w for c in direct for w in children(c)]
    return workers, direct + workers


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


def _damaged(res: subprocess.CompletedProcess) -> list[str]:
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("DAMAGED")]
    if res.returncode not in (0, 1) or (res.returncode == 1 and not lines):
        lines.append(f"verify exited {res.returncode}: {(res.stderr or res.stdout).strip()[-300:]}")
    return lines


def _kill_from_outside(proc: subprocess.Popen, events: Path, kp: KillPoint, first: str) -> list[int]:
    """Wait for the trigger, sleep, SIGKILL; returns the MFCC workers seen (to check they die)."""
    after = kp.after or kp.node or first
    deadline = time.monotonic() + 600
    workers: list[int] = []
    while proc.poll() is None and time.monotonic() < deadline:
        ev = read_events(events)
        started = any(e.what == "start" and e.node == after for e in ev)
        if kp.workers:
            workers, every = pool_processes(proc.pid) if started else ([], [])
            if len(workers) >= 2:
                workers = every
                break
        elif started and (not kp.after_write or any(
                e.what == "write" and e.node == after and e.n >= kp.after_write for e in ev)):
            break
        time.sleep(0.005)
    time.sleep(kp.delay)
    workers = workers or pool_processes(proc.pid)[1]
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    return workers


def run_point(ref: Reference, kp: KillPoint, where: Path, check_verify_after_kill: bool = True) -> Outcome:
    """One kill point, start to finish, in ``where`` (removed afterwards unless it failed)."""
    t0 = time.monotonic()
    where.mkdir(parents=True)
    store, events = where / "store", where / "events"
    if kp.node:
        shutil.copytree(ref.snapshots[kp.node], store)
    inside = dict(node=kp.node, write=kp.write, phase=kp.phase) if kp.write else {}
    proc = watched(ref.workdir, store, events, **inside)
    workers = [] if kp.write else _kill_from_outside(proc, events, kp, ref.order[0][0])
    out, err = proc.communicate(timeout=900)
    killed = proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    orphans = [w for w in workers if _alive(w)]
    for w in orphans:  # never leave them to block the next point
        os.kill(w, signal.SIGKILL)
    starts = [e for e in read_events(events) if e.what == "start"]
    killed_in, kind = (starts[-1].node, starts[-1].kind) if starts and killed else ("-", "-")
    if not killed and proc.returncode != 0:
        return Outcome(kp, killed_in, kind, False, [], proc.returncode, [], seconds=time.monotonic() - t0,
                       message=f"run exited {proc.returncode}: {err.strip()[-300:]}")
    verify_killed = _damaged(cli(ref.workdir, store, "verify")) if check_verify_after_kill else []
    rerun = cli(ref.workdir, store, "run", "pipe.py", "--no-progress", "-q")
    res = Outcome(kp, killed_in, kind, killed, verify_killed, rerun.returncode, [],
                  orphans=orphans, message=rerun.stderr.strip()[-300:] if rerun.returncode else "")
    if rerun.returncode == 0:
        res.verify_rerun = _damaged(cli(ref.workdir, store, "verify"))
        res.diffs = differences(ref.outputs, outputs(ref.workdir, store))
    res.seconds = time.monotonic() - t0
    if res.identical and not res.verify_killed:
        shutil.rmtree(where)
    return res


def describe(res: Outcome) -> str:
    state = "identical" if res.identical else "DIFFERS" if res.diffs else "FAILED"
    extra = "; ".join([*res.diffs[:3], *res.verify_killed[:2], *res.verify_rerun[:2],
                       *(f"orphan worker {w}" for w in res.orphans), res.message][:5])
    return f"{res.point}: killed in {res.killed_in} ({res.kind}): {state}" + (f" — {extra}" if extra else "")

