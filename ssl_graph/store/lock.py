"""One writer per store: an advisory ``flock`` that the kernel drops if the process dies.

A lock file that survives ``kill -9`` (as with O_EXCL lock files) would need manual cleanup;
``flock`` cannot go stale while only the writer holds it. A forked child (an MFCC worker pool)
would share the lock's open file description and keep the store locked after its parent is
killed, so every fork made while a lock is held drops the child's copy and asks the kernel to
kill the child when the parent dies. A lock held past the death of the pid it names (children
of an older ssl_graph) is reported and replaced.

Object stores have no such primitive: they get a best-effort lease object (``.lock`` holding a
random token), which stops a second run that starts while the first is writing, but is not
atomic against two runs starting in the same instant.
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
import uuid
from contextlib import contextmanager
from pathlib import Path


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


def _holder_info() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _parse_holder(raw: bytes | str | None) -> dict:
    try:
        info = json.loads(raw or "")
        return info if isinstance(info, dict) else {}
    except (ValueError, TypeError):
        return {}


def _describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process"
    since = f" since {holder['since']}" if holder.get("since") else ""
    return f"pid {holder['pid']} on {holder.get('host', '?')}{since}"


def _holder_dead(holder: dict) -> bool:
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


def _locked_error(where: str, holder: dict) -> StoreLocked:
    return StoreLocked(f"store {where} is being written by {_describe(holder)}; wait for that run "
                       "to finish (only one `ssl-graph run` may write a store at a time)")


def live_writer(backend) -> dict | None:
    """The process writing the store right now ({pid, host, since}), or None; never blocks for
    long and never clears anything. Probed under the guard lock writers take, so the probe can
    never make a starting writer think the lock is held. None inside a writer (its own plan)."""
    import fcntl

    root = getattr(backend, "root", None)
    if root is None or _HELD_FDS or not (Path(root) / ".lock").exists():
        return None
    try:
        guard = os.open(Path(root) / ".lock.clear", os.O_RDWR | os.O_CLOEXEC)
        fd = os.open(Path(root) / ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # read-only store or lock files missing: nobody can be writing it here
        return None
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _parse_holder(os.pread(fd, 4096, 0)) or {"pid": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
        os.close(guard)


def describe_writer(holder: dict) -> str:
    return _describe(holder)


@contextmanager
def store_lock(backend):
    """Hold the store's writer lock (a local flock, or a lease object for URL stores)."""
    root = getattr(backend, "root", None)
    if root is None:
        with _lease_lock(backend):
            yield
        return
    with _flock(Path(root)):
        yield


def _open_rw(path: Path, extra: int = 0) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | extra, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise PermissionError(f"store {path.parent} is read-only (cannot open {path.name} for the "
                              "writer lock); use a writable copy for commands that write") from None


def _try_flock(path: Path) -> int | None:
    import fcntl

    fd = _open_rw(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        if os.fstat(fd).st_ino != os.stat(path).st_ino:  # replaced meanwhile: not the lock now
            os.close(fd)
            return _try_flock(path)
    except FileNotFoundError:
        os.close(fd)
        return _try_flock(path)
    return fd


def _replace_stale(path: Path) -> int:
    """Swap in a fresh lock file when the pid the lock names is dead (else: StoreLocked)."""
    import fcntl

    holder = _parse_holder(path.read_bytes())
    if not _holder_dead(holder):
        raise _locked_error(str(path.parent), holder)
    tmp = path.with_name(f".lock.{os.getpid()}.new")
    fd = _open_rw(tmp, os.O_TRUNC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.replace(tmp, path)
    sys.stderr.write(f"note: store {path.parent} was still locked for {_describe(holder)}, which "
                     "is no longer running (left-over processes hold the old lock); the lock was "
                     "cleared\n")
    return fd


@contextmanager
def _flock(root: Path):
    """Acquire under a brief guard lock, so no one judges a lock stale while it changes hands."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    path = root / ".lock"
    guard = _open_rw(root / ".lock.clear")
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        fd = _try_flock(path)
        if fd is None:
            fd = _replace_stale(path)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder_info()).encode(), 0)
    finally:
        os.close(guard)
    _HELD_FDS.add(fd)
    try:
        yield
    finally:
        _HELD_FDS.discard(fd)
        os.close(fd)


@contextmanager
def _lease_lock(backend):
    key = ".lock"
    holder = _parse_holder(backend.read_bytes(key))
    if holder.get("token") and not _holder_dead(holder):
        raise StoreLocked(str(_locked_error(backend.url, holder)) +
                          f"; if that run is gone, delete {backend.url}/{key}")
    token = uuid.uuid4().hex
    backend.write_bytes(key, json.dumps({**_holder_info(), "token": token}).encode())
    now = _parse_holder(backend.read_bytes(key))
    if now.get("token") != token:  # another run wrote its lease at the same time
        raise _locked_error(backend.url, now)
    try:
        yield
    finally:
        if _parse_holder(backend.read_bytes(key)).get("token") == token:
            backend.delete(key)
