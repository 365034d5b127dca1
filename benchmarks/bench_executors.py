"""Decode + MFCC throughput through the executor seam: in-process vs a 2-process pool vs a
2-worker Dask LocalCluster (loopback), interleaved rounds, per-round ratios (the
machine's load changes between rounds; adjacent runs see about the same).

Usage: python benchmarks/bench_executors.py [--utts 155] [--repeat 4] [--rounds 5] [--workers 2]
Jobs are what ``ssl-graph run`` ships for an MFCC node (``MFCCOp.batch_utts`` files each);
pool and cluster are started and warmed before timing (start-up is printed separately).
``independent(n)`` is the machine's ceiling: n processes splitting the jobs up front with no
scheduling and no results shipped, so ``pool / independent`` is the executor's own efficiency.
Dask runs in the same rounds (its idle cluster takes ~1 % of a core between its rounds);
``dask(n)/per-job`` is the executor as it was (one task per job, Dask's default worker
environment, profiler and ticks), in rounds of its own against in-process, for the A/B.

Every row prints the median over rounds with its spread (min-max), and CPU-s: user + system of
the whole process tree during the round (this process with the client, scheduler and nannies,
forkserver and pool workers, Dask worker processes; ``_cpu.py``), idle neighbours included.
Then per-task overheads of the Dask executor (one no-op job per task): coordinator and worker
CPU per task and the bytes a decode+MFCC task ships each way.

Then, end to end (``--no-end-to-end`` skips it): ``Project.run`` of an MFCC node over the same
utterances (hard links) into a fresh store per run, in a fresh process, with each executor —
what a user waits for, including the workers writing their own parts and the coordinator's
commits (the Dask time includes starting its LocalCluster).
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _cpu import tree_cpu_seconds  # noqa: E402

from ssl_graph.exec.dask_executor import Dask, call_chunk  # noqa: E402
from ssl_graph.exec.executors import InProcess, ProcessPool  # noqa: E402
from ssl_graph.exec.jobs import call_job  # noqa: E402
from ssl_graph.ops.mfcc import MFCCOp, mfcc_job  # noqa: E402


class OneThread(InProcess):
    """In-process with one BLAS thread, as each pool/Dask worker runs: separates the gain from
    processes from the cost of BLAS threads spinning on a loaded machine."""

    def imap(self, fn, jobs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            yield from super().imap(fn, jobs)


class DaskPerJob:
    """The Dask executor as it was before chunking: one task per job, 8 per worker in flight,
    on a LocalCluster with Dask's default worker environment and profiler."""

    def __init__(self, n: int):
        from dask.distributed import Client, LocalCluster

        saved = dict(os.environ)  # the nanny writes its worker environment into ours
        self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                    host="127.0.0.1", dashboard_address=None)
        os.environ.clear()
        os.environ.update(saved)
        self.client, self.parallel = Client(self.cluster), n

    def imap(self, fn, jobs):
        jobs, me, window = iter(jobs), os.getpid(), deque()
        while True:
            while len(window) < 8 * self.parallel:
                job = next(jobs, None)
                if job is None:
                    break
                window.append(self.client.submit(call_job, fn, job, me, pure=False))
            if not window:
                return
            fut = window.popleft()
            yield fut.result()
            fut.release()

    def close(self):
        self.client.close()
        self.cluster.close()


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


def interleaved(executors: dict, work, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(seconds, CPU-s) per round of each executor, warmed first (imports, processes), then
    closed."""
    try:
        for ex in executors.values():
            timed(ex, work[:2 * 2])
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in executors}
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


def timed(ex, work) -> tuple[float, float]:
    c0, t0 = tree_cpu_seconds(), time.perf_counter()
    n = sum(len(out) for out in ex.imap(mfcc_job, work))
    wall = time.perf_counter() - t0
    assert n == sum(len(j) for j in work), (n, sum(len(j) for j in work))
    return wall, tree_cpu_seconds() - c0


def spread(xs) -> str:
    return f"{min(xs):.2f}-{max(xs):.2f}"


def table(groups: list[tuple[str, dict]], n_utts: int, one: list) -> None:
    """One row per executor: its group's in-process rounds are its baseline."""
    for name, times in groups:
        base = [t for t, _ in times["in-process"]]
        ts, cpu = [t for t, _ in times[name]], [c for _, c in times[name]]
        ratios = [b / t for b, t in zip(base, ts)]
        vs1 = (f"{statistics.median(o / t for (o, _), t in zip(one, ts)):5.2f}x vs 1t"
               if name != "in-process" and len(one) == len(ts) and times.get("in-process/1t") else "")
        print(f"  {name:16s} {n_utts / statistics.median(ts):6.1f} utt/s  {statistics.median(ts):5.2f}s "
              f"({spread(ts)})  {statistics.median(ratios):5.2f}x ({spread(ratios)})  CPU-s "
              f"{statistics.median(cpu):5.2f} ({spread(cpu)})  {vs1}")


def overheads(ex: Dask, work, tasks: int = 400) -> None:
    """Per-task cost of the Dask executor on this machine: ``tasks`` no-op tasks (one job
    each, nothing returned), CPU of the coordinator's process (client, scheduler, nannies)
    and of the worker processes per task; and the bytes a decode+MFCC task ships."""
    import psutil

    me = psutil.Process()
    workers = me.children(recursive=True)

    def cpu(ps):
        return sum(sum(p.cpu_times()[:2]) for p in ps)

    pid = os.getpid()
    for _ in range(2):  # the first pass warms up
        c_me, c_w, t0 = cpu([me]), cpu(workers), time.perf_counter()
        window: deque = deque()
        for _ in range(tasks):
            window.append(ex.client.submit(call_chunk, len, [()], pid, pure=False))
            if len(window) >= 8 * ex.parallel:
                window.popleft().result()
        for f in window:
            f.result()
        wall = time.perf_counter() - t0
        c_me, c_w = cpu([me]) - c_me, cpu(workers) - c_w
    print(f"per-task overhead, {tasks} no-op tasks on the LocalCluster: coordinator's process "
          f"(client + scheduler + nannies) {1e3 * c_me / tasks:.2f} CPU-ms/task, workers "
          f"{1e3 * c_w / tasks:.2f} CPU-ms/task, {1e3 * wall / tasks:.2f} ms/task wall at 8 per "
          "worker in flight")
    job = work[0]
    out = mfcc_job(job)
    sent = len(pickle.dumps((call_chunk, mfcc_job, [job], pid)))
    back = sum(a.nbytes for a in out)
    print(f"  bytes per decode+MFCC job ({len(job)} utterances): sent {sent} B (paths, not "
          f"audio), results back {back / 1e3:.0f} kB (frames; a run's workers write them to the "
          f"store instead and return a descriptor); this run's chunked tasks carried "
          f"{ex.jobs_sent / max(1, ex.tasks_sent):.1f} jobs each")
    sent, back = part_task_bytes(work)
    print(f"  bytes per task of a run (workers write their parts): a 64-utterance MFCC task sends "
          f"{sent / 1e3:.1f} kB and returns a {back / 1e3:.1f} kB descriptor")


def part_task_bytes(work) -> tuple[int, int]:
    """Pickled bytes of what a run's MFCC task ships (``part_writer``: 64 utterances, their
    jobs, the store's URL) and of the descriptor it returns, written into a scratch store."""
    from ssl_graph.exec.part_writer import prepare, worker_writes
    from ssl_graph.store.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store, key = Store(tmp), "nodes/mfcc-bench"
        prepare(store, key)
        fn = worker_writes(mfcc_job, store, key)
        group = work[:64 // MFCCOp.batch_utts]
        task = ([u for job in group for _, u, *_ in job], group)
        sent = len(pickle.dumps((call_chunk, fn, [task], os.getpid())))
        return sent, len(pickle.dumps(fn(task)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utts", type=int, default=155)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=4, help="pass over the files this many times")
    ap.add_argument("--no-per-job", action="store_true", help="skip the old per-job Dask A/B")
    ap.add_argument("--no-end-to-end", action="store_true", help="skip the Project.run timing")
    args = ap.parse_args()
    files = sorted((ROOT / "data" / "demo" / "wav").glob("*.flac"))[:args.utts] * args.repeat
    work = jobs(files)
    n = args.workers
    print(f"decode+MFCC, {len(files)} utterances in {len(work)} jobs, {args.rounds} interleaved "
          f"rounds, cpus={os.cpu_count()}, load {os.getloadavg()[0]:.2f} at start; time and "
          "ratio (in-process time / this time, same round): median (min-max over rounds):")
    t1 = time.perf_counter()
    dask = Dask(None, n)
    start = time.perf_counter() - t1
    try:
        # the idle cluster's background (ticks, heartbeats) is ~1 % of a core since its settings
        # (dask_executor.LOCAL_CONFIG): it now runs in the same rounds as the pool
        local = {"in-process": InProcess(), "in-process/1t": OneThread(),
                 f"independent({n})": Independent(n), f"pool({n})": ProcessPool(n),
                 f"dask({n})": _Keep(dask)}
        times = interleaved(local, work, args.rounds)
        groups = [(name, times) for name in times]
        if not args.no_per_job:  # Dask's defaults took ~6 % of a core idle: rounds of its own
            per_job = interleaved({"in-process": InProcess(), f"dask({n})/per-job": DaskPerJob(n)},
                                  work, args.rounds)
            groups.append((f"dask({n})/per-job", per_job))
        table(groups, len(files), times["in-process/1t"])

        def of(a, b):  # median over rounds of b's time / a's time
            return statistics.median(tb / ta for (ta, _), (tb, _) in zip(times[a], times[b]))

        print(f"  machine ceiling: independent({n}) is {of(f'independent({n})', 'in-process'):.2f}x "
              f"in-process (same rounds); pool({n}) reaches "
              f"{of(f'pool({n})', f'independent({n})'):.2f} of it, dask({n}) "
              f"{of(f'dask({n})', f'independent({n})'):.2f}; dask({n}) is "
              f"{of(f'dask({n})', f'pool({n})'):.2f}x pool({n}); LocalCluster start-up {start:.2f}s, "
              f"load {os.getloadavg()[0]:.2f} at the end")
        autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled")
        if autogroup.exists() and autogroup.read_text().strip() == "1":
            print("  (the kernel shares CPU per session (sched_autogroup): while k other sessions "
                  "are busy, this one gets about 2/(k+1) cores, and no executor can beat the "
                  "ceiling above; CPU-s, per-task costs and bytes do not depend on it)")
        overheads(dask, work)
    finally:
        dask.close()


class _Keep:
    """The Dask executor for ``interleaved`` without closing it (``overheads`` uses it next)."""

    def __init__(self, ex):
        self.ex = ex

    def imap(self, fn, jobs):
        return self.ex.imap(fn, jobs)

    def close(self):
        pass


RUN = """
import sys, time
sys.path.insert(0, sys.argv[4])
from _cpu import tree_cpu_seconds
from ssl_graph.api import Project
p = Project("pipe.py", sys.argv[1])
kw = {} if sys.argv[2] == "local" else {"executor": sys.argv[2], "workers": int(sys.argv[3])}
t = time.perf_counter(); p.run(progress=False, **kw); w = time.perf_counter() - t
print(tree_cpu_seconds(), w)  # the forkserver still runs: its reaped workers are counted
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
                out = subprocess.run([sys.executable, "-c", RUN, str(store), ex, str(workers),
                                      str(ROOT / "benchmarks")],
                                     cwd=work, env=env, check=True, capture_output=True, text=True)
                total, wall = map(float, out.stdout.split()[-2:])
                times[ex].append(wall)
                cpu[ex].append(total)
                shutil.rmtree(store)
    print(f"end to end: Project.run of an MFCC node, {len(files)} utterances, fresh store and "
          f"process per run, {rounds} interleaved rounds, load {os.getloadavg()[0]:.2f}; "
          "CPU-s of the run's whole process tree (imports and plan included):")
    for ex, ts in times.items():
        ratios = [b / t for b, t in zip(times["local"], ts)]
        print(f"  {ex:6s} {statistics.median(ts):6.2f}s ({spread(ts)})  "
              f"{statistics.median(ratios):5.2f}x vs local ({spread(ratios)})  CPU-s "
              f"{statistics.median(cpu[ex]):.2f} ({spread(cpu[ex])})")
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
        end_to_end(fs, a.rounds, a.workers)
