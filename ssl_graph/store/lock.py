"""One writer per store: an advisory ``flock`` that the kernel drops if the process dies.

A lock file that survives ``kill -9`` (as with O_EXCL lock files) would need manual cleanup;
``flock`` cannot go stale, so a crashed run never blocks the next one.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path


class StoreLocked(RuntimeError):
    pass


@contextmanager
def store_lock(root: Path | None):
    """Hold the store's writer lock; ``root=None`` (object stores) runs without one."""
    if root is None:
        yield
        return
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    path = root / ".lock"
    fh = open(path, "a+")  # noqa: SIM115 - held open for the lifetime of the lock
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise StoreLocked(
                f"store {root} is being written by {holder}; wait for that run to finish "
                "(only one `ssl-graph run` may write a store at a time)"
            ) from None
        fh.seek(0)
        fh.truncate()
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%H:%M:%S")}
        fh.write(json.dumps(info))
        fh.flush()
        yield
    finally:
        fh.close()
