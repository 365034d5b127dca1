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

import ctypes
import errno
import json
import os
import signal
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

LOCKS = "locks"  # per-node lock files (and run registrations) under the store root
#: how often a waiting run says it still waits (seconds)
WAIT_REPORT_S = 30.0


class StoreLocked(RuntimeError):
    pass


_HELD_FDS: set[int] = set()  # lock fds of this process, released in forked children
_FORKING_PID = [0]  # the parent's pid, noted just before each fork


def _after_fork_in_child() -> None:
    if not _HELD_FDS:
        return
    null = os.open(os.devnull, os.O_RDONLY)
    for fd in _HELD_FDS:  # point the fd at /dev/null: the child no longer shares the lock
        os.dup2(null, fd, inheritable=False)
    os.close(null)
    _HELD_FDS.clear()
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: SIGKILL this (forked worker) process when its parent dies."""
    prctl = getattr(_LIBC, "prctl", None) if _LIBC is not None else None
    if prctl is None:
        return
    prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != _FORKING_PID[0]:  # the parent died before prctl took effect
        os._exit(1)


try:  # loaded in the parent: a forked child must not import or dlopen anything
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:
    _LIBC = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=lambda: _FORKING_PID.__setitem__(0, os.getpid()),
                        after_in_child=_after_fork_in_child)


# ---- holder descriptions (shared with the lease locks) ----------------------------------------
def holder_info() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S")}


def parse_holder(raw: bytes | str | None) -> dict:
    try:
        info = json.loads(raw or "")
        return info if isinstance(info, dict) else {}
    except (ValueError, TypeError):
        return {}


def describe_writer(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process"
    since = f" since {holder['since']}" if holder.get("since") else ""
    return f"pid {holder['pid']} on {holder.get('host', '?')}{since}"


def holder_dead(holder: dict) -> bool:
    """True only when the holder ran on this host and its pid no longer exists."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_self(holder: dict) -> bool:
    return holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()


def locked_error(where: str, holder: dict, what: str = "written") -> StoreLocked:
    return StoreLocked(f"store {where} is being {what} by {describe_writer(holder)}; wait for "
                       "that to finish (`gc` and `verify --repair` need the store to themselves)")


class Waiter:
    """Says once that a run waits for a node, then every ``WAIT_REPORT_S`` that it still does."""

    def __init__(self, name: str, echo=None):
        self.name, self.echo = name, echo or (lambda msg: sys.stderr.write(msg + "\n"))
        self.t0 = self.last = None

    def waiting(self, holder: dict) -> None:
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = self.last = now
            self.echo(f"waiting for {self.name}: computed by {describe_writer(holder)}")
        elif now - self.last >= WAIT_REPORT_S:
            self.last = now
            self.echo(f"still waiting for {self.name} ({now - self.t0:.0f}s, "
                      f"{describe_writer(holder)})")

    @property
    def waited(self) -> bool:
        return self.t0 is not None


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


# ---- public entry points (local flock or object-store lease) -----------------------------------
@contextmanager
def store_lock(backend, shared: bool = False):
    """The store-wide lock: ``shared`` for runs, exclusive for gc / repair."""
    root = getattr(backend, "root", None)
    if root is None:
        from .lease import store_lease

        with store_lease(backend, shared):
            yield
        return
    _own_files(backend, ".lock", ".lock.clear", LOCKS, f"{LOCKS}/runs")
    with _store_flock(Path(root), shared):
        yield


@contextmanager
def node_lock(backend, key: str, name: str, echo=None):
    """Hold one node's lock while computing it; waits (saying so) while a live run holds it.
    Yields the :class:`Waiter`, whose ``waited`` says whether another run had the node."""
    waiter = Waiter(name, echo)
    root = getattr(backend, "root", None)
    if root is None:
        from .lease import lease

        with lease(backend, node_lock_key(key), waiter):
            yield waiter
        return
    _own_files(backend, ".lock.clear", LOCKS, node_lock_key(key))
    with _flock_wait(Path(root), Path(root) / node_lock_key(key), waiter):
        yield waiter


@contextmanager
def meta_lock(backend):
    """A short exclusive section around read-merge-write of shared documents (names, plans)."""
    root = getattr(backend, "root", None)
    if root is None:
        from .lease import lease

        with lease(backend, f"{LOCKS}/meta.lock", Waiter("the store's name index", lambda m: None)):
            yield
        return
    import fcntl

    _own_files(backend, ".lock.meta")
    fd = _open_rw(Path(root) / ".lock.meta")
    fcntl.flock(fd, fcntl.LOCK_EX)
    _HELD_FDS.add(fd)
    try:
        yield
    finally:
        _HELD_FDS.discard(fd)
        os.close(fd)


def live_writer(backend, key: str | None = None) -> dict | None:
    """Who is computing node ``key`` right now ({pid, host, since}), or with no key any other
    live run of the store; None when nobody (or this process). Never blocks for long, never
    clears anything."""
    root = getattr(backend, "root", None)
    if root is None:
        from .lease import live_lease

        return live_lease(backend, node_lock_key(key)) if key else None
    from .paths import Uncontained

    try:  # (a lock file or folder that is a link out of the store is no one's lock)
        backend.path(node_lock_key(key) if key is not None else f"{LOCKS}/runs")
    except Uncontained:
        return None
    if key is not None:
        return _flock_holder(Path(root) / node_lock_key(key))
    for holder in _run_holders(Path(root)):
        if not is_self(holder) and not holder_dead(holder):
            return holder
    return None


# ---- local flock ------------------------------------------------------------------------------
def _open_rw(path: Path, extra: int = 0) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | extra, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | extra, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise PermissionError(f"store {path.parent} is read-only (cannot open {path.name} for the "
                              "writer lock); use a writable copy for commands that write") from None


def _try_flock(path: Path, shared: bool = False) -> int | None:
    import fcntl

    fd = _open_rw(path)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        if os.fstat(fd).st_ino != os.stat(path).st_ino:  # replaced meanwhile: not the lock now
            os.close(fd)
            return _try_flock(path, shared)
    except FileNotFoundError:
        os.close(fd)
        return _try_flock(path, shared)
    return fd


def _replace(path: Path, holder: dict, what: str, shared: bool = False) -> int:
    """Swap in a fresh lock file (the pid the old one names is dead; its children hold it)."""
    import fcntl

    tmp = path.with_name(f"{path.name}.{os.getpid()}.new")
    fd = _open_rw(tmp, os.O_TRUNC)
    fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    os.replace(tmp, path)
    sys.stderr.write(f"note: {what} was still locked for {describe_writer(holder)}, which is no "
                     "longer running (left-over processes hold the old lock); the lock was cleared\n")
    return fd


def _flock_holder(path: Path) -> dict | None:
    """The holder a held lock file names (None if free, ours, or missing)."""
    import fcntl

    if not path.exists():
        return None
    guard = None
    try:
        guard = os.open(path.parent / ".lock.clear" if path.name == ".lock"
                        else path.parent.parent / ".lock.clear", os.O_RDWR | os.O_CLOEXEC)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # read-only store or lock files missing: nobody can be writing it here
        if guard is not None:
            os.close(guard)
        return None
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = parse_holder(os.pread(fd, 4096, 0)) or {"pid": None}
            return None if is_self(holder) else holder
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
        os.close(guard)


def _run_holders(root: Path) -> list[dict]:
    runs = root / LOCKS / "runs"
    try:
        names = sorted(runs.iterdir())
    except FileNotFoundError:
        return []
    out = []
    for p in names:
        try:
            out.append({**parse_holder(p.read_bytes()), "_file": p})
        except FileNotFoundError:
            continue
    return out


@contextmanager
def _guarded(root: Path):
    """A brief guard around acquisitions, so no one judges a lock stale while it changes hands."""
    import fcntl

    guard = _open_rw(root / ".lock.clear")
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        yield
    finally:
        os.close(guard)


def _write_holder(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder_info()).encode(), 0)


@contextmanager
def _store_flock(root: Path, shared: bool):
    """Runs: ``.lock`` shared + a registration file naming them; gc/repair: ``.lock`` exclusive
    (its content names the holder)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / ".lock"
    reg = root / LOCKS / "runs" / f"{socket.gethostname()}-{os.getpid()}.json"
    with _guarded(root):
        fd = _try_flock(path, shared)
        if fd is None:
            fd = _take_stale_store_lock(root, path, shared)
        if shared:
            reg.parent.mkdir(parents=True, exist_ok=True)
            reg.write_text(json.dumps(holder_info()))
        else:
            _write_holder(fd)
            for h in _run_holders(root):  # no run holds the store: these are killed runs'
                h["_file"].unlink(missing_ok=True)
    _HELD_FDS.add(fd)
    try:
        yield
    finally:
        _HELD_FDS.discard(fd)
        if shared:
            reg.unlink(missing_ok=True)
        os.close(fd)


def _take_stale_store_lock(root: Path, path: Path, shared: bool) -> int:
    """The store lock is held: by gc (exclusive, named in ``.lock``) or by runs (shared, named
    in ``locks/runs``). Raise naming a live holder; replace the lock if every holder is dead."""
    import fcntl

    probe = _try_flock(path, shared=True) if not shared else None
    if probe is not None:  # only shared holders (runs) block us
        fcntl.flock(probe, fcntl.LOCK_UN)
        os.close(probe)
        holders = _run_holders(root)
        live = [h for h in holders if not holder_dead(h)]
        if live:
            raise locked_error(str(root), live[0])
        for h in holders:
            h["_file"].unlink(missing_ok=True)
        return _replace(path, holders[0] if holders else {}, f"store {root}", shared)
    holder = parse_holder(path.read_bytes())
    if not holder_dead(holder):
        raise locked_error(str(root), holder)
    return _replace(path, holder, f"store {root}", shared)


@contextmanager
def _flock_wait(root: Path, path: Path, waiter: Waiter):
    """Take a node's lock file, waiting while a live process holds it."""
    pause = 0.05
    while True:
        with _guarded(root):
            fd = _try_flock(path)
            if fd is None:
                holder = parse_holder(path.read_bytes()) if path.exists() else {}
                if holder_dead(holder):
                    fd = _replace(path, holder, f"node {waiter.name}")
            if fd is not None:
                _write_holder(fd)
        if fd is not None:
            break
        waiter.waiting(holder)
        time.sleep(pause)
        pause = min(1.0, pause * 2)
    _HELD_FDS.add(fd)
    try:
        yield
    finally:
        _HELD_FDS.discard(fd)
        os.close(fd)
