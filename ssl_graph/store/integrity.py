"""Checksums of stored arrays: what a commit promises, checked cheaply at plan and fully on read.

Each zarr array written by the store gets a manifest ``{"shape", "dtype", "chunk_rows",
"files": {relative key: [size, digest]}}`` saved in the commit. The digests cover the *encoded*
file bytes (chunk files and the array's ``zarr.json``), not the decoded values: a reader checks
just the chunk files it is about to decode, so a truncated or bit-flipped chunk is reported with
its file name before the codec sees it (instead of a nameless ``Zstd decompression error``), and a
deleted chunk is reported instead of read back as zarr's fill value (zeros). Planning lists each
part once and reads only files modified after their commit (``plan_problems``).
"""

from __future__ import annotations

import zlib

from .backend import location_of


class DamagedData(ValueError):
    """Stored array bytes that are missing or differ from what their commit recorded."""


def digest(data) -> str:
    """CRC-32C of the file bytes: like CRC-32 it catches every truncation, single-bit flip and
    burst error up to 32 bits (accidental damage, not tampering), and the hardware instruction
    behind ``google_crc32c`` runs ~9 GB/s here (zlib's CRC-32 ~2 GB/s, blake2b ~0.2 GB/s), so
    checking every chunk a bulk read decodes costs a fraction of reading it."""
    return f"crc32c:{_crc32c(data):08x}"


def _crc32c(data) -> int:
    import google_crc32c  # (imported by the first read or write of a chunk; a no-op plan reads none)

    return google_crc32c.value(data)


def matches(data, expected: str) -> bool:
    """``data`` has the recorded digest; manifests of earlier versions hold ``crc32:`` (zlib)."""
    algo, _, value = str(expected).partition(":")
    if algo == "crc32c":
        return f"{_crc32c(data):08x}" == value
    if algo == "crc32":
        return f"{zlib.crc32(data):08x}" == value
    return False  # an unknown algorithm cannot vouch for the bytes


def array_manifest(backend, key: str, shape, dtype, chunk_rows: int) -> dict:
    """Read back every file zarr just wrote under ``key`` and record its size and digest."""
    files = {}
    for rel in sorted(backend.file_sizes(key)):
        raw = backend.read_bytes(f"{key}/{rel}") or b""
        files[rel] = [len(raw), digest(raw)]
    return {"shape": [int(s) for s in shape], "dtype": str(dtype), "chunk_rows": int(chunk_rows),
            "files": files}


def chunk_files(manifest: dict, start: int, end: int) -> list[str]:
    """The files a read of rows ``[start, end)`` decodes: the metadata and the touched chunks."""
    rows = max(1, int(manifest.get("chunk_rows") or 1))
    touched = {str(i) for i in range(start // rows, (max(end, start + 1) - 1) // rows + 1)}
    return [rel for rel in manifest["files"]
            if rel == "zarr.json" or (rel.startswith("c/") and rel.split("/")[1] in touched)]


def plan_problems(backend, key: str, manifest: dict, committed_ns: int | None = None,
                  memo=None) -> list[str]:
    """What planning checks of one committed array (one listing; reads only changed files):

    * every file its commit recorded exists with the recorded size;
    * a file modified after its commit (an mtime later than ``committed_ns``, the mtime of the
      node record written as that commit's last step; parts are immutable once committed) is
      read and checked against its CRC-32C. An in-place edit of a chunk thus restales its
      utterances, while a flipped bit that left the mtime alone (disk rot) is only found by
      reads and ``ssl-graph verify``. Files that pass (a copy that did not keep mtimes) are
      remembered in ``memo`` (local stores) and not read again while their stat is unchanged.
    * a folder that is a link out of the store is unusable (never followed).
    """
    from .paths import Uncontained

    try:
        stats = backend.file_stats(key)
    except Uncontained as exc:  # its folder is a link out of the store: unusable, not followed
        return [f"* leads outside the node's folder ({exc.reason})"]
    out = []
    for rel, (size, expected) in manifest["files"].items():
        found = stats.get(rel)
        if found is None:
            out.append(f"{rel} is missing")
        elif found[0] != size:
            out.append(f"{rel} has {found[0]} bytes, its commit recorded {size}")
        elif committed_ns is not None and found[1] is not None and found[1] > committed_ns:
            where = f"{key}/{rel}"
            if memo is not None and memo.checked(where, found, expected):
                continue
            problem = file_problem(backend, key, rel, [size, expected])
            if problem:
                out.append(f"{rel} was modified after its commit and fails its checksum")
            elif memo is not None:
                memo.remember_checked(where, found, expected)
    return out


def problem_of(backend, key: str, rel: str, data: bytes | None, expected: list) -> str | None:
    """What is wrong with the bytes just read from ``key/rel`` (None: they match the commit)."""
    if data is None:
        return f"{location_of(backend, f'{key}/{rel}')} is missing"
    if len(data) != expected[0]:
        return (f"{location_of(backend, f'{key}/{rel}')} is corrupt ({len(data)} bytes, "
                f"its commit recorded {expected[0]}: truncated or padded)")
    if not matches(data, expected[1]):
        return f"{location_of(backend, f'{key}/{rel}')} is corrupt (checksum mismatch)"
    return None


def read_checked(backend, key: str, rel: str, expected: list) -> tuple[bytes | None, str | None]:
    """(bytes, problem) of one file read once: callers decode the very bytes they verified."""
    data = backend.read_bytes(f"{key}/{rel}")
    return data, problem_of(backend, key, rel, data, expected)


def file_problem(backend, key: str, rel: str, expected: list) -> str | None:
    return read_checked(backend, key, rel, expected)[1]


def check_files(backend, key: str, manifest: dict, rels: list[str]) -> str | None:
    """The first problem among ``rels`` (full read + digest), or None."""
    for rel in rels:
        problem = file_problem(backend, key, rel, manifest["files"][rel])
        if problem:
            return problem
    return None
