"""1 → 2 process scaling of a training node: the same spec and global batch, trained in one
process and under ``--launcher torchrun --nproc-per-node 2`` (gloo on CPU, NCCL on GPUs).

    python benchmarks/bench_ddp_scaling.py [--steps 30] [--batch-seconds 16] [--rounds 5]

Prints seconds per step (median of interleaved rounds, with min-max), the speedup (median of
the per-round ratios, same spread) and the scaling efficiency (speedup / 2), and the CPU-s of
each whole command: user + system of every process it ran (torchrun's ranks are its children,
waited for, so ``RUSAGE_CHILDREN`` of this process holds them all once the command returns).
On a 2-core CPU box each rank gets one core (``threads=1``), so this measures what DDP costs
against what a second core buys. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import hubert

corpus = Corpus(root="wav")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=50, fit_fraction=0.5))
hb = hubert(corpus, targets=labels, size="tiny", steps={steps}, batch_seconds={batch},
            crop_seconds=2.0, checkpoint_every=1000, threads=1)
'''


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def train_seconds(work: Path, ranks: int, steps: int) -> tuple[float, float]:
    """Train ``hb`` from scratch (its inputs cached in a shared store copy): its seconds/step
    and the CPU-s of the whole command (all ranks, the launcher, imports and plan)."""
    store = work / f"store-{ranks}"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(work / "base", store)
    cmd = [sys.executable, "-m", "ssl_graph", "--store", str(store), "run", str(work / "p.py"),
           "hb", "--no-progress", "-q"]
    if ranks > 1:
        cmd += ["--launcher", "torchrun", "--nproc-per-node", str(ranks)]
    c0 = _children_cpu()
    subprocess.run(cmd, check=True, cwd=work, stdout=subprocess.DEVNULL)
    cpu = _children_cpu() - c0
    import ssl_graph

    metrics = ssl_graph.load(work / "p.py", str(store))["hb"].metrics
    return metrics["train_seconds"] / steps, cpu


def measure_rounds(steps: int = 30, batch_seconds: float = 16.0,
                   rounds: int = 5) -> dict[int, list[tuple[float, float]]]:
    """(seconds per step, CPU-s of the command) per round, 1 process and 2 torchrun ranks,
    interleaved rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "data" / "demo" / "wav", work / "wav")
        (work / "p.py").write_text(SPEC.format(steps=steps, batch=batch_seconds))
        subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(work / "base"), "run",
                        str(work / "p.py"), "labels", "--no-progress", "-q"], check=True, cwd=work,
                       stdout=subprocess.DEVNULL)
        times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for _ in range(rounds):  # interleaved
            for ranks in (1, 2):
                times[ranks].append(train_seconds(work, ranks, steps))
    return times


def report_rounds(times: dict[int, list[tuple[float, float]]], steps: int,
                  batch_seconds: float) -> None:
    """Medians with min-max over the interleaved rounds; speedup per round (same round)."""
    def mm(xs):
        return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"

    rounds = len(times[1])
    print(f"tiny HuBERT, {batch_seconds:g} s global batch, {steps} steps, {rounds} interleaved "
          f"rounds, cpus={os.cpu_count()}, load avg {os.getloadavg()[0]:.2f}; median (min-max):")
    for ranks, label in ((1, "1 process"), (2, "2 ranks  ")):
        print(f"  {label}: {mm([t for t, _ in times[ranks]])} s/step, CPU-s of the command "
              f"{mm([c for _, c in times[ranks]])}")
    ratios = [a / b for (a, _), (b, _) in zip(times[1], times[2])]
    print(f"  speedup {mm(ratios)}x, scaling efficiency {statistics.median(ratios) / 2:.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-seconds", type=float, default=16.0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    report_rounds(measure_rounds(args.steps, args.batch_seconds, args.rounds), args.steps,
                  args.batch_seconds)


if __name__ == "__main__":
    main()
