"""Locks on object stores: lease objects taken with conditional writes and kept by a heartbeat.

A lease is a small JSON object (holder pid/host/since, a random token, an expiry time). It is
taken by a create-only PUT (``If-None-Match: *``): of two runs racing for it exactly one
succeeds. Its holder renews it every third of its lifetime with a compare-and-swap PUT
(``If-Match: <etag>``), so a lease whose holder died (or lost its network) expires and is taken
over by another compare-and-swap, which again only one contender wins. Release is a conditional
DELETE, so a holder that lost its lease never deletes its successor's.

The store-wide lock: each run registers a lease of its own under ``locks/runs/`` (shared), and
``gc`` takes ``.lock`` and then checks that no live run is registered; a run registers first and
then checks ``.lock``. With S3's strong read-after-write consistency one of the two always sees
the other.

Filesystems without conditional writes (``memory://``, most others) get the same protocol over
plain writes, which is not atomic against two runs starting in the same instant.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from contextlib import contextmanager

from .lock_holders import (
    LOCKS,
    StoreLocked,
    Waiter,
    describe_writer,
    holder_dead,
    holder_info,
    is_self,
    locked_error,
    parse_holder,
)

LEASE_ENV = "SSL_GRAPH_LEASE_SECONDS"


def lease_seconds() -> float:
    return float(os.environ.get(LEASE_ENV) or 30.0)


def _expired(holder: dict) -> bool:
    try:
        return float(holder.get("expires", 0)) < time.time()
    except (TypeError, ValueError):
        return True


def _live(holder: dict) -> bool:
    return bool(holder) and not _expired(holder) and not holder_dead(holder)


class Lease:
    """One lease object, renewed by a daemon thread while held."""

    def __init__(self, backend, key: str, ttl: float | None = None):
        self.backend, self.key = backend, key
        self.ttl = ttl or lease_seconds()
        self.info = {**holder_info(), "token": uuid.uuid4().hex}
        self.tag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps({**self.info, "expires": round(time.time() + self.ttl, 3)}).encode()

    def try_take(self) -> dict | None:
        """Take the lease (returns None) or return the live holder that has it."""
        for _ in range(5):  # the object may vanish or change between our requests: retry
            self.tag = self.backend.create_if_absent(self.key, self._body())
            if self.tag is not None:
                return None
            cur = self.backend.read_tagged(self.key)
            if cur is None:
                continue
            holder = parse_holder(cur[0])
            if _live(holder):
                return holder
            self.tag = self.backend.replace_if(self.key, self._body(), cur[1])
            if self.tag is not None:
                if holder.get("pid"):
                    sys.stderr.write(f"note: {self.backend.url}/{self.key} was held by "
                                     f"{describe_writer(holder)}, whose lease ran out (it is no "
                                     "longer running); taken over\n")
                return None
        return {"pid": None}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._renew, daemon=True,
                                        name=f"lease {self.key}")
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                tag = self.backend.replace_if(self.key, self._body(), self.tag)
            except OSError:  # a network blip: try again next beat, the lease still runs
                continue
            if tag is None:
                self.lost = True
                sys.stderr.write(f"warning: lost the lease {self.backend.url}/{self.key} (this "
                                 "process stalled longer than its lifetime); another run may "
                                 "now compute the same node\n")
                return
            self.tag = tag

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost and self.tag is not None:
            self.backend.delete_if(self.key, self.tag)


@contextmanager
def lease(backend, key: str, waiter: Waiter):
    """Hold the lease at ``key``, waiting (through ``waiter``) while a live holder has it."""
    held = Lease(backend, key)
    pause = 0.1
    while (holder := held.try_take()) is not None:
        waiter.waiting(holder)
        time.sleep(pause)
        pause = min(1.0, pause * 2)
    held.start()
    try:
        yield held
    finally:
        held.release()


def live_lease(backend, key: str, others: bool = True) -> dict | None:
    """The live holder of the lease at ``key`` (not this process, with ``others``), or None."""
    cur = backend.read_tagged(key)
    holder = parse_holder(cur[0]) if cur else {}
    return holder if _live(holder) and not (others and is_self(holder)) else None


def _refused(backend, holder: dict) -> StoreLocked:
    return StoreLocked(f"{locked_error(backend.url, holder)}; if that run is gone, delete "
                       f"{backend.url}/.lock")


@contextmanager
def store_lease(backend, shared: bool):
    """Runs register a lease of their own (shared); gc / repair take ``.lock`` (exclusive)."""
    if shared:
        held = Lease(backend, f"{LOCKS}/runs/{uuid.uuid4().hex}.lock")
        if held.try_take() is not None:  # a fresh random key: only fails if the store does
            raise StoreLocked(f"cannot register this run in {backend.url}/{LOCKS}/runs")
        gc = live_lease(backend, ".lock", others=False)
        if gc is not None:
            held.release()
            raise _refused(backend, gc)
    else:
        held = Lease(backend, ".lock")
        holder = held.try_take()
        if holder is not None:
            raise _refused(backend, holder)
        for name in backend.listdir(f"{LOCKS}/runs"):
            key = f"{LOCKS}/runs/{name}"
            cur = backend.read_tagged(key)
            run = parse_holder(cur[0]) if cur else {}
            if _live(run):
                held.release()
                raise _refused(backend, run)
            if cur is not None:  # a dead run's registration
                backend.delete_if(key, cur[1])
    held.start()
    try:
        yield
    finally:
        held.release()
