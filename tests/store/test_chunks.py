"""Parts streamed in chunk-aligned blocks, commits sized in bytes, chunk reads checked once and
decoded from the checked bytes, and the readers' chunk cache bounded in bytes."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_graph.store import ragged
from ssl_graph.store.bulk import iter_ragged, read_many, to_numpy
from ssl_graph.store.integrity import DamagedData
from ssl_graph.store.ragged import RaggedReader, RaggedWriter
from ssl_graph.store.store import Store
from ssl_graph.store.verify import verify_node

KEY = "nodes/x-1"


def _data(n: int, dim: int, dtype=np.float32, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (lambda t: (t, dim)) if dim else (lambda t: (t,))
    return {f"u{i:04d}": (rng.standard_normal(shape(int(rng.integers(5, 60)))) * 50).astype(dtype)
            for i in range(n)}


def _write(store, data, **kw) -> None:
    w = RaggedWriter(store, KEY, {"kind": "X", "name": "x"}, {}, **kw)
    for u, a in data.items():
        w.add(u, a, "v")
    w.commit(final=True)


@pytest.fixture
def small_chunks(monkeypatch):
    """4 KB chunks and 16 KB blocks, so a few hundred frames span many of each."""
    monkeypatch.setattr(ragged, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(ragged, "BLOCK_BYTES", 16384)


@pytest.mark.parametrize("dim,dtype", [(16, np.float32), (0, np.int16), (4, np.int32)])
def test_streamed_parts_read_back_exactly_raw_and_compressed(tmp_path, small_chunks, dim, dtype):
    store = Store(str(tmp_path / "s"))
    data = _data(200, dim, dtype)
    _write(store, data, commit_bytes=1 << 30)
    rec = store.record(KEY)
    (manifest,) = rec["parts"].values()
    rows = sum(len(a) for a in data.values())
    assert manifest["shape"][0] == rows and len(manifest["files"]) - 1 == -(-rows // manifest["chunk_rows"])
    fresh = Store(str(tmp_path / "s"))
    r = RaggedReader(fresh, KEY)
    for u, a in data.items():
        got = r.get(u)
        assert got.dtype == a.dtype
        np.testing.assert_array_equal(got, a)
    values, offsets, utts = to_numpy(r)
    np.testing.assert_array_equal(values, np.concatenate(list(data.values())))
    assert utts == list(data) and offsets[-1] == rows
    assert dict((u, a.shape) for u, a in iter_ragged(r)) == {u: a.shape for u, a in data.items()}
    assert verify_node(fresh, KEY).ok


def test_commits_are_sized_in_bytes(tmp_path, small_chunks):
    store = Store(str(tmp_path / "s"))
    data = _data(300, 16)
    nbytes = sum(a.nbytes for a in data.values())
    _write(store, data, commit_bytes=nbytes // 5)
    rec = store.record(KEY)
    assert rec["commit"] in (5, 6) and len(rec["parts"]) == rec["commit"]
    sizes = [m["shape"][0] * 16 * 4 for m in rec["parts"].values()]
    assert all(s >= nbytes // 5 for s in sizes[:-1])  # each commit holds at least its budget
    r = RaggedReader(Store(str(tmp_path / "s")), KEY)
    for u, a in data.items():
        np.testing.assert_array_equal(r.get(u), a)


def test_mixed_frame_shapes_in_one_part_are_named(tmp_path):
    w = RaggedWriter(Store(str(tmp_path / "s")), KEY, {"kind": "X"}, {})
    w.add("a", np.zeros((3, 4), np.float32), "v")
    with pytest.raises(ValueError, match="utterance 'b' has frames of float32 \\(5,\\)"):
        w.add("b", np.zeros((3, 5), np.float32), "v")


def test_random_access_cache_is_bounded_in_bytes(tmp_path, small_chunks):
    store = Store(str(tmp_path / "s"))
    data = _data(400, 16)
    _write(store, data)
    r = RaggedReader(Store(str(tmp_path / "s")), KEY, cache_bytes=20_000)
    order = list(data)
    np.random.default_rng(1).shuffle(order)
    peak = 0
    for u in order:
        np.testing.assert_array_equal(r.get(u), data[u])
        peak = max(peak, r.chunks._cached)
    assert 0 < peak <= 20_000 and sum(a.nbytes for a in r.chunks._cache.values()) == r.chunks._cached
    assert sum(a.nbytes for a in data.values()) > 10 * 20_000


def test_each_chunk_file_is_read_once_per_pass_and_checked_once_per_reader(small_chunks):
    store = Store("memory://ssl-graph-chunks-once")
    data = _data(150, 16)
    _write(store, data)
    reads: list[str] = []
    real = store.backend.read_bytes

    def counting(key):
        reads.append(key)
        return real(key)

    store.backend.read_bytes = counting
    r = RaggedReader(store, KEY)
    (manifest,) = r.record["parts"].values()
    n_chunks = len(manifest["files"]) - 1
    values, _, _ = to_numpy(r)
    chunk_reads = [k for k in reads if "/c/" in k]
    assert len(chunk_reads) == len(set(chunk_reads)) == n_chunks  # no second read to checksum
    np.testing.assert_array_equal(values, np.concatenate(list(data.values())))


@pytest.mark.parametrize("damage,named", [
    (lambda p: p.unlink(), "is missing"),
    (lambda p: p.write_bytes(p.read_bytes()[:-3]), "is corrupt"),
    (lambda p: p.write_bytes(p.read_bytes()[:7] + bytes([p.read_bytes()[7] ^ 2])
                             + p.read_bytes()[8:]), r"is corrupt \(checksum mismatch"),
])
@pytest.mark.parametrize("path", ["bulk", "many", "get"])
def test_a_damaged_chunk_is_named_on_every_read_path(tmp_path, small_chunks, damage, named, path):
    store = Store(str(tmp_path / "s"))
    data = _data(100, 16)
    _write(store, data)
    damage(tmp_path / "s" / KEY / "parts" / "00001" / "c" / "3" / "0")
    r = RaggedReader(Store(str(tmp_path / "s")), KEY)
    with pytest.raises(DamagedData, match=rf"node 'x'.*parts/00001/c/3/0 {named}"):
        if path == "bulk":
            to_numpy(r)
        elif path == "many":
            read_many(r, list(data))
        else:
            for u in data:
                r.get(u)


@pytest.mark.parametrize("dim,dtype", [(39, np.float32), (768, np.float32), (39, np.float64),
                                       (0, np.int16), (3, np.int32)])
def test_bulk_reads_equal_per_utterance_reads_exactly(tmp_path, small_chunks, dim, dtype):
    """``read_many`` (features_many), ``to_numpy`` and iteration give exactly the arrays one
    ``get`` per utterance gives — dtype, shape, values, the order asked — raw float parts and
    zstd-compressed integer ones, over several parts, on the first (checked) pass and on later
    passes (read from the files straight into the outputs)."""
    store = Store(str(tmp_path / "s"))
    data = _data(120, dim, dtype)
    _write(store, data, commit_bytes=sum(a.nbytes for a in data.values()) // 3)  # 3-4 parts
    r = RaggedReader(Store(str(tmp_path / "s")), KEY)
    assert len(r.record["parts"]) >= 3
    single = {u: RaggedReader(Store(str(tmp_path / "s")), KEY).get(u) for u in data}
    rng = np.random.default_rng(1)
    asked = [str(u) for u in rng.permutation(list(data))[:70]] + ["u0003", "u0003"]
    for _ in range(2):  # first pass checks every chunk; the second reads checked chunks
        got = read_many(r, asked)
        assert [a.dtype for a in got] == [np.dtype(dtype)] * len(asked)
        for u, a in zip(asked, got):
            assert a.shape == single[u].shape and a.flags.owndata
            np.testing.assert_array_equal(a, single[u])
        got[-1][...] = 0  # an utterance asked twice: two arrays, not one
        np.testing.assert_array_equal(got[-2], single["u0003"])
        values, offsets, utts = to_numpy(r)
        assert utts == list(data) and values.dtype == np.dtype(dtype)
        reused = np.full_like(values, 7)
        again, offsets2, _ = to_numpy(r, out=reused)  # read into a caller's buffer
        assert again is reused and np.array_equal(offsets2, offsets)
        np.testing.assert_array_equal(again, values)
        with pytest.raises(ValueError, match=r"to_numpy\(out=...\) needs a writable C-contiguous"):
            to_numpy(r, out=reused[1:])
        for i, u in enumerate(utts):
            np.testing.assert_array_equal(values[offsets[i]:offsets[i + 1]], single[u])
        seen = dict(iter_ragged(r))
        assert seen.keys() == data.keys()
        for u, a in seen.items():
            np.testing.assert_array_equal(a, single[u])
    for u, a in data.items():
        np.testing.assert_array_equal(single[u], a)


def test_bulk_reads_from_an_object_store_equal_per_utterance_reads(small_chunks):
    """The same through a store with no local files (each chunk's checked bytes decoded)."""
    store = Store("memory://ssl-graph-bulk-many")
    data = _data(80, 39)
    _write(store, data, commit_bytes=sum(a.nbytes for a in data.values()) // 2)
    r = RaggedReader(store, KEY)
    asked = list(data)[::-1]
    for _ in range(2):
        for u, a in zip(asked, read_many(r, asked)):
            np.testing.assert_array_equal(a, data[u])
            assert a.dtype == np.float32
        values, offsets, utts = to_numpy(r, out=np.empty((sum(map(len, data.values())), 39),
                                                          np.float32))
        np.testing.assert_array_equal(values, np.concatenate([data[u] for u in utts]))
