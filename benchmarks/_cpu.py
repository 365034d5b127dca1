"""CPU seconds of a whole process tree, for benchmarks: "CPU-s" means all of it.

``RUSAGE_SELF`` misses every worker, and ``RUSAGE_CHILDREN`` misses the workers of a
process pool: they are forked by a forkserver (a child of ours), which reaps them, so their
CPU lands in the *forkserver's* children's times, and the forkserver itself is not waited for
before we read ours. So: for this process and every live descendant (forkserver, its pool
workers, Dask worker processes), its own user + system time plus that of the children it
has already reaped (``/proc/<pid>/stat``'s cutime/cstime, via psutil). A process that exits
between two readings and has not been reaped yet is missed; read while the pool or cluster
is still up.
"""

from __future__ import annotations

import psutil


def tree_cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of process ``pid`` (default: this one), its live
    descendants, and every child any of them has reaped."""
    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:  # exited meanwhile
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total
