"""No-op latency at corpus scale: `ssl-graph plan/run` vs `dvc status`/`dvc repro`, nothing to do.

For each N (default 2k, 10k, 50k, 250k) the script builds a corpus of N short WAV files — hard
links to 0.1 s clips cut from the bundled `data/demo` audio, 1000 per sub-directory — computes
Corpus → MFCC → KMeans → Labels once, runs each side's no-op once to warm the page cache, then
times the no-op commands, interleaved (ours, dvc, ours, dvc, ...) so a loaded machine slows both
sides alike. CPU-s = user + sys of the child
process (``os.wait4``), the cost every command pays; wall = what the user waits.

The dvc side is an equivalent repo: the same audio directory as a dependency of a four-stage
dvc.yaml (`pip install dvc`; skipped when dvc is missing, or at N ≥ ``--dvc-max``).

Growth step (``--grow 0.01``, 0 to skip): after the clean no-ops, 1 % more files are added
(``wav/grown/``), each side computes them once (``ssl-graph run`` with the k-means kept,
``refit_on_growth=False``; ``dvc repro``), and the no-ops are timed again the same way: a no-op
after growth should cost what a clean one costs. The table gives ``dvc status`` / ours for both.

Usage: python benchmarks/bench_scale.py [--sizes 2000,10000,50000,250000] [--repeats 3]
       [--grow 0.01] [--workdir DIR (kept, reused: corpora and stores are built once per N)]
       [--profile N]
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
CLIP_SECONDS = 0.1
PER_DIR = 1000

SPEC = """from ssl_graph import MFCC, Corpus, KMeans, Labels

corpus = Corpus(root="wav", glob="**/*.wav")
mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k=8, fit_fraction=0.02, max_iter=5, seed=0)
labels = Labels(kmeans=km)
"""

DVC_YAML = """stages:
  corpus: {cmd: python stage.py corpus, deps: [wav, stage.py], outs: [corpus.txt]}
  mfcc:   {cmd: python stage.py mfcc,   deps: [corpus.txt], outs: [mfcc.txt]}
  kmeans: {cmd: python stage.py kmeans, deps: [mfcc.txt], params: [k], outs: [km.txt]}
  labels: {cmd: python stage.py labels, deps: [km.txt, mfcc.txt], outs: [labels.txt]}
"""
STAGE = """import sys
names = {'corpus': 'corpus.txt', 'mfcc': 'mfcc.txt', 'kmeans': 'km.txt', 'labels': 'labels.txt'}
open(names[sys.argv[1]], 'w').write(sys.argv[1])
"""


def clips(dest: Path) -> list[Path]:
    """0.1 s mono 16 kHz WAV clips of the bundled utterances (short files keep the one-time
    compute of 250k utterances within minutes; the no-op cost is per file, not per second)."""
    import soundfile as sf

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sorted((ROOT / "data" / "demo" / "wav").glob("*.flac")):
        p = dest / f"{src.stem}.wav"
        if not p.exists():
            audio, sr = sf.read(src, frames=int(CLIP_SECONDS * 16000), dtype="float32")
            sf.write(p, audio, sr)
        out.append(p)
    return out


def make_corpus(d: Path, n: int) -> Path:
    """``d/wav/dNNN/uNNNNNNN.wav``: n hard links to the clips (no audio bytes copied)."""
    wav = d / "wav"
    if (d / f".built-{n}").exists():
        return wav
    sources = clips(d.parent / "clips")
    for i in range(n):
        sub = wav / f"d{i // PER_DIR:04d}"
        if i % PER_DIR == 0:
            sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"u{i:07d}.wav"
        if not p.exists():
            os.link(sources[i % len(sources)], p)
    (d / f".built-{n}").touch()
    return wav


def grow_corpus(d: Path, n: int, fraction: float) -> int:
    """``d/wav/grown/gNNNNNNN.wav``: ``fraction`` × n more hard links (a new directory, as a
    new batch of recordings arrives)."""
    sources = clips(d.parent / "clips")
    sub = d / "wav" / "grown"
    sub.mkdir(parents=True, exist_ok=True)
    extra = max(1, round(n * fraction))
    for i in range(extra):
        p = sub / f"g{i:07d}.wav"
        if not p.exists():
            os.link(sources[(i * 7 + 3) % len(sources)], p)
    return extra


def ungrow(d: Path, cmds: dict, env: dict) -> None:
    """A workdir reused after a growth step: back to the N files (each side recomputes once)."""
    if (d / "wav" / "grown").exists():
        shutil.rmtree(d / "wav" / "grown")
        for name in ("ssl-graph run", "dvc repro"):
            if name in cmds:
                measure(cmds[name], d, env)


def rounds(cmds: dict, d: Path, env: dict, repeats: int, n: int, rows: list, tag: str = "") -> None:
    """Each command once per round (interleaved), ``repeats`` rounds; median CPU-s and wall."""
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    for _ in range(repeats):
        for name, cmd in cmds.items():
            got[name].append(measure(cmd, d, env))
    for name, vals in got.items():
        cpu = statistics.median(v[0] for v in vals)
        wall = statistics.median(v[1] for v in vals)
        rows.append((n, name + tag, cpu, wall))
        print(f"  {name + tag:<30} CPU {cpu:7.2f} s   wall {wall:7.2f} s", flush=True)


def measure(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(CPU-s of the child: user + sys, wall s)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{err[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall


def dvc_bin() -> str | None:
    return shutil.which("dvc") or (str(BIN / "dvc") if (BIN / "dvc").exists() else None)


def setup_ours(d: Path, env: dict) -> None:
    (d / "spec.py").write_text(SPEC)
    if not (d / ".computed").exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ssl_graph", "run", "spec.py", "--no-progress",
                        "-q"], cwd=d, env=env, check=True)
        print(f"  (computed once in {time.perf_counter() - t0:.0f} s)", flush=True)
        (d / ".computed").touch()


def setup_dvc(d: Path, dvc: str, env: dict) -> None:
    (d / "dvc.yaml").write_text(DVC_YAML)
    (d / "params.yaml").write_text("k: 8\n")
    (d / "stage.py").write_text(STAGE)
    if not (d / ".dvc").exists():
        subprocess.run(["git", "init", "-q"], cwd=d, check=True)
        subprocess.run([dvc, "init", "-q"], cwd=d, check=True, env=env)
    if not (d / ".dvc-computed").exists():
        t0 = time.perf_counter()
        subprocess.run([dvc, "repro", "-q"], cwd=d, check=True, env=env, capture_output=True)
        print(f"  (dvc repro once in {time.perf_counter() - t0:.0f} s)", flush=True)
        (d / ".dvc-computed").touch()


def profile(d: Path, env: dict) -> None:
    out = d / "noop.prof"
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "ssl_graph", "run",
                    "spec.py", "--no-progress", "-q"], cwd=d, env=env, check=True)
    import pstats

    pstats.Stats(str(out)).sort_stats("cumulative").print_stats(25)
    pstats.Stats(str(out)).sort_stats("tottime").print_stats(15)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2000,10000,50000,250000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--dvc-max", type=int, default=10**9,
                    help="skip dvc at N above this (its first repro hashes every file)")
    ap.add_argument("--profile", type=int, default=None, help="cProfile a no-op run at this N")
    ap.add_argument("--grow", type=float, default=0.01,
                    help="after the clean no-ops, add this fraction of files, compute, time again")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scale-"))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "SSL_GRAPH_STORE": "store",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # both sides start from compiled bytecode, as installed
    dvc = dvc_bin()
    ours = [sys.executable, "-m", "ssl_graph"]
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        d = work / f"n{n}"
        d.mkdir(parents=True, exist_ok=True)
        print(f"N={n}: corpus in {d}", flush=True)
        make_corpus(d, n)
        setup_ours(d, env)
        use_dvc = dvc is not None and n <= args.dvc_max
        if use_dvc:
            setup_dvc(d, dvc, env)
        cmds = {"ssl-graph plan": ours + ["plan", "spec.py"],
                "ssl-graph run": ours + ["run", "spec.py", "--no-progress", "-q"]}
        if use_dvc:
            cmds |= {"dvc status": [dvc, "status", "-q"], "dvc repro": [dvc, "repro", "-q"]}
        ungrow(d, cmds, env)
        for name in ("ssl-graph run", "dvc status"):  # warm the page cache (and our scan cache)
            if name in cmds:
                measure(cmds[name], d, env)
        rounds(cmds, d, env, args.repeats, n, rows)
        if args.grow:
            extra = grow_corpus(d, n, args.grow)
            print(f"  grown by {extra} files", flush=True)
            for name in ("ssl-graph run", "dvc repro"):  # each side computes the growth once
                if name in cmds:
                    cpu, wall = measure(cmds[name], d, env)
                    print(f"  {name + ' (the growth)':<30} CPU {cpu:7.2f} s   wall {wall:7.2f} s",
                          flush=True)
            noops = {k: v for k, v in cmds.items() if k != "dvc repro"}
            rounds(noops, d, env, args.repeats, n, rows, " (grown)")
        if args.profile == n:
            profile(d, env)
    print(f"\n{'N':>8}  {'command':<26}{'CPU-s':>8}{'wall s':>8}{'dvc status / this (CPU)':>26}")
    for n, name, cpu, wall in rows:
        tag = " (grown)" if name.endswith(" (grown)") else ""
        peer = next((c for m, k, c, _ in rows if m == n and k == "dvc status" + tag), None)
        ratio = f"{peer / cpu:.1f}x" if peer and name.startswith("ssl-graph") else ""
        print(f"{n:>8}  {name:<26}{cpu:>8.2f}{wall:>8.2f}{ratio:>26}")
    for n in sorted({r[0] for r in rows}):
        clean = {k: c for m, k, c, _ in rows if m == n}
        for name in ("ssl-graph plan", "ssl-graph run"):
            if name + " (grown)" in clean:
                print(f"{n:>8}  {name}: no-op after growth / clean no-op "
                      f"{clean[name + ' (grown)'] / clean[name]:.2f} (CPU)")
    if dvc is None:
        print("dvc not installed: `pip install dvc` to measure the peer in the same run")
    print(f"(median of {args.repeats}, interleaved; workdir {work})")


if __name__ == "__main__":
    main()
