"""Locks that let several runs share one store: per node, plus a store-wide shared/exclusive lock.

* A **run** holds the store lock *shared* (any number of runs at once) and each node's lock while
  it computes that node; a run needing a node another live run is computing waits for it, then
  reuses the result. ``gc`` and ``verify --repair`` hold the store lock *exclusive*: no run writes
  while they delete.
* Short read-merge-write updates of shared documents (names, plans) go through ``meta_lock``.

Local stores use ``flock``, which the kernel drops when the process dies, so a ``kill -9`` leaves
no lock behind. A forked child (an MFCC worker pool) would share the lock's open file description
and keep it held after its parent is killed, so every fork made while a lock is held drops the
child's copy and asks the kernel to kill the child when the parent dies. A lock held past the
death of the pid it names (children of an older ssl_graph) is reported and replaced.

Object stores have no flock: they get lease objects written with conditional PUTs (``lease``).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from .flock import exclusive_flock, flock_holder, flock_wait, run_holders, store_flock
from .lease import lease, live_lease, store_lease
from .lock_holders import (  # noqa: F401  (re-exported: callers import these from here)
    LOCKS,
    WAIT_REPORT_S,
    StoreLocked,
    Waiter,
    describe_writer,
    holder_dead,
    is_self,
    locked_error,
)


def node_lock_key(key: str) -> str:
    """``nodes/mfcc-ab12`` -> ``locks/mfcc-ab12.lock``."""
    return f"{LOCKS}/{key.rstrip('/').rsplit('/', 1)[-1]}.lock"


def _own_files(backend, *keys: str) -> None:
    """Lock files are the store's own: a symbolic link where one belongs is removed (never
    written, read or emptied through), and a folder on the way out of the store is refused
    (``paths.guard``), so no lock ever touches a file outside the store."""
    for key in keys:
        if backend.link_target(key) is not None:
            backend.delete(key)
        backend.path(key)


@contextmanager
def store_lock(backend, shared: bool = False):
    """The store-wide lock: ``shared`` for runs, exclusive for gc / repair."""
    root = getattr(backend, "root", None)
    if root is None:
        with store_lease(backend, shared):
            yield
        return
    _own_files(backend, ".lock", ".lock.clear", LOCKS, f"{LOCKS}/runs")
    with store_flock(Path(root), shared):
        yield


@contextmanager
def node_lock(backend, key: str, name: str, echo=None):
    """Hold one node's lock while computing it; waits (saying so) while a live run holds it.
    Yields the :class:`Waiter`, whose ``waited`` says whether another run had the node."""
    waiter = Waiter(name, echo)
    root = getattr(backend, "root", None)
    if root is None:
        with lease(backend, node_lock_key(key), waiter):
            yield waiter
        return
    _own_files(backend, ".lock.clear", LOCKS, node_lock_key(key))
    with flock_wait(Path(root), Path(root) / node_lock_key(key), waiter):
        yield waiter


@contextmanager
def meta_lock(backend):
    """A short exclusive section around read-merge-write of shared documents (names, plans)."""
    root = getattr(backend, "root", None)
    if root is None:
        with lease(backend, f"{LOCKS}/meta.lock", Waiter("the store's name index", lambda m: None)):
            yield
        return
    _own_files(backend, ".lock.meta")
    with exclusive_flock(Path(root) / ".lock.meta"):
        yield


def live_writer(backend, key: str | None = None) -> dict | None:
    """Who is computing node ``key`` right now ({pid, host, since}), or with no key any other
    live run of the store; None when nobody (or this process). Never blocks for long, never
    clears anything."""
    root = getattr(backend, "root", None)
    if root is None:
        return live_lease(backend, node_lock_key(key)) if key else None
    from .paths import Uncontained

    try:  # (a lock file or folder that is a link out of the store is no one's lock)
        backend.path(node_lock_key(key) if key is not None else f"{LOCKS}/runs")
    except Uncontained:
        return None
    if key is not None:
        return flock_holder(Path(root) / node_lock_key(key))
    for holder in run_holders(Path(root)):
        if not is_self(holder) and not holder_dead(holder):
            return holder
    return None


