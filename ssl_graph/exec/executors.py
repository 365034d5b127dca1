"""Where per-utterance work runs: in this process, a local process pool, or a Dask cluster.

Chosen at run time (``ssl-graph run --executor``), never part of a fingerprint. The runner hands
an executor picklable *jobs* (one batch of utterances each) and a module-level function; results
come back in job order, so what is committed, and the bytes stored, are the same whatever the
executor. Ops stay unaware of where they run. A job whose process dies is run again; jobs that
finished are not. Out of process, the runner wraps ``work`` so each job writes its own part
(``part_writer.py``) and returns only a descriptor.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from .jobs import END, PRELOAD, ExecutorError, call_job


def _worker_init(coordinator: int, environ: dict[str, str]) -> None:
    """A pool worker starts from a clean forkserver, not from the coordinator. It exits when
    the coordinator does (a killed run leaves no worker computing on), takes the coordinator's
    environment as it was when the pool started (store options, caches, fault injection), and
    runs one BLAS thread: the workers are the parallelism, and n workers each running the
    coordinator's BLAS threads would oversubscribe the cores (Dask's nanny does the same)."""
    from .orphans import exit_with

    exit_with(coordinator)
    os.environ.clear()
    os.environ.update(environ)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _noop() -> None:
    pass


def _worker_context():
    """Workers fork from a forkserver, a fresh interpreter started once per process: a
    coordinator that has run multi-threaded OpenMP code (k-means' Numba kernels, torch) or used
    CUDA cannot fork safely (its children abort: "fork() called from a process already using
    GNU OpenMP", or hang), and a long session (a notebook, a second ``Project.run``) always
    has. Spawn where there is no forkserver (Windows)."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


@contextlib.contextmanager
def _script_not_reimported():
    """Worker processes never need the user's ``__main__``: everything they run lives in
    ssl_graph. Left visible, multiprocessing would import it again in each new worker, which
    runs a script's unguarded ``Project.run(...)`` there (a worker starting workers: an error,
    where a forked pool just worked) and costs every worker the script's imports."""
    main = sys.modules.get("__main__")
    saved = {a: main.__dict__[a] for a in ("__file__", "__spec__") if main and a in main.__dict__}
    if "__file__" in saved:
        del main.__file__
    if "__spec__" in saved:
        main.__spec__ = None
    try:
        yield
    finally:
        for a, v in saved.items():
            setattr(main, a, v)


class InProcess:
    """The default: jobs run one after the other in the coordinator."""

    name = "local"
    parallel = 1

    def imap(self, fn: Callable, jobs: Iterable) -> Iterator:
        for job in jobs:
            yield fn(job)

    def close(self) -> None:
        pass


class ProcessPool:
    """``n`` worker processes on this machine; a broken pool (a worker died) is replaced and
    only the jobs without a result are submitted again."""

    name = "pool"

    def __init__(self, n: int, retries: int = 3):
        if n < 1:
            raise ExecutorError(f"--workers {n}: need at least one worker process")
        self.parallel, self.retries, self._pool = n, retries, None

    def _executor(self):
        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.parallel, mp_context=_worker_context(),
                                             initializer=_worker_init,
                                             initargs=(os.getpid(), dict(os.environ)))
        return self._pool

    def _submit(self, *call):
        with _script_not_reimported():  # a worker process may be started by this submit
            return self._executor().submit(*call)

    def start(self) -> None:
        """Start the workers now, in the background: they boot (the forkserver's imports, a
        fork each) while the coordinator plans and runs the nodes before the first one that
        needs them."""
        for _ in range(self.parallel):  # one process is started per task while none is idle
            self._submit(_noop)

    def imap(self, fn: Callable, jobs: Iterable) -> Iterator:
        from concurrent.futures.process import BrokenProcessPool

        jobs, me = iter(jobs), os.getpid()
        window: deque = deque()  # [job, future], oldest first; 4 per worker in flight
        failures = 0
        while True:
            while len(window) < 4 * self.parallel:
                job = next(jobs, END)
                if job is END:
                    break
                try:
                    fut = self._submit(call_job, fn, job, me)
                except BrokenProcessPool:  # a worker died while the window was filling
                    fut = None
                window.append([job, fut])
                if fut is None:
                    break
            if not window:
                return
            job, fut = window[0]
            try:
                if fut is None:
                    raise BrokenProcessPool
                result = fut.result()
            except BrokenProcessPool:
                failures += 1
                if failures > self.retries:
                    raise ExecutorError(f"process pool: workers died {failures} times; "
                                        "giving up") from None
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
                for entry in window:  # resubmit what has no result yet, in order
                    if entry[1] is None or not (entry[1].done() and entry[1].exception() is None):
                        entry[1] = self._submit(call_job, fn, entry[0], me)
                continue
            window.popleft()
            yield result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def make_executor(kind: str = "local", workers: int | None = None,
                  scheduler: str | None = None):
    """The executor named on the command line (``local``, ``pool``, ``dask``)."""
    if scheduler is not None and kind != "dask":
        raise ExecutorError(f"--scheduler needs --executor dask (got --executor {kind})")
    if kind == "local":
        return InProcess()
    if kind == "pool":
        return ProcessPool(workers or os.cpu_count() or 1)
    if kind == "dask":
        from .dask_executor import Dask

        return Dask(scheduler, workers or 2)
    raise ExecutorError(f"--executor {kind!r}: expected local, pool or dask")


def __getattr__(name: str):
    if name == "Dask":  # in its own module, which needs the executors above
        from .dask_executor import Dask

        return Dask
    raise AttributeError(name)


class Lazy:
    """An executor started on first use, so a run with nothing to compute starts no cluster."""

    def __init__(self, kind: str = "local", workers: int | None = None,
                 scheduler: str | None = None):
        if kind not in ("local", "pool", "dask"):
            raise ExecutorError(f"--executor {kind!r}: expected local, pool or dask")
        if scheduler is not None and kind != "dask":
            raise ExecutorError(f"--scheduler needs --executor dask (got --executor {kind})")
        self.kind, self.workers, self.scheduler = kind, workers, scheduler
        self._ex = None

    def get(self):
        if self._ex is None:
            self._ex = make_executor(self.kind, self.workers, self.scheduler)
        return self._ex

    def prestart(self) -> None:
        """At the start of a run with work: a pool's workers boot in the background while the
        coordinator works (see ``ProcessPool.start``); a cluster stays lazy (starting one is
        seconds, worth paying only for a node that uses it)."""
        if self.kind == "pool":
            self.get().start()

    def close(self) -> None:
        if self._ex is not None:
            self._ex.close()
            self._ex = None
