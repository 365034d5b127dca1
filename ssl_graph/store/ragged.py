"""Ragged per-utterance arrays: flat frame arrays in parts + an utt → (part, start, end) index.

Zarr v3 has no ragged arrays, so each commit appends one flat ``parts/N`` array (frames × dim)
and one index segment (``index.py``). Parts are immutable once committed: concurrent readers
never see a half-written part, and a crash between the part and the record write only leaves
garbage. The writer streams a part to disk in chunk-aligned blocks as frames arrive and commits
every ``commit_bytes`` of frames, so its memory is one block, not a part (nor two, as a
concatenation would be). The record keeps each part's checksum manifest; the reader reads each
chunk file once, checks those very bytes and decodes them (``chunks.py``), so a damaged part
fails naming node, utterance and file, and caches decoded chunks in an LRU bounded in bytes.
Worker processes write parts themselves (``PartWriter``, named ``parts/j-<uuid>``); ``adopt``
checks such a part and puts it in the next commit, so records and index have one writer.
"""

from __future__ import annotations

import numpy as np

from .chunks import ChunkReader
from .integrity import DamagedData
from .paths import Uncontained, contained, guard
from .store import Store

#: frames of a commit, in bytes: a crash loses at most this much work, and each commit rewrites
#: the record (whose part manifests grow with the node), so not much smaller either
COMMIT_BYTES = 256 << 20
#: rows written to zarr at once: whole chunks, about this many bytes (the writer's memory)
BLOCK_BYTES = 32 << 20
CHUNK_BYTES = 4 << 20


def chunk_rows(row_bytes: int) -> int:
    return max(1, CHUNK_BYTES // max(1, row_bytes))


class PartWriter:
    """One part being written: a zarr array grown block by block, its manifest kept as it goes."""

    def __init__(self, store: Store, key: str, first: np.ndarray):
        import zarr

        if store.backend.link_target(key) is not None:  # a part is replaced, never written
            store.backend.delete(key)                   # through a link (removed, not followed)
        self.store, self.key = store, guard(store.backend, key)  # zarr writes it: no link out
        self.dtype, self.tail = first.dtype, tuple(first.shape[1:])
        row_bytes = max(1, int(np.prod(self.tail, dtype=np.int64)) * first.dtype.itemsize)
        self.chunk_rows = chunk_rows(row_bytes)
        self.block_rows = self.chunk_rows * max(1, BLOCK_BYTES // (self.chunk_rows * row_bytes))
        # float frames compress by only ~15-20 % while zstd decoding caps reads near 0.5 GB/s:
        # store them raw (bulk reads ~3x faster); integer labels and counts keep zstd
        extra = {"compressors": None} if first.dtype.kind == "f" else {}
        self.array = zarr.create_array(
            store=store.url, name=key, shape=(0, *self.tail), dtype=first.dtype,
            chunks=(self.chunk_rows, *self.tail), overwrite=True, zarr_format=3,
            config={"write_empty_chunks": True}, **extra)
        self.rows, self.files = 0, {}
        self._buf: list[np.ndarray] = []
        self._buf_rows = 0

    @property
    def end(self) -> int:
        """Rows added so far (written or buffered): where the next utterance starts."""
        return self.rows + self._buf_rows

    def add(self, utt: str, values: np.ndarray) -> None:
        if values.dtype != self.dtype or tuple(values.shape[1:]) != self.tail:
            raise ValueError(f"{self.key}: utterance {utt!r} has frames of {values.dtype} "
                             f"{tuple(values.shape[1:])}, the part holds {self.dtype} {self.tail}; "
                             "an op must give every utterance the same frame shape")
        self._buf.append(values)
        self._buf_rows += len(values)
        if self._buf_rows >= self.block_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        from .integrity import digest

        if not self._buf:
            return
        data = self._buf[0] if len(self._buf) == 1 else np.concatenate(self._buf, axis=0)
        n = len(data) if final else len(data) // self.chunk_rows * self.chunk_rows
        if n:
            lo = self.rows
            self.store.write_rows(self.key, self.array, lo, data[:n])
            self.rows += n
            tail = "/0" * len(self.tail)
            for ci in range(lo // self.chunk_rows, (self.rows - 1) // self.chunk_rows + 1):
                rel = f"c/{ci}{tail}"  # read back: the digest covers the bytes zarr encoded
                raw = self.store.backend.read_bytes(f"{self.key}/{rel}") or b""
                self.files[rel] = [len(raw), digest(raw)]
        self._buf = [data[n:]] if n < len(data) else []
        self._buf_rows = len(data) - n

    def close(self) -> dict:
        """Write what is left; the part's checksum manifest (the array is final from here)."""
        from .integrity import digest

        self._flush(final=True)
        raw = self.store.backend.read_bytes(f"{self.key}/zarr.json") or b""
        files = {"zarr.json": [len(raw), digest(raw)], **self.files}
        return {"shape": [self.rows, *self.tail], "dtype": str(self.dtype),
                "chunk_rows": self.chunk_rows, "files": dict(sorted(files.items()))}


class RaggedWriter:
    """Appends utterances to a node, committing every ``commit_bytes`` of frames (or, when
    given, every ``commit_frames`` frames, whichever comes first)."""

    def __init__(self, store: Store, key: str, record: dict, index: dict[str, list],
                 commit_frames: int | None = None, commit_bytes: int = COMMIT_BYTES):
        self.store, self.key = store, key
        self.record = dict(record)
        self.index = dict(index)
        self.commit_frames, self.commit_bytes = commit_frames, commit_bytes
        self._entries: dict[str, list] = {}  # since the last commit: its index segment
        self._dropped: set[str] = set()
        self._part: PartWriter | None = None
        self._adopted: dict[str, dict] = {}  # worker-written parts since the last commit
        self._frames = self._bytes = 0
        # segments append to the stored index only when ``index`` is what they hold: an index
        # that read as damaged ({}), or one of an earlier version, is written whole instead
        field = self.record.get("index")
        self._rebase = (not isinstance(field, dict) or key in store.damaged
                        or self.record.get("n_utts") != len(self.index))

    @property
    def pending(self) -> bool:
        """Utterances added since the last commit."""
        return bool(self._entries)

    def drop(self, utts: list[str]) -> None:
        for u in utts:
            if self.index.pop(u, None) is not None:
                self._dropped.add(u)

    def _part_name(self) -> str:
        return f"parts/{int(self.record.get('commit', 0)) + 1:05d}"

    def add(self, utt: str, values: np.ndarray | None, version: str, length: int | None = None) -> None:
        if values is None:
            self._entries[utt] = [None, 0, int(length or 0), version]
            return
        values = np.asarray(values)
        if self._part is None:
            self._part = PartWriter(self.store, f"{self.key}/{self._part_name()}", values)
        start = self._part.end
        self._part.add(utt, values)
        self._entries[utt] = [self._part_name(), start, start + len(values), version]
        self._frames += len(values)
        self._bytes += values.nbytes
        if self._bytes >= self.commit_bytes or (
                self.commit_frames is not None and self._frames >= self.commit_frames):
            self.commit(final=False)

    def adopt(self, utts: list[str], part: dict, versions: list[str]) -> None:
        """Take a part another process wrote (``exec/part_writer.py``) into the next commit:
        its descriptor is checked against the batch and the files on disk first, so a wrong or
        torn part is refused (it stays unreferenced garbage for ``gc``), never committed."""
        problem = _part_problem(self.store, self.key, utts, part,
                                set(self.record.get("parts") or {}) | set(self._adopted))
        if problem:
            raise ValueError(f"{self.key}: the part a worker wrote for utterances {utts[0]!r}.. "
                             f"is unusable ({problem}); nothing of it was committed — rerun")
        name, manifest = part["part"], part["manifest"]
        for utt, (start, end), version in zip(utts, part["rows"], versions):
            if start is None:
                self._entries[utt] = [None, 0, int(end), version]
            else:
                self._entries[utt] = [name, start, end, version]
        if name is not None:
            self._adopted[name] = manifest
            shape = manifest["shape"]
            self._frames += shape[0]
            self._bytes += int(np.prod(shape, dtype=np.int64)) * np.dtype(manifest["dtype"]).itemsize
        if self._bytes >= self.commit_bytes or (
                self.commit_frames is not None and self._frames >= self.commit_frames):
            self.commit(final=False)

    def commit(self, final: bool, **record_updates) -> None:
        from . import index as columnar

        commit_no = int(self.record.get("commit", 0)) + 1
        manifests = dict(self.record.get("parts") or {})
        if self._part is not None:
            manifests[self._part_name()] = self._part.close()
            self._part = None
        manifests.update(self._adopted)
        self._adopted = {}
        for utt, entry in self._entries.items():
            self.index[utt] = entry
            self._dropped.discard(utt)  # re-done in this commit: its new entry overrides
        field = self.record.get("index")
        segments = None if self._rebase else list(field.get("segments") or [])
        if segments is None or columnar.should_compact(segments, len(self.index)):
            # a first commit, an index of an earlier version (one JSON), or too many segments:
            # this commit's segment holds the whole index and replaces the others
            segments = [self.store.write_index_segment(self.key, commit_no, self.index, ())]
        else:
            segments.append(self.store.write_index_segment(
                self.key, commit_no, self._entries, sorted(self._dropped)))
        self._entries, self._dropped, self._rebase = {}, set(), False
        self._frames = self._bytes = 0
        self.record.update(record_updates)
        self.record["commit"] = commit_no
        used = {e[0] for e in self.index.values() if e[0]}
        self.record["parts"] = {p: m for p, m in manifests.items() if p in used}
        self.record["index"] = {"segments": segments}
        self.record["status"] = "complete" if final else "partial"
        self.record["n_utts"] = len(self.index)
        self.record["n_frames"] = int(sum(e[2] - e[1] for e in self.index.values()))
        self.store.write_record(self.key, self.record)


def _part_problem(store: Store, key: str, utts: list[str], part: dict, taken: set[str]) -> str:
    """What is wrong with a worker's part descriptor ('' if nothing): it must name these
    utterances, a fresh part name, rows tiling the part, and files present at their sizes."""
    if not isinstance(part, dict) or part.get("utts") != list(utts):
        return "it describes other utterances"
    name, manifest, rows = part.get("part"), part.get("manifest"), part.get("rows")
    if not isinstance(rows, list) or len(rows) != len(utts):
        return "one row range per utterance expected"
    if name is None:
        return "" if all(r[0] is None for r in rows) else "rows without a part"
    if not (isinstance(name, str) and name.startswith("parts/") and name.count("/") == 1):
        return f"bad part name {name!r}"
    try:
        contained(key, name, "part", store.backend)
    except Uncontained as exc:
        return exc.problem
    if name in taken:
        return f"part name {name!r} is already used"
    if not isinstance(manifest, dict) or "zarr.json" not in (manifest.get("files") or {}):
        return "no checksum manifest"
    at = 0
    for start, end in rows:
        if start is not None:
            if start != at or end < start:
                return "row ranges do not tile the part"
            at = end
    if at != manifest["shape"][0]:
        return f"rows end at {at}, the part holds {manifest['shape'][0]}"
    sizes = store.backend.file_sizes(f"{key}/{name}")
    for rel, (size, _) in manifest["files"].items():
        if sizes.get(rel) != size:
            return f"{name}/{rel} is missing or of the wrong size"
    return ""


class RaggedReader:
    """Random access by utterance, through an LRU of decoded chunks bounded in bytes."""

    def __init__(self, store: Store, key: str, cache_bytes: int | None = None):
        self.store, self.key = store, key
        self.record = store.record(key)
        if self.record is not None:
            self.index = store.index(key, self.record)
        if key in store.damaged:
            raise DamagedData(store.damaged[key])
        if self.record is None:
            raise KeyError(key)
        self._manifests = self.record.get("parts") or {}
        kw = {} if cache_bytes is None else {"cache_bytes": cache_bytes}
        self.chunks = ChunkReader(store, key, self._manifests, self._where, **kw)

    def _where(self, utt: str) -> str:
        return f"node {self.record.get('name', '?')!r} ({self.key}), utterance {utt!r}"

    def __contains__(self, utt: str) -> bool:
        return utt in self.index

    def utterances(self) -> list[str]:
        return list(self.index)

    def length(self, utt: str) -> int:
        e = self.index[utt]
        return e[2] - e[1]

    def get(self, utt: str) -> np.ndarray:
        part, s, e, _ = self.index[utt]
        if part is None:
            raise KeyError(f"{utt}: this node stores no frames")
        return self.chunks.rows(part, s, e, utt)

    def read_range(self, part: str, start: int, end: int, utt: str,
                   out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:end`` of a part, checked against the commit (bulk reads: streamed past
        the cache); ``utt`` is the first utterance in the range, named if the data is damaged;
        ``out`` receives the rows when given (no intermediate copy)."""
        return self.chunks.rows(part, start, end, utt, out=out, cache=False)

    def get_many(self, utts: list[str]) -> list[np.ndarray]:
        """Batch read: each chunk touched is read and checked once (the cache holds it)."""
        return [self.get(u) for u in utts]
