"""The worker plugin ``--executor dask`` registers (imports distributed: loaded only there)."""

from __future__ import annotations

from distributed import WorkerPlugin

from .jobs import PRELOAD


class Prime(WorkerPlugin):
    """Primes each worker as it joins, restarted ones included (:func:`prime_worker`)."""

    def setup(self, worker) -> None:
        prime_worker()


def prime_worker() -> None:
    """On each worker as it joins (a worker plugin): one BLAS thread, as pool workers run (the
    workers are the parallelism), and the ops imported before the first task."""
    import importlib

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    for name in PRELOAD:
        importlib.import_module(name)
