"""The worker plugin ``--executor dask`` registers (imports distributed: loaded only there)."""

from __future__ import annotations

from distributed import WorkerPlugin


class Prime(WorkerPlugin):
    """Primes each worker as it joins, restarted ones included (``dask_executor.prime_worker``)."""

    def setup(self, worker) -> None:
        from .dask_executor import prime_worker

        prime_worker()
