"""Whether an object store honours conditional writes: probed once, remembered in the marker.

Node and store locks on object stores are leases taken by create-only PUTs (``If-None-Match: *``)
and renewed by compare-and-swap (``If-Match: <etag>``) (``lease.py``). A server that ignores
those headers (some S3-compatible stores did for years) answers 200 to every such PUT: each run
"takes" every lease, and two runs compute one node at once. So before the first lock on an
object store, from each endpoint, this module probes it: two create-only PUTs of one fresh key
(the second must be refused) and a PUT whose ``If-Match`` names a wrong ETag (must be refused).
The outcome is kept in the store marker (``conditional_writes``), so later opens do not probe;
a store reached through another endpoint is probed again (delete the field to re-probe one, e.g.
after its server was upgraded).

A store that fails (or a filesystem without conditional writes at all) is refused to runs,
which write concurrently, with one line saying why, unless the user accepts single-writer use
(``ssl-graph run --single-writer``, ``$SSL_GRAPH_SINGLE_WRITER=1``, or ``Store(...,
single_writer=True)``). Then its locks fall back to read-then-write and a run takes the store
lock exclusively: a second run or ``gc`` started while it lives is refused (best effort: two
started in the same instant are not told apart). ``gc`` and ``verify --repair`` take the store
exclusively anyway and need no flag.
"""

from __future__ import annotations

import os
import time
import uuid

from .errors import StoreError

SINGLE_WRITER_ENV = "SSL_GRAPH_SINGLE_WRITER"
MARKER_FIELD = "conditional_writes"


def single_writer_from_env() -> bool:
    return os.environ.get(SINGLE_WRITER_ENV, "").strip().lower() not in ("", "0", "false", "no")


def probe(backend) -> str | None:
    """Why ``backend`` cannot be trusted with concurrent leases; None when it can."""
    from .lock import LOCKS  # (imported here: opening a store for a plan takes no lock)

    if not backend.atomic:
        return "this filesystem has no conditional writes (ssl_graph uses S3's)"
    key = f"{LOCKS}/probe-{uuid.uuid4().hex}"
    try:
        if backend.create_if_absent(key, b"1") is None:
            return "a create-only PUT (If-None-Match: *) of a new key was refused"
        if backend.create_if_absent(key, b"2") is not None:
            return ("the server ignores If-None-Match: a second create-only PUT of one key "
                    "succeeded")
        if backend.replace_if(key, b"3", '"00000000000000000000000000000000"') is not None:
            return "the server ignores If-Match: a PUT naming a wrong ETag succeeded"
    except OSError as exc:
        return f"a conditional PUT failed ({type(exc).__name__}: {exc})"
    finally:
        backend.delete(key)
    return None


def _endpoint(backend) -> str:
    return str((getattr(backend, "options", None) or {}).get("endpoint_url") or "default")


def check(store) -> str | None:
    """The remembered probe of ``store`` from this endpoint (probing and remembering it first
    if need be): None when conditional writes hold, else why not."""
    backend = store.backend
    endpoint = _endpoint(backend)
    known = (store.marker or {}).get(MARKER_FIELD)
    if isinstance(known, dict) and known.get("endpoint") == endpoint and "ok" in known:
        return None if known["ok"] else str(known.get("reason") or "conditional writes failed")
    reason = probe(backend)
    if backend.atomic:  # (a filesystem without them needs no probe, nor a note of one)
        store.note_in_marker(MARKER_FIELD, {"endpoint": endpoint, "ok": reason is None,
                                            "reason": reason,
                                            "probed": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return reason


def lock_mode(store, shared: bool) -> bool:
    """Whether the store lock is taken shared, given what the probe found. Raises
    :class:`StoreError` for a run (``shared``) on a store that fails it without single-writer
    consent; with consent (or for an exclusive lock) leases fall back to read-then-write."""
    if getattr(store.backend, "root", None) is not None:
        return shared  # a local store: the kernel's flock, nothing to probe
    reason = check(store)
    if reason is None:
        return shared
    store.backend.atomic = False  # headers it ignores would let every lease "succeed"
    if not shared:
        return False
    if not store.single_writer:
        raise StoreError(f"{store.url}: {reason}, so two runs could take one node; run one "
                         f"writer at a time with `ssl-graph run --single-writer` "
                         f"(${SINGLE_WRITER_ENV}=1)")
    return False
