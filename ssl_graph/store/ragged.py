"""Ragged per-utterance arrays: flat frame arrays in parts + an utt → (part, start, end) index.

Zarr v3 has no ragged arrays, so each commit appends one flat ``parts/N`` array (frames × dim)
and publishes a new index. Parts are immutable once written: concurrent readers never see a
half-written part, and a crash between the part and the index write only leaves garbage.
The record keeps each referenced part's checksum manifest; the reader checks the chunk files it
decodes against it, so a damaged part fails naming node, utterance and file.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .integrity import DamagedData, check_files, chunk_files, digest
from .store import Store


class RaggedWriter:
    """Appends utterances to a node, committing every ``commit_frames`` frames."""

    def __init__(self, store: Store, key: str, record: dict, index: dict[str, list],
                 commit_frames: int = 2_000_000):
        self.store, self.key = store, key
        self.record = dict(record)
        self.index = dict(index)
        self.commit_frames = commit_frames
        self._buf: list[tuple[str, np.ndarray | None, int, str]] = []
        self._buf_frames = 0

    @property
    def pending(self) -> bool:
        """Utterances added since the last commit."""
        return bool(self._buf)

    def drop(self, utts: list[str]) -> None:
        for u in utts:
            self.index.pop(u, None)

    def add(self, utt: str, values: np.ndarray | None, version: str, length: int | None = None) -> None:
        n = len(values) if values is not None else int(length or 0)
        self._buf.append((utt, values, n, version))
        self._buf_frames += n if values is not None else 0
        if self._buf_frames >= self.commit_frames:
            self.commit(final=False)

    def commit(self, final: bool, **record_updates) -> None:
        commit_no = int(self.record.get("commit", 0)) + 1
        arrays = [v for _, v, _, _ in self._buf if v is not None]
        part = None
        manifests = dict(self.record.get("parts") or {})
        if arrays:
            part = f"parts/{commit_no:05d}"
            manifests[part] = self.store.write_array(f"{self.key}/{part}",
                                                     np.concatenate(arrays, axis=0))
            self.store.written.pop(f"{self.key}/{part}", None)  # kept in the record instead
        start = 0
        for utt, values, n, version in self._buf:
            if values is None:
                self.index[utt] = [None, 0, n, version]
            else:
                self.index[utt] = [part, start, start + n, version]
                start += n
        self._buf, self._buf_frames = [], 0
        self.record.update(record_updates)
        self.record["commit"] = commit_no
        used = {e[0] for e in self.index.values() if e[0]}
        self.record["parts"] = {p: m for p, m in manifests.items() if p in used}
        self.record["index"] = self.store.write_index(self.key, commit_no, self.index)
        self.record["status"] = "complete" if final else "partial"
        self.record["n_utts"] = len(self.index)
        self.record["n_frames"] = int(sum(e[2] - e[1] for e in self.index.values()))
        self.store.write_record(self.key, self.record)


class RaggedReader:
    """Random access by utterance; reads each needed part range once and caches whole parts."""

    def __init__(self, store: Store, key: str, cache_parts: int = 4):
        self.store, self.key = store, key
        self.record = store.record(key)
        if self.record is not None:
            self.index = store.index(key, self.record)
        if key in store.damaged:
            raise DamagedData(store.damaged[key])
        if self.record is None:
            raise KeyError(key)
        self._manifests = self.record.get("parts") or {}
        self._checked: set[tuple[str, str]] = set()
        self._parts: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_parts = cache_parts

    def _where(self, utt: str) -> str:
        return f"node {self.record.get('name', '?')!r} ({self.key}), utterance {utt!r}"

    def _check(self, part: str, utt: str, start: int = 0, end: int | None = None) -> None:
        """Verify the files a read decodes (once per reader) against the commit's checksums."""
        manifest = self._manifests.get(part)
        if manifest is None:  # written before checksums were kept
            return
        end = manifest["shape"][0] if end is None else end
        rels = [r for r in chunk_files(manifest, start, end) if (part, r) not in self._checked]
        problem = check_files(self.store.backend, f"{self.key}/{part}", manifest, rels)
        if problem:
            raise DamagedData(f"{self._where(utt)}: {problem}; run `ssl-graph verify --repair` "
                              "then `ssl-graph run` to recompute it")
        self._checked.update((part, r) for r in rels)

    def _read(self, part: str, utt: str, sel) -> np.ndarray:
        try:
            return self.store.read_array(f"{self.key}/{part}")[sel]
        except Exception as exc:  # noqa: BLE001 - any decode failure names the data it hit
            raise DamagedData(f"{self._where(utt)}: {self.store.url}/{self.key}/{part} cannot be "
                              f"read ({type(exc).__name__}: {exc}); run `ssl-graph verify`") from None

    def __contains__(self, utt: str) -> bool:
        return utt in self.index

    def utterances(self) -> list[str]:
        return list(self.index)

    def length(self, utt: str) -> int:
        e = self.index[utt]
        return e[2] - e[1]

    def _part(self, part: str, utt: str) -> np.ndarray:
        if part not in self._parts:
            self._check(part, utt)
            self._parts[part] = self._read(part, utt, ...)
            if len(self._parts) > self._cache_parts:
                self._parts.popitem(last=False)
        self._parts.move_to_end(part)
        return self._parts[part]

    def get(self, utt: str) -> np.ndarray:
        part, s, e, _ = self.index[utt]
        if part is None:
            raise KeyError(f"{utt}: this node stores no frames")
        if part in self._parts:
            return self._parts[part][s:e]
        self._check(part, utt, s, e)
        return self._read(part, utt, slice(s, e))

    def read_range(self, part: str, start: int, end: int, utt: str) -> np.ndarray:
        """Rows ``start:end`` of a part, checked against the commit (bulk reads); ``utt`` is
        the first utterance in the range, named if the data is damaged."""
        raw = self._raw_rows(part, start, end, utt)
        if raw is not None:
            return raw
        self._check(part, utt, start, end)
        return np.asarray(self._read(part, utt, slice(start, end)))

    def _raw_rows(self, part: str, start: int, end: int, utt: str) -> np.ndarray | None:
        """Rows of an uncompressed part decoded straight from the chunk bytes the checksum
        check reads anyway (one read of each file instead of two, no codec pipeline); None
        when the part is not plain little-endian bytes in zarr's default chunk layout."""
        import json

        manifest = self._manifests.get(part)
        if manifest is None:
            return None
        key = f"{self.key}/{part}"
        try:
            meta = json.loads(self.store.backend.read_bytes(f"{key}/zarr.json") or b"{}")
        except ValueError:
            return None
        codecs = meta.get("codecs") or []
        if ([c.get("name") for c in codecs] != ["bytes"]
                or (codecs[0].get("configuration") or {}).get("endian", "little") != "little"
                or (meta.get("chunk_key_encoding") or {}).get("name") != "default"):
            return None
        shape, rows = manifest["shape"], int(manifest["chunk_rows"])
        dtype = np.dtype(manifest["dtype"]).newbyteorder("<")
        tail = "/0" * (len(shape) - 1)
        out = np.empty((end - start, *shape[1:]), dtype)
        for ci in range(start // rows, (max(end, start + 1) - 1) // rows + 1):
            rel = f"c/{ci}{tail}"
            expected = manifest["files"].get(rel)
            if expected is None:
                return None
            data = self.store.backend.read_bytes(f"{key}/{rel}")
            if data is None or len(data) != expected[0] or (
                    (part, rel) not in self._checked and digest(data) != expected[1]):
                problem = check_files(self.store.backend, key, manifest, [rel])
                raise DamagedData(f"{self._where(utt)}: {problem}; run `ssl-graph verify "
                                  "--repair` then `ssl-graph run` to recompute it")
            self._checked.add((part, rel))  # parts are immutable: one checksum per reader
            chunk = np.frombuffer(data, dtype).reshape(-1, *shape[1:])  # edge chunks: full or cut
            lo, hi = max(start, ci * rows), min(end, (ci + 1) * rows)
            out[lo - start:hi - start] = chunk[lo - ci * rows:hi - ci * rows]
        return out

    def get_many(self, utts: list[str]) -> list[np.ndarray]:
        """Batch read: one read per part touched, not one per utterance."""
        return [self._part(self.index[u][0], u)[self.index[u][1]:self.index[u][2]] for u in utts]
