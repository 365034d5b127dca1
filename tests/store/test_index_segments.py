"""The columnar per-node index: one small segment per commit, compaction, gc, damage, and the
JSON indexes (and CRC-32 manifests) of stores written by earlier versions."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
import zarr

from ssl_graph.store import index as columnar
from ssl_graph.store.gc import collect
from ssl_graph.store.integrity import DamagedData
from ssl_graph.store.ragged import RaggedReader, RaggedWriter
from ssl_graph.store.store import Store
from ssl_graph.store.verify import repair, verify_node

KEY = "nodes/x-1"


def _frames(i: int, n: int = 5) -> np.ndarray:
    return np.full((n, 3), i, np.float32) + np.arange(n, dtype=np.float32)[:, None] / 10


def _commit(store, utts: dict[str, np.ndarray], drop=(), version="v", final=True):
    rec = store.record(KEY) or {"kind": "X", "name": "x"}
    w = RaggedWriter(store, KEY, rec, store.index(KEY, rec) if store.record(KEY) else {})
    w.drop(list(drop))
    for u, a in utts.items():
        w.add(u, a, version)
    w.commit(final=final)


def _segments(store) -> list[dict]:
    return store.record(KEY)["index"]["segments"]


def test_each_commit_appends_a_segment_of_its_own_utterances_only(tmp_path):
    store = Store(str(tmp_path / "s"))
    for c in range(4):
        _commit(store, {f"u{c}-{i:03d}": _frames(i) for i in range(100)})
    segs = _segments(store)
    assert [s["file"] for s in segs] == [f"index/0000{c}.seg" for c in range(1, 5)]
    assert [s["n"] for s in segs] == [100] * 4  # not 100, 200, 300, 400: nothing is rewritten
    assert max(s["size"] for s in segs) < 1.3 * min(s["size"] for s in segs)
    fresh = Store(str(tmp_path / "s"))
    index = fresh.index(KEY)
    assert len(index) == 400 and index["u3-007"] == ["parts/00004", 35, 40, "v"]
    np.testing.assert_array_equal(RaggedReader(fresh, KEY).get("u2-042"), _frames(42))


def test_redone_and_dropped_utterances_override_earlier_segments(tmp_path):
    store = Store(str(tmp_path / "s"))
    _commit(store, {"a": _frames(1), "b": _frames(2), "c": _frames(3)}, version="v1")
    _commit(store, {"b": _frames(20, 7)}, drop=["b", "c"], version="v2")
    _commit(store, {"d": _frames(4)}, version="v3")
    fresh = Store(str(tmp_path / "s"))
    index = fresh.index(KEY)
    assert sorted(index) == ["a", "b", "d"] and index["b"][3] == "v2" and index["b"][0] == "parts/00002"
    r = RaggedReader(fresh, KEY)
    np.testing.assert_array_equal(r.get("b"), _frames(20, 7))
    assert fresh.record(KEY)["n_utts"] == 3 and fresh.record(KEY)["n_frames"] == 17
    assert verify_node(fresh, KEY).ok


def test_many_segments_compact_into_one_and_gc_drops_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(columnar, "MAX_SEGMENTS", 3)
    store = Store(str(tmp_path / "s"))
    data = {}
    for c in range(5):
        new = {f"u{c}-{i}": _frames(10 * c + i) for i in range(4)}
        data.update(new)
        _commit(store, new)
    segs = _segments(store)
    # commits 1..3 appended; commit 4 found 3 segments and wrote the whole index; 5 appended
    assert [s["file"] for s in segs] == ["index/00004.seg", "index/00005.seg"]
    assert segs[0]["n"] == 16 and segs[1]["n"] == 4
    store.record_names("s", {"x": ("X", "1")})
    removed = sorted(k for k, _ in collect(store).removed)
    assert removed == [f"{KEY}/index/0000{c}.seg" for c in (1, 2, 3)]
    r = RaggedReader(Store(str(tmp_path / "s")), KEY)
    for u, a in data.items():
        np.testing.assert_array_equal(r.get(u), a)


@pytest.mark.parametrize("damage,named", [
    (lambda p: p.write_bytes(p.read_bytes()[:-9]), "is corrupt"),
    (lambda p: p.unlink(), "is missing"),
    (lambda p: p.write_bytes(bytes(b ^ 1 if i == 30 else b for i, b in enumerate(p.read_bytes()))),
     "checksum mismatch"),
])
def test_damaged_segment_is_named_never_read_as_a_shorter_index(tmp_path, damage, named):
    store = Store(str(tmp_path / "s"))
    _commit(store, {"a": _frames(1)})
    _commit(store, {"b": _frames(2)})
    damage(tmp_path / "s" / KEY / "index" / "00001.seg")
    fresh = Store(str(tmp_path / "s"))
    assert fresh.index(KEY) == {}  # not {"b": ...}: a plan recomputes the node, never serves half
    assert f"{KEY}/index/00001.seg" in fresh.damaged[KEY] and named in fresh.damaged[KEY]
    with pytest.raises(DamagedData, match=r"index/00001\.seg"):
        RaggedReader(fresh, KEY)
    c = verify_node(fresh, KEY)
    assert c.bad_index and "index/00001.seg" in c.problems[0]
    repair(fresh, c)
    # the next writer starts from the empty index: a whole segment, not one appended to the damage
    _commit(Store(str(tmp_path / "s")), {"a": _frames(1), "b": _frames(2)})
    again = Store(str(tmp_path / "s"))
    assert [s["file"] for s in _segments(again)] == ["index/00003.seg"]
    assert sorted(again.index(KEY)) == ["a", "b"] and verify_node(again, KEY).ok


def _old_version_node(root) -> dict[str, np.ndarray]:
    """A node exactly as earlier versions wrote it: one JSON index, zlib ``crc32:`` manifests."""
    data = {"a": _frames(1, 4), "b": _frames(2, 6)}
    store = Store(str(root))
    key = f"{KEY}/parts/00001"
    zarr.create_array(store=str(root), name=key, data=np.concatenate(list(data.values())),
                      chunks=(3, 3), zarr_format=3, compressors=None,
                      config={"write_empty_chunks": True})
    files = {}
    for rel in sorted(store.backend.file_sizes(key)):
        raw = store.backend.read_bytes(f"{key}/{rel}")
        files[rel] = [len(raw), f"crc32:{zlib.crc32(raw):08x}"]
    (root / KEY / "index-00001.json").write_text(json.dumps(
        {"a": ["parts/00001", 0, 4, "v"], "b": ["parts/00001", 4, 10, "v"]}))
    store.write_record(KEY, {"kind": "X", "name": "x", "commit": 1, "status": "complete",
                             "index": "index-00001.json", "n_utts": 2, "n_frames": 10,
                             "parts": {"parts/00001": {"shape": [10, 3], "dtype": "float32",
                                                       "chunk_rows": 3, "files": files}}})
    return data


def test_a_store_of_an_earlier_version_reads_verifies_and_upgrades_on_its_next_commit(tmp_path):
    root = tmp_path / "s"
    data = _old_version_node(root)
    store = Store(str(root))
    r = RaggedReader(store, KEY)
    for u, a in data.items():
        np.testing.assert_array_equal(r.get(u), a)
    assert verify_node(store, KEY).ok
    _commit(store, {"c": _frames(3)})
    store = Store(str(root))
    assert [s["file"] for s in _segments(store)] == ["index/00002.seg"]
    assert sorted(store.index(KEY)) == ["a", "b", "c"]
    store.record_names("s", {"x": ("X", "1")})
    assert [k for k, _ in collect(store).removed] == [f"{KEY}/index-00001.json"]
    r = RaggedReader(Store(str(root)), KEY)
    np.testing.assert_array_equal(r.get("b"), data["b"])  # its part still has crc32: manifests


def test_a_bit_flip_under_an_old_crc32_manifest_is_still_caught(tmp_path):
    root = tmp_path / "s"
    _old_version_node(root)
    chunk = root / KEY / "parts" / "00001" / "c" / "2" / "0"  # rows 6-8: utterance b only
    raw = bytearray(chunk.read_bytes())
    raw[5] ^= 4
    chunk.write_bytes(bytes(raw))
    r = RaggedReader(Store(str(root)), KEY)
    np.testing.assert_array_equal(r.get("a"), _frames(1, 4))
    with pytest.raises(DamagedData, match=r"utterance 'b'.*parts/00001/c/2/0 is corrupt"):
        r.get("b")


def test_a_format_1_store_is_marked_format_2_by_its_first_write(tmp_path):
    from ssl_graph.store.store import FORMAT_VERSION, MARKER

    root = tmp_path / "s"
    data = _old_version_node(root)
    (root / MARKER).write_text(json.dumps({"format": 1, "created": "2026-01-01T00:00:00"}))
    store = Store(str(root))  # reads without writing anything
    np.testing.assert_array_equal(RaggedReader(store, KEY).get("a"), data["a"])
    assert json.loads((root / MARKER).read_text())["format"] == 1
    with store.lock():
        _commit(store, {"c": _frames(3)})
    marker = json.loads((root / MARKER).read_text())
    assert FORMAT_VERSION == 2 and marker["format"] == 2 and marker["created"] == "2026-01-01T00:00:00"


def test_segments_round_trip_any_utterance_id_and_entry():
    entries = {"café-001": ["parts/00003", 0, 7, "a" * 16], "ünï/二": [None, 0, 4410, "b"],
               "": ["parts/00001", 7, 7, ""], "x" * 300: ["parts/00003", 7, 9, "c"]}
    got, dropped = columnar.decode(columnar.encode(entries, ["gone", "zürich"]))
    assert got == entries and dropped == ["gone", "zürich"]
    assert columnar.decode(columnar.encode({}, ())) == ({}, [])


def test_a_segment_that_matches_its_checksum_but_is_not_a_segment_is_named(tmp_path):
    store = Store(str(tmp_path / "s"))
    _commit(store, {"a": _frames(1)})
    rec = store.record(KEY)
    junk = columnar.MAGIC + b"\x05\x00\x00\x00[[1]]" + b"not zlib"
    store.backend.write_bytes(f"{KEY}/index/00002.seg", junk)
    from ssl_graph.store.integrity import digest

    rec["index"]["segments"].append({"file": "index/00002.seg", "size": len(junk),
                                     "digest": digest(junk), "n": 1, "dropped": 0})
    store.write_record(KEY, rec)
    fresh = Store(str(tmp_path / "s"))
    assert fresh.index(KEY) == {}
    assert "index/00002.seg: not a readable index segment" in fresh.damaged[KEY]
