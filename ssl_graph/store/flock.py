"""Local-store locks on ``flock``: the kernel drops them when the process dies.

A forked child (an MFCC worker pool) would share a lock's open file description and keep it
held after its parent is killed, so every fork made while a lock is held drops the child's copy
and asks the kernel to kill the child when the parent dies. A lock held past the death of the pid
it names (children of an older ssl_graph) is reported and replaced.
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

from .lock_holders import (
    LOCKS,
    Waiter,
    describe_writer,
    holder_dead,
    holder_info,
    is_self,
    locked_error,
    parse_holder,
)

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



@contextmanager
def _held(fd: int):
    """Own a locked fd for the block (dropped in forked children), then close it."""
    _HELD_FDS.add(fd)
    try:
        yield
    finally:
        _HELD_FDS.discard(fd)
        os.close(fd)


@contextmanager
def exclusive_flock(path: Path):
    """Hold ``path`` locked exclusively (blocking) for a short section."""
    import fcntl

    fd = _open_rw(path)
    fcntl.flock(fd, fcntl.LOCK_EX)
    with _held(fd):
        yield


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


def flock_holder(path: Path) -> dict | None:
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


def run_holders(root: Path) -> list[dict]:
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
def store_flock(root: Path, shared: bool):
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
            for h in run_holders(root):  # no run holds the store: these are killed runs'
                h["_file"].unlink(missing_ok=True)
    with _held(fd):
        try:
            yield
        finally:
            if shared:
                reg.unlink(missing_ok=True)


def _take_stale_store_lock(root: Path, path: Path, shared: bool) -> int:
    """The store lock is held: by gc (exclusive, named in ``.lock``) or by runs (shared, named
    in ``locks/runs``). Raise naming a live holder; replace the lock if every holder is dead."""
    import fcntl

    probe = _try_flock(path, shared=True) if not shared else None
    if probe is not None:  # only shared holders (runs) block us
        fcntl.flock(probe, fcntl.LOCK_UN)
        os.close(probe)
        holders = run_holders(root)
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
def flock_wait(root: Path, path: Path, waiter: Waiter):
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
    with _held(fd):
        yield
