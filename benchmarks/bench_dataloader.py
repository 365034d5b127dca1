"""Training data loading: audio-seconds/s of ``Pretrain``'s batches with 0 vs N DataLoader workers.

Batches are ``CropSampler.batch(step)`` over ``data/demo/wav`` (decode FLAC, crop, stack) with
the decoded-audio cache off, so every step decodes as a first epoch on a large corpus does.
Two numbers per worker count:

* ``loader``: batches alone, as fast as the loader hands them over;
* ``with step``: the main thread also spends ``--step-ms`` per batch (a stand-in for the
  training step), which is where workers pay off: decoding overlaps the step instead of
  adding to it.

    python benchmarks/bench_dataloader.py --steps 40 --workers 0 2

Measured on the 2-core dev box (load ~3, 30 steps): loader alone 483 (0 workers) vs 1438
(2 workers) audio-s/s; beside a 200 ms step 232 vs 276, where 300 means decoding is hidden.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import soundfile as sf

from ssl_graph.train.data import CropSampler
from ssl_graph.train.loader import step_batches

ROOT = Path(__file__).resolve().parents[1]


def measure(sampler, steps: int, workers: int, step_ms: float) -> float:
    t0, audio = time.perf_counter(), 0.0
    for _, batch in step_batches(sampler.batch, 0, steps, workers=workers, device="cpu"):
        audio += batch["wave"].numel() / 16000
        if step_ms:
            end = time.perf_counter() + step_ms / 1000
            while time.perf_counter() < end:  # busy, like a CPU training step
                pass
    return audio / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--batch-seconds", type=float, default=60.0)
    ap.add_argument("--crop-seconds", type=float, default=4.0)
    ap.add_argument("--step-ms", type=float, default=200.0)
    args = ap.parse_args()
    files = sorted((ROOT / "data" / "demo" / "wav").glob("*.flac"))
    paths = {f.stem: f for f in files}
    lengths = {f.stem: sf.info(str(f)).frames for f in files}
    sampler = CropSampler(paths, lengths, sample_rate=16000, batch_seconds=args.batch_seconds,
                          crop_seconds=args.crop_seconds, min_seconds=1.0, seed=0, cache_bytes=0)
    print(f"{len(files)} files, {args.batch_seconds:g} s batches of {args.crop_seconds:g} s "
          f"crops, {args.steps} steps, step stand-in {args.step_ms:g} ms")
    print(f"{'workers':>8} {'loader audio-s/s':>18} {'with step audio-s/s':>20}")
    for w in args.workers:
        alone = measure(sampler, args.steps, w, 0.0)
        busy = measure(sampler, args.steps, w, args.step_ms)
        print(f"{w:>8} {alone:>18.0f} {busy:>20.0f}")


if __name__ == "__main__":
    main()
