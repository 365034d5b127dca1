"""Decode + MFCC throughput through the executor seam: in-process vs a 2-process pool vs a
2-worker Dask LocalCluster (loopback), interleaved rounds, per-round ratios (the
machine's load changes between rounds; adjacent runs see about the same).

Usage: python benchmarks/bench_executors.py [--utts 155] [--repeat 4] [--rounds 5] [--workers 2]
Jobs are what ``ssl-graph run`` ships for an MFCC node (``MFCCOp.batch_utts`` files each);
pool and cluster are started and warmed before timing (start-up is printed separately).
``independent(n)`` is the machine's ceiling: n processes splitting the jobs up front with no
scheduling and no results shipped, so ``pool / independent`` is the executor's own efficiency.
Dask gets rounds of its own against in-process: an idle LocalCluster slows its neighbours.

Then, end to end (``--no-end-to-end`` skips it): ``Project.run`` of an MFCC node over the same
utterances (hard links) into a fresh store per run, in a fresh process, with each executor —
what a user waits for, including the workers writing their own parts and the coordinator's
commits (the Dask time includes starting its LocalCluster).
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
sys.path.insert(0, str(ROOT))

from ssl_graph.exec.executors import Dask, InProcess, ProcessPool  # noqa: E402
from ssl_graph.ops.mfcc import MFCCOp, mfcc_job  # noqa: E402


class OneThread(InProcess):
    """In-process with one BLAS thread, as each pool/Dask worker runs: separates the gain from
    processes from the cost of BLAS threads spinning on a loaded machine."""

    def imap(self, fn, jobs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            yield from super().imap(fn, jobs)


def _count(work: list) -> int:
    return sum(len(out) for job in work for out in [mfcc_job(job)])


class Independent:
    """The ceiling on this machine: ``n`` forked processes, each given its share of the jobs up
    front and sending back only a count — no scheduling, no results to ship. What an executor
    reaches against this is its own overhead; what this reaches against in-process is the
    hardware's (shared caches, memory bandwidth, hypervisor)."""

    name = "independent"

    def __init__(self, n: int):
        from multiprocessing import get_context

        self.n = n
        self.pool = get_context("fork").Pool(n, initializer=_one_thread)

    def imap(self, fn, jobs):
        jobs = list(jobs)
        shares = [jobs[i::self.n] for i in range(self.n)]
        for n in self.pool.map(_count, shares):
            yield [None] * n  # only the count matters to ``timed``

    def close(self):
        self.pool.terminate()


def _one_thread():
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def interleaved(executors: dict, work, rounds: int) -> dict[str, list[float]]:
    """Seconds per round of each executor, warmed first (imports, processes), then closed."""
    try:
        for ex in executors.values():
            timed(ex, work[:2 * 2])
        times: dict[str, list[float]] = {k: [] for k in executors}
        for _ in range(rounds):
            for name, ex in executors.items():
                times[name].append(timed(ex, work))
        return times
    finally:
        for ex in executors.values():
            ex.close()


def jobs(files: list[Path]) -> list[list[tuple]]:
    b = MFCCOp.batch_utts
    per = [(f, f.stem, 16000, False, 39) for f in files]
    return [per[i:i + b] for i in range(0, len(per), b)]


def timed(ex, work) -> float:
    t0 = time.perf_counter()
    n = sum(len(out) for out in ex.imap(mfcc_job, work))
    assert n == sum(len(j) for j in work), (n, sum(len(j) for j in work))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utts", type=int, default=155)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=4, help="pass over the files this many times")
    ap.add_argument("--no-end-to-end", action="store_true", help="skip the Project.run timing")
    args = ap.parse_args()
    files = sorted((ROOT / "data" / "demo" / "wav").glob("*.flac"))[:args.utts] * args.repeat
    work = jobs(files)
    local = {"in-process": InProcess(), "in-process/1t": OneThread(),
             f"independent({args.workers})": Independent(args.workers),
             f"pool({args.workers})": ProcessPool(args.workers)}
    times = interleaved(local, work, args.rounds)
    # a LocalCluster's idle scheduler, nannies and heartbeats take CPU from whatever else
    # runs on 2 cores (an A/B here: the pool lost ~20 % with an idle cluster alive), so Dask
    # gets rounds of its own, interleaved with in-process again
    t1 = time.perf_counter()
    cluster = {"in-process": InProcess(), f"dask({args.workers})": Dask(None, args.workers)}
    print(f"start-up: dask LocalCluster {time.perf_counter() - t1:.2f}s")
    with_dask = interleaved(cluster, work, args.rounds)
    base = times["in-process"]
    one = times["in-process/1t"]
    print(f"decode+MFCC, {len(files)} utterances in {len(work)} jobs, {args.rounds} interleaved "
          "rounds (ratio: median over rounds of in-process time / this time, same round):")
    rows = [(name, ts, base) for name, ts in times.items()]
    rows.append((f"dask({args.workers})", with_dask[f"dask({args.workers})"], with_dask["in-process"]))
    for name, ts, base_ in rows:
        ratios = sorted(b / t for b, t in zip(base_, ts))
        t = statistics.median(ts)
        vs1 = (f"{statistics.median(b / t for b, t in zip(one, ts)):5.2f}x vs in-process/1t"
               if base_ is base else "(own rounds)")
        print(f"  {name:14s} {len(files) / t:7.1f} utt/s  {t:6.2f}s  "
              f"{statistics.median(ratios):5.2f}x  (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)  {vs1}")
    ceiling, pool = times[f"independent({args.workers})"], times[f"pool({args.workers})"]
    print(f"  pool({args.workers}) reaches {statistics.median(c / p for c, p in zip(ceiling, pool)):.2f} "
          f"of the ceiling (independent({args.workers}), same round); the ceiling itself is "
          f"{statistics.median(b / c for b, c in zip(base, ceiling)):.2f}x in-process on this machine")

RUN = """
import resource, sys, time
from ssl_graph.api import Project
p = Project("pipe.py", sys.argv[1])
kw = {} if sys.argv[2] == "local" else {"executor": sys.argv[2], "workers": int(sys.argv[3])}
t = time.perf_counter(); p.run(progress=False, **kw); w = time.perf_counter() - t
me = resource.getrusage(resource.RUSAGE_SELF)
print(me.ru_utime + me.ru_stime, w)
"""


def end_to_end(files: list[Path], rounds: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "wav").mkdir()
        for i, f in enumerate(files):  # the repeated files as distinct utterances
            os.link(f, work / "wav" / f"r{i // len(set(files))}-{f.name}")
        (work / "pipe.py").write_text("from ssl_graph import MFCC, Corpus\n"
                                      "mfcc = MFCC(corpus=Corpus(root='wav'))\n")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SSL_GRAPH_CACHE": str(work / "cache")}
        times: dict[str, list[float]] = {"local": [], "pool": [], "dask": []}
        cpu: dict[str, list[float]] = {ex: [] for ex in times}
        for r in range(rounds):
            for ex in times:
                store = work / f"store-{r}-{ex}"
                out = subprocess.run([sys.executable, "-c", RUN, str(store), ex, str(workers)],
                                     cwd=work, env=env, check=True, capture_output=True, text=True)
                coordinator, wall = map(float, out.stdout.split()[-2:])
                times[ex].append(wall)
                cpu[ex].append(coordinator)
                shutil.rmtree(store)
    print(f"end to end: Project.run of an MFCC node, {len(files)} utterances, fresh store and "
          f"process per run, {rounds} interleaved rounds, load {os.getloadavg()[0]:.2f}:")
    for ex, ts in times.items():
        ratios = sorted(b / t for b, t in zip(times["local"], ts))
        print(f"  {ex:6s} {statistics.median(ts):6.2f}s  {statistics.median(ratios):5.2f}x vs local "
              f"(rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)  coordinator CPU-s "
              f"{statistics.median(cpu[ex]):.2f}")
    print("  (fixed costs — the coordinator's imports and plan, the Corpus node, the pool's "
          "forkserver boot, the cluster's start — cap the speed-up of a run this small; on "
          "LibriSpeech they are negligible)")


if __name__ == "__main__":
    main()
    if "--no-end-to-end" not in sys.argv:
        a = argparse.ArgumentParser()
        a.add_argument("--utts", type=int, default=155)
        a.add_argument("--rounds", type=int, default=5)
        a.add_argument("--workers", type=int, default=2)
        a.add_argument("--repeat", type=int, default=4)
        a = a.parse_known_args()[0]
        fs = sorted((ROOT / "data" / "demo" / "wav").glob("*.flac"))[:a.utts] * a.repeat
        end_to_end(fs, min(a.rounds, 3), a.workers)
