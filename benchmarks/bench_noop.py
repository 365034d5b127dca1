"""No-op latency: `ssl-graph plan/run specs/demo.py` on a fresh store vs `dvc repro` of the same
five stages (corpus, mfcc, kmeans, labels, quality), both with nothing to do.

Usage: python benchmarks/bench_noop.py [--repeats 10] [--startup-only] [--baseline DIR]
Needs the demo computed once (the script does it) and, for the peer, `dvc` on PATH
(`pip install dvc`); without dvc it prints our numbers only.

Start-up first: CPU-s (user + sys of the child) of bare Python, `ssl-graph --help` and a no-op
`ssl-graph plan` of a small spec (Corpus → MFCC → KMeans → Labels over the 155 demo files,
computed once), interleaved, medians; the issue's goal for the small plan is ≤ 0.2 CPU-s.
``--baseline DIR``: another copy of the project (``git archive <commit> | tar -x -C DIR``), whose
small plan is timed in the same rounds, on the same store, for a before/after on a shared box.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(cmd: list[str], cwd: Path, repeats: int, env=None) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


DVC_YAML = """stages:
  corpus:   {cmd: python stage.py corpus,   deps: [wav, stage.py], outs: [corpus.txt]}
  mfcc:     {cmd: python stage.py mfcc,     deps: [corpus.txt], outs: [mfcc.txt]}
  kmeans:   {cmd: python stage.py kmeans,   deps: [mfcc.txt], params: [k], outs: [km.txt]}
  labels:   {cmd: python stage.py labels,   deps: [km.txt, mfcc.txt], outs: [labels.txt]}
  quality:  {cmd: python stage.py quality,  deps: [labels.txt, alignments.tsv], outs: [q.txt]}
"""
STAGE = """import sys
names = {'corpus': 'corpus.txt', 'mfcc': 'mfcc.txt', 'kmeans': 'km.txt', 'labels': 'labels.txt', 'quality': 'q.txt'}
open(names[sys.argv[1]], 'w').write(sys.argv[1])
"""


def dvc_noop(repeats: int) -> float | None:
    dvc = shutil.which("dvc") or (str(BIN / "dvc") if (BIN / "dvc").exists() else None)
    if dvc is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        shutil.copytree(ROOT / "data" / "demo" / "wav", d / "wav")
        shutil.copy(ROOT / "data" / "demo" / "alignments.tsv", d)
        (d / "dvc.yaml").write_text(DVC_YAML)
        (d / "params.yaml").write_text("k: 100\n")
        (d / "stage.py").write_text(STAGE)
        env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        subprocess.run(["git", "init", "-q"], cwd=d, check=True)
        subprocess.run([dvc, "init", "-q"], cwd=d, check=True, env=env)
        subprocess.run([dvc, "repro", "-q"], cwd=d, check=True, env=env, capture_output=True)
        return timed([dvc, "repro", "-q"], d, repeats, env)


SMALL_SPEC = f"""from ssl_graph import MFCC, Corpus, KMeans, Labels

corpus = Corpus(root={str(ROOT / "data" / "demo" / "wav")!r}, glob="*.flac")
mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k=8, fit_fraction=0.5, max_iter=5, seed=0)
labels = Labels(kmeans=km)
"""


def cpu_s(cmd: list[str], cwd: Path, env: dict) -> float:
    """User + sys CPU-s of the child."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return usage.ru_utime + usage.ru_stime


def startup(repeats: int, baseline: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    outer = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), outer]))
    py = sys.executable
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "spec.py").write_text(SMALL_SPEC)
        env["SSL_GRAPH_STORE"] = str(d / "store")
        subprocess.run([py, "-m", "ssl_graph", "run", "spec.py", "--no-progress", "-q"], cwd=d,
                       env=env, check=True, capture_output=True)
        plan = [py, "-m", "ssl_graph", "plan", "spec.py"]
        cmds = {"python -c pass": ([py, "-c", "pass"], env),
                "ssl-graph --help": ([py, "-m", "ssl_graph", "--help"], env),
                "ssl-graph plan (small, 155 files)": (plan, env)}
        if baseline is not None:
            old = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(baseline), outer]))}
            cpu_s(plan, d, old)  # (its bytecode compiled once, as this checkout's is)
            cmds["  the same, --baseline checkout"] = (plan, old)
        got: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(repeats):
            for name, (cmd, cmd_env) in cmds.items():
                got[name].append(cpu_s(cmd, d, cmd_env))
    print(f"{'start-up (CPU-s, median of ' + str(repeats) + ')':<40}{'CPU-s':>8}{'min':>8}")
    for name, vals in got.items():
        print(f"{name:<40}{statistics.median(vals):>8.3f}{min(vals):>8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--startup-only", action="store_true")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout whose small plan is timed in the same rounds")
    args = ap.parse_args()
    startup(args.repeats, args.baseline)
    if args.startup_only:
        return
    cli = str(BIN / "ssl-graph")
    with tempfile.TemporaryDirectory() as store:
        env = {**os.environ, "SSL_GRAPH_STORE": store}
        subprocess.run([cli, "run", "specs/demo.py", "--no-progress", "-q"], cwd=ROOT, check=True,
                       env=env, capture_output=True)
        plan = timed([cli, "plan", "specs/demo.py"], ROOT, args.repeats, env)
        run = timed([cli, "run", "specs/demo.py", "--no-progress", "-q"], ROOT, args.repeats, env)
    peer = dvc_noop(args.repeats)
    print(f"{'no-op command':<34}{'median s':>10}")
    print(f"{'ssl-graph plan specs/demo.py':<34}{plan:>10.3f}")
    print(f"{'ssl-graph run specs/demo.py':<34}{run:>10.3f}")
    if peer is not None:
        print(f"{'dvc repro (same 5 stages)':<34}{peer:>10.3f}")
        print(f"ratio dvc/ssl-graph run: {peer / run:.2f}x")
    else:
        print("dvc not installed: `pip install dvc` to measure the peer in the same run")


if __name__ == "__main__":
    main()
