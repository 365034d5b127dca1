"""Jobs as Dask tasks: on a scheduler the user runs, or on a ``LocalCluster`` started here.

Where a 2-worker LocalCluster lost its second core (``benchmarks/bench_executors.py``, 620
utterances of decode + MFCC in 155 jobs of ~10 ms): not in the scheduler alone, but in costs
that each take a share of two cores, and in waiting:

- **Dask's default worker environment**: the nanny starts workers with
  ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes glibc's mmap threshold at 128 KiB, so
  every MFCC-sized array is a fresh ``mmap`` + page faults + ``munmap``: the workers spent 1.6×
  the CPU of the same jobs in-process (most of it system time). Unset for a LocalCluster here.
- **Per-task cost**: one task per job meant ~2 ms of client + scheduler CPU (in the
  coordinator's process) and ~2 ms of worker event-loop CPU per 10 ms of work, on the same two
  cores. Jobs are now sent in *chunks* sized from the measured job time (``TASK_SECONDS`` of
  work per task), still yielded one result per job in job order.
- **Waiting**: with CPU-s at the pool's, dask(2) still took 1.5x the pool's wall time: a
  worker that finished waited for its next task through the scheduler's queue (at most 2 tasks
  a worker), and every result was relayed by the scheduler, i.e. crossed the coordinator's
  event loop twice. A LocalCluster now takes tasks as submitted (``IN_FLIGHT`` a worker) and
  the client gathers from the workers directly: dask(2) 1.02x pool(2) in the same rounds.
- **Background ticks**: an idle 2-worker cluster took 6 % of a core (the profiler's sampling
  thread, 20 ms event-loop ticks, 100 ms memory monitors and work-stealing rounds in five
  processes), now 1.1 %: no profiler, slower ticks, for a LocalCluster.

The nanny also writes its worker environment (``OMP_NUM_THREADS=1``...) into the
coordinator's own ``os.environ``, where a torch imported later (a training node after MFCC in
the same run) would read it and train on one thread: the worker threads are set through the
workers' own environment and ``threadpoolctl`` instead, and the coordinator's is left alone.
"""

from __future__ import annotations

import math
import operator
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from .jobs import END, ExecutorError, call_job

#: CPU seconds of work a task carries, once the jobs' own time is known: per-task cost is
#: ~1.5 ms of coordinator CPU (client + scheduler) and ~1 ms of worker CPU on loopback
TASK_SECONDS = 0.2
#: jobs a task carries at most (a task's jobs are rerun together if its worker dies)
MAX_CHUNK = 64
#: tasks each worker gets at least, when the number of jobs is known (a run's tail: with a few
#: big tasks one worker computes the last one while the others idle)
TASKS_PER_WORKER = 8
#: tasks in flight per worker: one running, the next ones already on the worker
IN_FLIGHT = 3

#: a LocalCluster's settings: no malloc trim threshold (see above), environment for BLAS
#: threads given to the workers only, no profiler sampling thread, slower background ticks
LOCAL_CONFIG = {
    "distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": None,
                                           "OMP_NUM_THREADS": None, "MKL_NUM_THREADS": None,
                                           "OPENBLAS_NUM_THREADS": None},
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing-interval": "1s",
    # tasks go to the workers as submitted (``IN_FLIGHT`` a worker): with the scheduler's
    # queue a worker that finished waited for a round trip through it for its next task
    "distributed.scheduler.worker-saturation": float("inf"),
}
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def call_chunk(fn: Callable, jobs: list, coordinator: int) -> tuple[list, float]:
    """One task: ``fn`` on each job of a chunk; the results and the CPU seconds they took (this
    thread's: wall time on a loaded machine would shrink chunks just when per-task overhead
    costs most)."""
    t0 = time.thread_time()
    out = [call_job(fn, job, coordinator) for job in jobs]
    return out, time.thread_time() - t0


class Chunks:
    """How many jobs the next task carries: one until a job's time is known (from an earlier
    call with the same function, or this call's first task), then about
    ``TASK_SECONDS`` of work, at most ``MAX_CHUNK`` jobs and ``1 / TASKS_PER_WORKER`` of a
    worker's share when the number of jobs is known."""

    def __init__(self, total: int, parallel: int, known: tuple[int, float] = (0, 0.0)):
        share = math.ceil(total / (TASKS_PER_WORKER * parallel)) if total else MAX_CHUNK
        self.cap = max(1, min(MAX_CHUNK, share))
        self.jobs, self.seconds = known

    def record(self, jobs: int, seconds: float) -> None:
        self.jobs, self.seconds = self.jobs + jobs, self.seconds + seconds

    def size(self) -> int:
        if not self.jobs:
            return 1
        per_job = self.seconds / self.jobs
        return max(1, min(self.cap, math.ceil(TASK_SECONDS / max(per_job, 1e-6))))


class Dask:
    """Jobs as Dask tasks on a scheduler at ``address``, or on a ``LocalCluster`` of
    ``workers`` processes (loopback only) when none is given. The scheduler reruns the task of
    a lost worker (its chunk of jobs); results already gathered are kept."""

    name = "dask"

    def __init__(self, address: str | None = None, workers: int = 2):
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("--executor dask needs dask: pip install ssl_graph[dask]") from None
        self.cluster = self.client = None
        if address is None:
            saved = dict(os.environ)
            try:
                with dask.config.set(LOCAL_CONFIG):
                    self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                                processes=True, host="127.0.0.1",
                                                dashboard_address=None, env=WORKER_ENV)
            finally:  # the nanny's PYTHONHASHSEED, whatever it sets on the way
                os.environ.clear()
                os.environ.update(saved)
            address = self.cluster.scheduler_address
        try:
            # results straight from the workers: through the scheduler, they crossed the
            # coordinator's event loop twice (a LocalCluster's scheduler lives there)
            self.client = Client(address, timeout="30s",
                                 direct_to_workers=True if self.cluster else None)
        except OSError as exc:
            self.close()
            raise ExecutorError(f"--scheduler {address}: cannot connect ({exc})") from None
        from .dask_plugin import Prime

        self.client.register_plugin(Prime(), name="ssl_graph-prime")
        self.parallel = max(1, len(self.client.scheduler_info().get("workers", {})) or workers)
        self.tasks_sent = self.jobs_sent = 0  # for benchmarks: how jobs were chunked
        self._timing: dict[str, tuple[int, float]] = {}  # (jobs, CPU-s) by function

    def imap(self, fn: Callable, jobs: Iterable) -> Iterator:
        key = repr(fn)  # a node's worker_writes partial names its op, store and node
        chunks = Chunks(operator.length_hint(jobs), self.parallel, self._timing.get(key, (0, 0.0)))
        jobs, me = iter(jobs), os.getpid()
        window: deque = deque()  # futures, oldest first
        while True:  # one task a worker until a job's time is known
            while len(window) < (IN_FLIGHT if chunks.jobs else 1) * self.parallel:
                chunk = [job for job in (next(jobs, END) for _ in range(chunks.size()))
                         if job is not END]
                if not chunk:
                    break
                window.append(self.client.submit(call_chunk, fn, chunk, me, pure=False))
                self.tasks_sent, self.jobs_sent = self.tasks_sent + 1, self.jobs_sent + len(chunk)
                if len(chunk) < chunks.size():
                    break
            if not window:
                return
            fut = window.popleft()
            results, seconds = fut.result()
            fut.release()
            chunks.record(len(results), seconds)
            self._timing[key] = (chunks.jobs, chunks.seconds)
            yield from results

    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            self.client.close()
            self.client = None
        if getattr(self, "cluster", None) is not None:
            self.cluster.close()
            self.cluster = None
