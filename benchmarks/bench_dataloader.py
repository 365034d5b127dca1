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

``--ranks 1 2 4``: decode CPU per rank under DDP. For each world size, that many processes join
a gloo process group (``torch.multiprocessing.spawn``), and each loads its rows of the same
``--steps`` global batches (``CropSampler.batch(step, rank, world)``, cache off, 0 workers),
timing its own CPU (``time.process_time``): each rank decodes only its block of rows, so the
CPU per rank should fall as 1/world while the global batch stays the same.

    python benchmarks/bench_dataloader.py --ranks 1 2 4 --steps 20

Measured on the 2-core dev box (60 s batches of 4 s crops, 12.3 rows a step): 11.0 ms decode CPU
per step with 1 rank, 6.0 / 5.7 with 2, 3.6-3.8 with 4 (per-step planning and tensor wrapping
do not shrink with the rows).

``--layer-features``: ``LayerFeatures``' loop instead (``ops/audio_prefetch.py``): every demo
utterance decoded (by 0 or N workers) and run through a tiny wav2vec 2.0 (random weights, the
real forward) on the main thread, with torch at 1 and 2 threads; runs interleaved (0, N, 0, N)
and each ratio is against 0 workers of the same thread count and round.

    python benchmarks/bench_dataloader.py --layer-features --workers 0 2

Measured on the 2-core dev box shared by six engineers (load 11-12, all 155 utterances, 2
rounds): 1 thread 40 / 44 audio-s/s with 0 workers vs 32 / 36 with 2 (0.78x, 0.83x); 2 threads
4 vs 3-4 (0.65x, 0.85x). On two oversubscribed cores the workers only take CPU from the model,
which is why ``workers`` defaults to 0 on CPU; the case for workers is a GPU model beside idle
cores (not measured: no GPU was lent to this task).
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import soundfile as sf

from ssl_graph.train.data import CropSampler
from ssl_graph.train.loader import step_batches

ROOT = Path(__file__).resolve().parents[1]


def measure(sampler, steps: int, workers: int, step_ms: float) -> float:
    t0, audio = time.perf_counter(), 0.0
    for _, batch in step_batches(sampler.batch, 0, steps, workers=workers, device="cpu"):
        audio += sum(g["wave"].numel() for g in batch["groups"]) / 16000
        if step_ms:
            end = time.perf_counter() + step_ms / 1000
            while time.perf_counter() < end:  # busy, like a CPU training step
                pass
    return audio / (time.perf_counter() - t0)


def _rank_main(rank: int, world: int, port: int, args, out) -> None:
    import os

    import torch.distributed as dist

    from ssl_graph.train.distributed import Ranks

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    ranks = Ranks()
    files = sorted((ROOT / "data" / "demo" / "wav").glob("*.flac"))
    paths = {f.stem: f for f in files}
    lengths = {f.stem: sf.info(str(f)).frames for f in files}
    sampler = CropSampler(paths, lengths, sample_rate=16000, batch_seconds=args.batch_seconds,
                          crop_seconds=args.crop_seconds, min_seconds=1.0, seed=0, cache_bytes=0)
    make = partial(sampler.batch, rank=ranks.rank, world=ranks.world)
    t0, rows, audio, global_rows = time.process_time(), 0, 0.0, 0
    for _, batch in step_batches(make, 0, args.steps, workers=0, device="cpu"):
        rows += len(batch["utts"])
        audio += sum(g["wave"].numel() for g in batch["groups"]) / 16000
        global_rows += batch["batch_rows"]
    cpu = time.process_time() - t0
    got = [None] * world
    dist.all_gather_object(got, (ranks.rank, cpu, rows, audio, global_rows))
    if rank == 0:
        out.put(got)
    dist.destroy_process_group()


def per_rank(args) -> None:
    import socket

    import torch.multiprocessing as mp

    print(f"decode CPU per rank: demo corpus, {args.batch_seconds:g} s global batches of "
          f"{args.crop_seconds:g} s crops, {args.steps} steps, cache off, gloo process group")
    print(f"{'ranks':>6} {'rank':>5} {'rows/step':>10} {'global rows/step':>17} "
          f"{'decoded audio-s':>16} {'CPU s/step':>11}")
    ctx = mp.get_context("spawn")
    for world in args.ranks:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        q = ctx.SimpleQueue()
        mp.start_processes(_rank_main, args=(world, port, args, q), nprocs=world, join=True,
                           start_method="spawn")
        for rank, cpu, rows, audio, global_rows in q.get():
            print(f"{world:>6} {rank:>5} {rows / args.steps:>10.1f} "
                  f"{global_rows / args.steps:>17.1f} {audio:>16.1f} {cpu / args.steps:>11.4f}")


def layer_features(files, workers: list[int], rounds: int, utts: int) -> None:
    import torch

    from ssl_graph.nn import build_model
    from ssl_graph.ops.audio_prefetch import AudioPrefetch
    from ssl_graph.specs.components_presets import wav2vec2_model

    paths = {f.stem: f for f in files[:utts]}
    todo = sorted(paths)
    model = build_model(wav2vec2_model("tiny")).eval()
    print(f"LayerFeatures loop: {len(todo)} utterances, tiny wav2vec 2.0 layer 1, "
          f"{rounds} interleaved rounds")
    print(f"{'threads':>8} {'round':>6} {'workers':>8} {'audio-s/s':>10} {'vs 0 workers':>13}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for r in range(rounds):
            base = None
            for w in workers:
                t0, audio = time.perf_counter(), 0.0
                pre = AudioPrefetch(paths, todo, sample_rate=16000, resample=False, workers=w,
                                    device="cpu")
                with torch.inference_mode():
                    for i in range(0, len(todo), 16):  # the op's batch_utts
                        for wave in pre.take(todo[i:i + 16]):
                            model.extract_features(torch.from_numpy(wave)[None], None, layer=1)
                            audio += len(wave) / 16000
                pre.close()
                rate = audio / (time.perf_counter() - t0)
                base = base or rate
                print(f"{threads:>8} {r:>6} {w:>8} {rate:>10.0f} {rate / base:>12.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--batch-seconds", type=float, default=60.0)
    ap.add_argument("--crop-seconds", type=float, default=4.0)
    ap.add_argument("--step-ms", type=float, default=200.0)
    ap.add_argument("--layer-features", action="store_true",
                    help="measure LayerFeatures' decode + forward loop instead")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--utts", type=int, default=155, help="--layer-features: utterances used")
    ap.add_argument("--ranks", type=int, nargs="*", default=None,
                    help="measure decode CPU per rank with these world sizes (gloo)")
    args = ap.parse_args()
    if args.ranks:
        return per_rank(args)
    files = sorted((ROOT / "data" / "demo" / "wav").glob("*.flac"))
    if args.layer_features:
        return layer_features(files, args.workers, args.rounds, args.utts)
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
