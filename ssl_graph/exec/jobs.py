"""What every executor shares: how a job is called in a worker, what workers preload, the
executors' error, and jobs whose number is known up front.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

#: fault injection for tests: a marker path; the first job started in a worker process while
#: the marker is absent creates it and kills that process (``os._exit``), once per marker
CRASH_ENV = "SSL_GRAPH_CRASH_WORKER_ONCE"


class ExecutorError(RuntimeError):
    pass


def crash_once(env: str) -> None:
    """Fault injection: die (``os._exit``) if ``env`` names a marker path not there yet."""
    marker = os.environ.get(env)
    if marker:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(17)


def call_job(fn: Callable, job, coordinator: int):
    if os.getpid() != coordinator:
        crash_once(CRASH_ENV)
    return fn(job)


#: imported once by the forkserver, so every worker forked from it starts with them loaded
PRELOAD = ["numpy", "soundfile", "zarr", "ssl_graph.ops", "ssl_graph.audio.mfcc",
           "ssl_graph.exec.part_writer", "ssl_graph.store.ragged"]


class Counted:
    """Jobs made lazily, with their number known up front (``len``): an executor may size its
    tasks from it (``dask_executor.Chunks``)."""

    def __init__(self, jobs: Iterable, n: int):
        self.jobs, self.n = jobs, n

    def __iter__(self) -> Iterator:
        return iter(self.jobs)

    def __len__(self) -> int:
        return self.n


class _End:
    pass


END = _End()
