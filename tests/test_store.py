"""Store: ragged round trip, atomic commits, the writer lock, the names index, gc."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from ssl_graph.store.gc import collect
from ssl_graph.store.lock import StoreLocked
from ssl_graph.store.ragged import RaggedReader, RaggedWriter
from ssl_graph.store.store import Store


def _utts(rng, n):
    return {f"u{i:03d}": rng.standard_normal((rng.integers(1, 50), 3)).astype(np.float32)
            for i in range(n)}


def test_ragged_round_trip_over_several_commits(tmp_path):
    store = Store(str(tmp_path / "s"))
    data = _utts(np.random.default_rng(0), 30)
    w = RaggedWriter(store, "nodes/x-1", {"kind": "X"}, {}, commit_frames=200)
    for u, a in data.items():
        w.add(u, a, version=f"v-{u}")
    w.commit(final=True)
    rec = store.record("nodes/x-1")
    assert rec["status"] == "complete" and rec["commit"] > 2  # several parts were written
    r = RaggedReader(Store(str(tmp_path / "s")), "nodes/x-1")
    assert r.utterances() == list(data)
    for u, a in data.items():
        np.testing.assert_array_equal(r.get(u), a)
    got = r.get_many(list(data)[::-1])
    for a, b in zip(got, list(data.values())[::-1]):
        np.testing.assert_array_equal(a, b)


def test_uncommitted_part_is_invisible(tmp_path):
    store = Store(str(tmp_path / "s"))
    w = RaggedWriter(store, "nodes/x-1", {"kind": "X"}, {})
    w.add("a", np.ones((4, 2), np.float32), "v1")
    w.commit(final=True)
    # a crash after writing a part but before the index/record commit
    store.write_array("nodes/x-1/parts/00002", np.zeros((9, 2), np.float32))
    r = RaggedReader(Store(str(tmp_path / "s")), "nodes/x-1")
    assert r.utterances() == ["a"] and r.record["commit"] == 1
    np.testing.assert_array_equal(r.get("a"), np.ones((4, 2)))


def _try_lock(path, q):
    try:
        with Store(path).lock():
            q.put("got")
    except StoreLocked as exc:
        q.put(str(exc))


def test_one_writer_at_a_time(tmp_path):
    store = Store(str(tmp_path / "s"))
    q = mp.get_context("spawn").Queue()
    with store.lock():
        p = mp.get_context("spawn").Process(target=_try_lock, args=(str(tmp_path / "s"), q))
        p.start()
        p.join(30)
        msg = q.get(timeout=5)
    assert "is being written by" in msg and "pid" in msg
    p = mp.get_context("spawn").Process(target=_try_lock, args=(str(tmp_path / "s"), q))
    p.start()
    p.join(30)
    assert q.get(timeout=5) == "got"  # released


def test_names_history_and_gc(tmp_path):
    store = Store(str(tmp_path / "s"))
    for fp in ("aaa", "bbb"):
        w = RaggedWriter(store, f"nodes/x-{fp}", {"kind": "X"}, {})
        w.add("u", np.ones((3, 1), np.float32), "v")
        w.commit(final=True)
    store.record_names("demo", {"n": ("X", "aaa")})
    store.record_names("demo", {"n": ("X", "aaa")})  # unchanged: no new history entry
    store.record_names("demo", {"n": ("X", "bbb")})
    assert [h["fingerprint"] for h in store.names("demo")["n"]] == ["aaa", "bbb"]
    dry = collect(store, keep=1, dry_run=True)
    assert [k for k, _ in dry.removed] == ["nodes/x-aaa"] and store.record("nodes/x-aaa")
    assert not collect(store, keep=2, dry_run=True).removed
    collect(store, keep=1)
    assert Store(str(tmp_path / "s")).record("nodes/x-aaa") is None
    assert Store(str(tmp_path / "s")).record("nodes/x-bbb")["status"] == "complete"


def test_gc_drops_superseded_parts_but_keeps_live_data(tmp_path):
    store = Store(str(tmp_path / "s"))
    w = RaggedWriter(store, "nodes/x-1", {"kind": "X"}, {})
    w.add("a", np.ones((2, 2), np.float32), "v1")
    w.commit(final=True)
    w = RaggedWriter(store, "nodes/x-1", store.record("nodes/x-1"), store.index("nodes/x-1"))
    w.drop(["a"])
    w.add("a", np.full((3, 2), 7, np.float32), "v2")  # utterance changed: new part
    w.commit(final=True)
    store.record_names("s", {"n": ("X", "1")})
    removed = [k for k, _ in collect(store).removed]
    # the index of commit 2 is a segment appended to commit 1's: both stay, the old part goes
    assert removed == ["nodes/x-1/parts/00001"]
    np.testing.assert_array_equal(RaggedReader(Store(str(tmp_path / "s")), "nodes/x-1").get("a"),
                                  np.full((3, 2), 7))


def test_fsspec_memory_store_round_trip():
    pytest.importorskip("fsspec")
    store = Store("memory://ssl-graph-test")
    w = RaggedWriter(store, "nodes/x-1", {"kind": "X"}, {})
    w.add("a", np.arange(6, dtype=np.float32).reshape(3, 2), "v1")
    w.commit(final=True)
    r = RaggedReader(Store("memory://ssl-graph-test"), "nodes/x-1")
    np.testing.assert_array_equal(r.get("a"), np.arange(6).reshape(3, 2))


def test_url_store_takes_a_lease_lock():
    pytest.importorskip("fsspec")
    store = Store("memory://ssl-graph-lease")
    with store.lock():
        assert store.backend.exists(".lock")
        with (pytest.raises(StoreLocked, match=r"being written by pid \d+ on .*delete memory://"),
              Store("memory://ssl-graph-lease").lock()):
            pass
    assert not store.backend.exists(".lock")  # released
    with Store("memory://ssl-graph-lease").lock():
        pass


def test_url_store_of_a_newer_format_is_refused():
    pytest.importorskip("fsspec")
    from ssl_graph.store.backend import write_json
    from ssl_graph.store.store import FORMAT_VERSION, MARKER, StoreError

    write_json(Store("memory://ssl-graph-newer").backend, MARKER, {"format": FORMAT_VERSION + 1})
    with pytest.raises(StoreError, match="written by a newer ssl_graph"):
        Store("memory://ssl-graph-newer")


def test_local_url_is_a_local_directory(tmp_path):
    store = Store(f"local://{tmp_path / 's'}")
    assert store.local_root == tmp_path / "s"
    w = RaggedWriter(store, "nodes/x-1", {"kind": "X"}, {})
    w.add("a", np.ones((2, 3), np.float32), "v1")
    w.commit(final=True)
    np.testing.assert_array_equal(RaggedReader(Store(str(tmp_path / "s")), "nodes/x-1").get("a"),
                                  np.ones((2, 3)))


def test_commit_records_part_checksums_and_reads_check_them(tmp_path):
    from ssl_graph.store.integrity import DamagedData

    store = Store(str(tmp_path / "s"))
    w = RaggedWriter(store, "nodes/x-1", {"kind": "X", "name": "x"}, {})
    w.add("a", np.zeros((5, 2), np.float32), "v1")  # all-zero chunks are written too
    w.add("b", np.full((3, 2), 2, np.float32), "v1")
    w.commit(final=True)
    manifest = store.record("nodes/x-1")["parts"]["parts/00001"]
    assert manifest["shape"] == [8, 2] and set(manifest["files"]) == {"zarr.json", "c/0/0"}
    assert store.damaged_utterances("nodes/x-1", store.record("nodes/x-1"),
                                    store.index("nodes/x-1")) == []
    (tmp_path / "s" / "nodes" / "x-1" / "parts" / "00001" / "c" / "0" / "0").unlink()
    fresh = Store(str(tmp_path / "s"))
    assert fresh.damaged_utterances("nodes/x-1", fresh.record("nodes/x-1"),
                                    fresh.index("nodes/x-1")) == ["a", "b"]
    with pytest.raises(DamagedData, match=r"node 'x' \(nodes/x-1\), utterance 'b': .*c/0/0 is missing"):
        RaggedReader(fresh, "nodes/x-1").get("b")


def test_torn_documents_are_named_not_raised(tmp_path):
    store = Store(str(tmp_path / "s"))
    w = RaggedWriter(store, "nodes/x-1", {"kind": "X", "name": "x"}, {})
    w.add("a", np.ones((2, 2), np.float32), "v1")
    w.commit(final=True)
    (tmp_path / "s" / "names").mkdir()
    (tmp_path / "s" / "names" / "x.json").write_text("[1, 2, 3]")
    (tmp_path / "s" / "nodes" / "x-1" / "zarr.json").write_text('{"zarr_format": 3, "attr')
    fresh = Store(str(tmp_path / "s"))
    assert fresh.record("nodes/x-1") is None and fresh.names("x") == {}
    assert "nodes/x-1/zarr.json: not valid JSON" in fresh.damaged["nodes/x-1"]
    assert "names/x.json: expected a JSON dict, found list" in fresh.damaged["names/x.json"]
    with pytest.raises(ValueError, match="--keep must be at least 1"):
        collect(fresh, keep=0)
