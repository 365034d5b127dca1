"""Frames for k-means as a re-iterable stream of bounded float32 chunks.

An out-of-core fit only ever holds one chunk of the data (plus the fit's own k×d state
and a bounded init sample), so its memory does not depend on the number of frames.
A source is anything with ``n_frames``, ``dim`` and ``chunks()``; every call of
``chunks()`` must yield the same frames in the same order and the same chunk
boundaries (the fit's float sums are combined per chunk, so that keeps it bit-exact).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

CHUNK_BYTES = 32 << 20  # float32 bytes per chunk: ~11k frames at 768-d, ~215k at 39-d
MIN_CHUNK_ROWS = 4096


def chunk_rows(dim: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk for ``dim``-d float32 frames (depends on dim only)."""
    return max(MIN_CHUNK_ROWS, chunk_bytes // (4 * max(dim, 1)))


class FrameSource(Protocol):
    n_frames: int
    dim: int

    def chunks(self) -> Iterator[np.ndarray]:
        """C-contiguous float32 (rows, dim) blocks, same split on every call."""
        ...


def checked(chunk: np.ndarray) -> np.ndarray:
    """float32, C-contiguous, finite: validated per chunk so no N×d temporary exists."""
    chunk = np.ascontiguousarray(chunk, dtype=np.float32)
    if not np.isfinite(chunk).all():
        raise ValueError("frames contain NaN or inf")
    return chunk


class ValidatedOnce:
    """A source whose chunks are checked for non-finite values until one whole pass has been
    served; later passes yield the same frames (the protocol), so they skip the scan (still
    float32, C-contiguous: a view when the chunk already is)."""

    validated = False

    def _served(self, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        check = not self.validated
        for chunk in chunks:
            yield checked(chunk) if check else np.ascontiguousarray(chunk, dtype=np.float32)
        self.validated = True


class ArraySource(ValidatedOnce):
    """An in-memory (or memory-mapped) array, served ``rows`` at a time."""

    def __init__(self, x: np.ndarray, rows: int | None = None):
        if x.ndim != 2:
            raise ValueError(f"x must be 2-D, got shape {x.shape}")
        self.x = x
        self.n_frames, self.dim = x.shape
        self.rows = rows or chunk_rows(self.dim)

    def chunks(self) -> Iterator[np.ndarray]:
        return self._served(self.x[s : s + self.rows] for s in range(0, self.n_frames, self.rows))


class NpyFileSource(ValidatedOnce):
    """A 2-D float32 ``.npy`` file read with plain file reads (no mmap pages in RSS)."""

    def __init__(self, path, rows: int | None = None):
        self.path = path
        arr = np.load(path, mmap_mode="r")
        if arr.ndim != 2 or arr.dtype != np.float32 or not arr.flags.c_contiguous:
            raise ValueError(f"{path}: need a C-ordered 2-D float32 array")
        self.n_frames, self.dim = arr.shape
        self.offset = arr.offset
        del arr
        self.rows = rows or chunk_rows(self.dim)

    def chunks(self) -> Iterator[np.ndarray]:
        return self._served(self._read())

    def _read(self) -> Iterator[np.ndarray]:
        buf = np.empty((self.rows, self.dim), dtype=np.float32)
        with open(self.path, "rb", buffering=0) as f:
            f.seek(self.offset)
            for s in range(0, self.n_frames, self.rows):
                m = min(self.rows, self.n_frames - s)
                view = buf[:m]
                f.readinto(memoryview(view).cast("B"))
                yield view


def as_source(x) -> FrameSource:
    """``x`` itself if it streams, else an :class:`ArraySource` over it."""
    return x if hasattr(x, "chunks") else ArraySource(np.asarray(x))


def gather(source: FrameSource, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` (sorted, unique) of the stream, in one pass: (len(idx), dim) float32."""
    out = np.empty((len(idx), source.dim), dtype=np.float32)
    start, got = 0, 0
    for chunk in source.chunks():
        end = start + len(chunk)
        hi = int(np.searchsorted(idx, end))
        out[got:hi] = chunk[idx[got:hi] - start]
        got, start = hi, end
        if got == len(idx):
            break
    if got != len(idx):
        raise ValueError(f"source yielded {start} frames, expected {source.n_frames}")
    return out
