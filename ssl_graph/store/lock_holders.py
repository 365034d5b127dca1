"""Who holds a store lock, and how a waiting or refused run says so.

Shared by the local ``flock`` locks (``flock.py``) and the object-store leases (``lease.py``):
a holder is ``{pid, host, since}``, written into the lock file or lease object.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

LOCKS = "locks"  # per-node lock files (and run registrations) under the store root
#: how often a waiting run says it still waits (seconds)
WAIT_REPORT_S = 30.0


class StoreLocked(RuntimeError):
    pass



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

