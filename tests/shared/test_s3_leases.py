"""The lease primitive on a real (local) S3 server: create-only PUT, compare-and-swap renewal
and takeover, conditional release; the store lock shared by runs and exclusive for gc."""

from __future__ import annotations

import threading
import time

import pytest

from ssl_graph.store.backend import FsspecBackend
from ssl_graph.store.lease import Lease
from ssl_graph.store.lock import StoreLocked, live_writer
from ssl_graph.store.store import Store

from .s3 import BUCKET, s3  # noqa: F401  (fixture)


def test_conditional_writes_are_real_on_s3(s3):  # noqa: F811
    b = FsspecBackend(f"s3://{BUCKET}/store")
    assert b.atomic
    tag = b.create_if_absent("x", b"1")
    assert tag and b.create_if_absent("x", b"2") is None
    new = b.replace_if("x", b"3", tag)
    assert new and new != tag and b.replace_if("x", b"4", tag) is None
    assert not b.delete_if("x", tag) and b.read_bytes("x") == b"3"
    assert b.delete_if("x", new) and b.read_bytes("x") is None


def test_one_of_many_racing_takers_wins(s3):  # noqa: F811
    b = FsspecBackend(f"s3://{BUCKET}/store")
    leases = [Lease(b, "locks/n.lock") for _ in range(8)]
    results, go = [None] * 8, threading.Barrier(8)

    def take(i):
        go.wait()
        results[i] = leases[i].try_take()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is None for r in results) == 1, results


def test_renewed_lease_holds_and_expired_one_is_taken_over(s3, capfd):  # noqa: F811
    b = FsspecBackend(f"s3://{BUCKET}/store")
    a = Lease(b, "locks/n.lock", ttl=1.5)
    assert a.try_take() is None
    a.start()  # heartbeat renews every 0.5 s
    time.sleep(2.5)
    other = Lease(b, "locks/n.lock", ttl=1.5)
    assert other.try_take() is not None  # still held: renewed past its first expiry
    assert live_writer(b, "nodes/n") is None  # (same process: not reported as another writer)
    a._stop.set()
    a._thread.join()  # the holder stalls (no more renewals) ...
    time.sleep(1.8)
    assert other.try_take() is None  # ... so its lease runs out and is taken over
    a.release()  # the old holder's conditional delete must not remove the new lease
    assert Lease(b, "locks/n.lock").try_take() is not None
    other.release()
    assert Lease(b, "locks/n.lock").try_take() is None


def test_gc_is_refused_while_a_run_is_registered(s3):  # noqa: F811
    url = f"s3://{BUCKET}/store"
    with (Store(url).lock(shared=True), Store(url).lock(shared=True),  # two runs at once
          pytest.raises(StoreLocked, match=r"being written by pid \d+ on .*delete s3://"),
          Store(url).lock()):
        pass
    with (Store(url).lock(),  # both gone: gc gets the store, and a run must wait for it
          pytest.raises(StoreLocked, match="being written by"), Store(url).lock(shared=True)):
        pass


def test_storage_options_given_in_python(s3, monkeypatch):  # noqa: F811
    monkeypatch.delenv("SSL_GRAPH_STORAGE_OPTIONS")
    import fsspec.config

    fsspec.config.conf.pop("s3", None)
    store = Store(f"s3://{BUCKET}/py", storage_options=s3["options"])
    with store.lock(shared=True):
        store.write_record("nodes/x-1", {"kind": "X", "status": "complete"})
    assert Store(f"s3://{BUCKET}/py", storage_options=s3["options"]).record("nodes/x-1")["kind"] == "X"
    assert s3["fs"].exists(f"{BUCKET}/py/ssl_graph.json")
