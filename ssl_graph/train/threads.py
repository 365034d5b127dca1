"""Fixed thread settings for the span of one training, whatever ran before in the process.

Thread pools are process state: k-means' Numba pool (OpenMP layer), a BLAS limit or a caller's
``torch.set_num_threads`` would otherwise leak into a training's numerics (a resumed run in a
fresh process then differs ~1e-7 from an uninterrupted one). So every training sets torch's
intra-op threads, the OpenMP/BLAS pools and Numba's pool to one number, and restores them after.
On small shared boxes one thread is also the fast choice: measured, torch's default 2 threads
made a tiny step 2.2× (load 3) to 16× (load 12) slower.
"""

from __future__ import annotations

import os
from contextlib import contextmanager


def default_threads(cores: int | None = None) -> int:
    """1 on small boxes; else the cores this process's share (torchrun ranks split them), ≤ 8."""
    cores = (cores or os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    return 1 if cores <= 4 else min(cores, 8)


@contextmanager
def fixed_threads(n: int | None):
    """Run the block with ``n`` threads (None = :func:`default_threads`) in every pool."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    n = n or default_threads()
    old_torch, old_numba = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        torch.set_num_threads(old_torch)
        numba.set_num_threads(old_numba)
