"""Reading a part's chunks: each file read once, its bytes checked, and those bytes decoded.

Checking a chunk's checksum and then letting zarr read it again would double the I/O; instead
the reader reads the file, compares size and digest with the commit's manifest, and decodes the
same bytes: uncompressed little-endian parts (float frames) straight into the caller's buffer
(``readinto`` for local stores: one copy, like ``np.load``), any other codec through zarr's own
pipeline over an in-memory store holding just the checked bytes. A chunk is checked once per
reader (parts are immutable). Random access keeps decoded chunks in an LRU bounded in bytes,
so memory stays flat whatever the part size (a 768-d part of 2M frames is 6 GB; a chunk 4 MB).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict

import numpy as np

from .integrity import DamagedData, matches, problem_of
from .paths import Uncontained

#: decoded chunks kept by a reader for random access (``get``/``get_many``)
CACHE_BYTES = 64 << 20


class _Part:
    """What decoding one part needs: its manifest, layout and (for codecs) a zarr array."""

    def __init__(self, meta: dict, manifest: dict):
        self.manifest = manifest
        self.shape = list(manifest["shape"])
        self.rows = max(1, int(manifest["chunk_rows"]))
        self.tail = "/0" * (len(self.shape) - 1)
        codecs = meta.get("codecs") or []
        self.raw = ([c.get("name") for c in codecs] == ["bytes"]
                    and (codecs[0].get("configuration") or {}).get("endian", "little") == "little"
                    and (meta.get("chunk_key_encoding") or {}).get("name") == "default")
        self.dtype = np.dtype(manifest["dtype"]).newbyteorder("<") if self.raw else None
        self.row_bytes = (int(np.prod(self.shape[1:], dtype=np.int64))
                          * np.dtype(manifest["dtype"]).itemsize)
        self._meta, self._mem, self._array = meta, None, None

    def rel(self, ci: int) -> str:
        return f"c/{ci}{self.tail}"

    def decode(self, ci: int, data: bytes) -> np.ndarray:
        """Rows of chunk ``ci`` (an edge chunk cut to the array) from its checked bytes."""
        lo, hi = ci * self.rows, min(self.shape[0], (ci + 1) * self.rows)
        if self.raw:
            return np.frombuffer(data, self.dtype).reshape(-1, *self.shape[1:])[:hi - lo]
        import zarr
        from zarr.core.buffer import cpu
        from zarr.storage import MemoryStore

        if self._array is None:
            self._mem = {"zarr.json": cpu.Buffer.from_bytes(json.dumps(self._meta).encode())}
            self._array = zarr.open_array(store=MemoryStore(store_dict=self._mem), mode="r",
                                          zarr_format=3)
        self._mem[self.rel(ci)] = cpu.Buffer.from_bytes(data)
        try:
            return np.asarray(self._array[lo:hi])
        finally:
            del self._mem[self.rel(ci)]


class ChunkReader:
    """Checked, decoded rows of one node's parts; an LRU of chunks for random access."""

    def __init__(self, store, key: str, manifests: dict, where, cache_bytes: int = CACHE_BYTES):
        self.store, self.key, self.manifests, self.where = store, key, manifests, where
        self.cache_bytes = cache_bytes
        self._parts: dict[str, _Part | None] = {}
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._cached = 0
        self._checked: set[tuple[str, int]] = set()
        self._scratch: np.ndarray | None = None  # one chunk's bytes, reused (``scatter``)

    # ---- errors ---------------------------------------------------------------------------
    def _damaged(self, utt: str, problem: str) -> DamagedData:
        exc = DamagedData(f"{self.where(utt)}: {problem}; run `ssl-graph verify --repair` "
                          "then `ssl-graph run` to recompute it")
        exc.problem = problem  # what ``verify`` reports, without the reader's context
        return exc

    def _part(self, part: str, utt: str) -> _Part | None:
        """The part's layout, its metadata checked; None for parts written before checksums."""
        if part not in self._parts:
            manifest = self.manifests.get(part)
            if manifest is None:
                self._parts[part] = None
                return None
            key = f"{self.key}/{part}"
            data = self._read(f"{key}/zarr.json", utt)
            problem = problem_of(self.store.backend, key, "zarr.json", data,
                                 manifest["files"].get("zarr.json", [None, None]))
            if problem:
                raise self._damaged(utt, problem)
            self._parts[part] = _Part(json.loads(data), manifest)
        return self._parts[part]

    # ---- one chunk ------------------------------------------------------------------------
    def _bytes(self, p: _Part, part: str, ci: int, utt: str, into=None):
        """The chunk's file bytes (or ``into``, filled), checked unless already checked."""
        key, rel = f"{self.key}/{part}", p.rel(ci)
        expected = p.manifest["files"].get(rel)
        if expected is None:
            raise self._damaged(utt, f"{self.store.url}/{key}/{rel} is not in its commit's "
                                "manifest")
        data = filled = None
        if into is not None:
            data = filled = self._read_into(f"{key}/{rel}", into, expected[0])
        if data is None:
            data = self._read(f"{key}/{rel}", utt)
        if (part, ci) not in self._checked:
            if data is None or len(data) != expected[0] or not matches(data, expected[1]):
                buf = None if data is None else bytes(data)
                raise self._damaged(utt, problem_of(self.store.backend, key, rel, buf, expected))
            self._checked.add((part, ci))
        if into is not None and filled is None:  # an object store: one copy from its bytes
            into.reshape(-1).view(np.uint8)[:] = np.frombuffer(data, np.uint8)
        return data

    def _read(self, key: str, utt: str) -> bytes | None:
        try:
            return self.store.backend.read_bytes(key)
        except Uncontained as exc:  # a link out of the node's folder: damage, never followed
            raise self._damaged(utt, str(exc)) from None

    def _read_into(self, key: str, into: np.ndarray, size: int):
        """Read a local file of exactly ``size`` bytes straight into ``into`` (else None)."""
        if self.store.local_root is None or into.nbytes != size or not into.flags.c_contiguous:
            return None
        try:
            with open(self.store.backend.path(key), "rb", buffering=0) as f:
                if os.fstat(f.fileno()).st_size != size:
                    return None  # let the plain read report it
                flat = into.reshape(-1).view(np.uint8)
                view, got = memoryview(flat), 0
                while got < size:
                    n = f.readinto(view[got:])
                    if not n:
                        return None
                    got += n
        except (OSError, Uncontained):  # let the plain read report it
            return None
        checked = flat.view()
        checked.setflags(write=False)  # what the checksum functions accept without a copy
        return checked

    def chunk(self, part: str, ci: int, utt: str, cache: bool = True) -> np.ndarray:
        """Decoded rows of one chunk (from the LRU when there)."""
        hit = self._cache.get((part, ci))
        if hit is not None:
            self._cache.move_to_end((part, ci))
            return hit
        p = self._part(part, utt)
        try:
            rows = p.decode(ci, self._bytes(p, part, ci, utt))
        except DamagedData:
            raise
        except Exception as exc:  # noqa: BLE001 - any decode failure names the data it hit
            raise self._damaged(utt, f"{self.store.url}/{self.key}/{part}/{p.rel(ci)} cannot be "
                                f"decoded ({type(exc).__name__}: {exc})") from None
        if cache and rows.nbytes <= self.cache_bytes:
            self._cache[(part, ci)] = rows
            self._cached += rows.nbytes
            while self._cached > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached -= old.nbytes
        return rows

    def check_part(self, part: str) -> str | None:
        """Every file of a part checked and every chunk decoded, one chunk in memory at a
        time (``verify``); the first problem, or None."""
        try:
            p = self._part(part, "")
            if list(p._meta.get("shape") or []) != p.shape:
                return (f"{self.store.url}/{self.key}/{part}/zarr.json has shape "
                        f"{p._meta.get('shape')}, its commit recorded {p.shape}")
            for ci in range(-(-p.shape[0] // p.rows)):
                self.chunk(part, ci, "", cache=False)
        except DamagedData as exc:
            return getattr(exc, "problem", str(exc))
        return None

    # ---- rows -----------------------------------------------------------------------------
    def rows(self, part: str, start: int, end: int, utt: str, out: np.ndarray | None = None,
             cache: bool = True) -> np.ndarray:
        """Rows ``start:end`` of ``part``, each chunk checked against the commit."""
        p = self._part(part, utt)
        if p is None:
            return self._unchecked(part, start, end, utt, out)
        if out is None:
            out = np.empty((end - start, *p.shape[1:]), np.dtype(p.manifest["dtype"]))
        for ci in range(start // p.rows, (max(end, start + 1) - 1) // p.rows + 1):
            lo, hi = max(start, ci * p.rows), min(end, (ci + 1) * p.rows)
            if hi <= lo:
                continue
            whole = lo == ci * p.rows and hi == (ci + 1) * p.rows
            if p.raw and whole and (part, ci) not in self._cache and not cache:
                self._bytes(p, part, ci, utt, into=out[lo - start:hi - start])
                continue
            chunk = self.chunk(part, ci, utt, cache=cache)
            out[lo - start:hi - start] = chunk[lo - ci * p.rows:hi - ci * p.rows]
        return out

    def scatter(self, part: str, pieces: list[tuple[int, int, np.ndarray, str]]) -> None:
        """Rows ``lo:hi`` of ``part`` into each ``out`` of ``pieces`` (sorted by ``lo``; the
        last item names the utterance if the data is damaged), chunk by chunk, past the cache.
        A raw chunk of a local store is read once into a reused buffer (no fresh pages) and
        checked; once checked, later reads go from the file straight into the outputs."""
        p = self._part(part, pieces[0][3])
        if p is None:
            for lo, hi, out, utt in pieces:
                self._unchecked(part, lo, hi, utt, out)
            return
        local = p.raw and self.store.local_root is not None
        pieces = [x for x in pieces if x[1] > x[0]]
        chunk_ids = sorted({ci for lo, hi, _, _ in pieces
                            for ci in range(lo // p.rows, (hi - 1) // p.rows + 1)})
        j = 0
        for ci in chunk_ids:
            c_lo, c_hi = ci * p.rows, (ci + 1) * p.rows
            while pieces[j][1] <= c_lo:  # (pieces are sorted and do not overlap)
                j += 1
            here, k = [], j
            while k < len(pieces) and pieces[k][0] < c_hi:
                lo, hi, out, utt = pieces[k]
                a, b = max(lo, c_lo), min(hi, c_hi)
                here.append((a, b, out[a - lo:b - lo], utt))
                k += 1
            if local and (part, ci) in self._checked and self._pread(p, part, ci, here):
                continue
            rows = (self._scratch_chunk(p, part, ci, here[0][3]) if local
                    else self.chunk(part, ci, here[0][3], cache=False))
            for a, b, dest, _ in here:
                dest[...] = rows[a - c_lo:b - c_lo]

    def _scratch_chunk(self, p: _Part, part: str, ci: int, utt: str) -> np.ndarray:
        """A raw chunk's rows, read into the reused buffer and checked."""
        size = p.manifest["files"].get(p.rel(ci), [0])[0]
        if self._scratch is None or self._scratch.nbytes < size:
            self._scratch = np.empty(max(size, 1), np.uint8)
        data = self._bytes(p, part, ci, utt, into=self._scratch[:size])
        return p.decode(ci, data)

    def _pread(self, p: _Part, part: str, ci: int, here) -> bool:
        """Checked chunk: each piece read from the file into its output (False: fall back)."""
        try:
            with open(self.store.backend.path(f"{self.key}/{part}/{p.rel(ci)}"), "rb",
                      buffering=0) as f:
                fd, base = f.fileno(), ci * p.rows
                for a, _end, dest, _ in here:
                    if not dest.flags.c_contiguous:
                        return False
                    view = memoryview(dest.reshape(-1).view(np.uint8))
                    got, off = 0, (a - base) * p.row_bytes
                    while got < len(view):
                        n = os.preadv(fd, [view[got:]], off + got)
                        if not n:
                            return False  # shorter than checked: the plain read names it
                        got += n
        except (OSError, Uncontained):
            return False
        return True

    def _unchecked(self, part: str, start: int, end: int, utt: str, out) -> np.ndarray:
        """A part written before checksums were kept: zarr reads it as it is."""
        try:
            rows = np.asarray(self.store.read_array(f"{self.key}/{part}")[start:end])
        except Exception as exc:  # noqa: BLE001
            raise self._damaged(utt, f"{self.store.url}/{self.key}/{part} cannot be read "
                                f"({type(exc).__name__}: {exc})") from None
        if out is not None:
            out[...] = rows
            return out
        return rows

