"""1 → 2 process scaling of a training node: the same spec and global batch, trained in one
process and under ``--launcher torchrun --nproc-per-node 2`` (gloo on CPU, NCCL on GPUs).

    python benchmarks/bench_ddp_scaling.py [--steps 30] [--batch-seconds 16] [--rounds 2]

Prints seconds per step (median of rounds, interleaved), the speedup and the scaling efficiency
(speedup / 2). On a 2-core CPU box each rank gets one core (``threads=1``), so this measures what
DDP costs against what a second core buys. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import os
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


def train_seconds(work: Path, ranks: int, steps: int) -> float:
    """Train ``hb`` from scratch (its inputs cached in a shared store copy); its seconds/step."""
    store = work / f"store-{ranks}"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(work / "base", store)
    cmd = [sys.executable, "-m", "ssl_graph", "--store", str(store), "run", str(work / "p.py"),
           "hb", "--no-progress", "-q"]
    if ranks > 1:
        cmd += ["--launcher", "torchrun", "--nproc-per-node", str(ranks)]
    subprocess.run(cmd, check=True, cwd=work, stdout=subprocess.DEVNULL)
    import ssl_graph

    metrics = ssl_graph.load(work / "p.py", str(store))["hb"].metrics
    return metrics["train_seconds"] / steps


def measure(steps: int = 30, batch_seconds: float = 16.0, rounds: int = 2) -> tuple[float, float]:
    """Median seconds per step with 1 process and with 2 torchrun ranks, interleaved rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "data" / "demo" / "wav", work / "wav")
        (work / "p.py").write_text(SPEC.format(steps=steps, batch=batch_seconds))
        subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(work / "base"), "run",
                        str(work / "p.py"), "labels", "--no-progress", "-q"], check=True, cwd=work,
                       stdout=subprocess.DEVNULL)
        times = {1: [], 2: []}
        for _ in range(rounds):  # interleaved
            for ranks in (1, 2):
                times[ranks].append(train_seconds(work, ranks, steps))
    return statistics.median(times[1]), statistics.median(times[2])


def report(one: float, two: float, steps: int, batch_seconds: float) -> None:
    print(f"tiny HuBERT, {batch_seconds:g} s global batch, {steps} steps, "
          f"cpus={os.cpu_count()}, load avg {os.getloadavg()[0]:.2f}")
    print(f"  1 process : {one:.3f} s/step")
    print(f"  2 ranks   : {two:.3f} s/step   speedup {one / two:.2f}×, "
          f"scaling efficiency {one / two / 2:.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-seconds", type=float, default=16.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    one, two = measure(args.steps, args.batch_seconds, args.rounds)
    report(one, two, args.steps, args.batch_seconds)


if __name__ == "__main__":
    main()
