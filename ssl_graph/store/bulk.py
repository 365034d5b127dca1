"""Bulk reads of ragged nodes: every utterance, streamed in storage order, in large blocks.

Random access (``RaggedReader.get``) opens the part and decodes whole chunks for one utterance;
a dump of a whole corpus that way pays that cost per utterance. Here utterances are visited in
(part, offset) order and each part is read in contiguous blocks of about ``block_bytes``, so
throughput approaches a plain ``np.load`` and memory stays bounded by one block (plus the
caller's own accumulation). Each chunk file is read once, checked and decoded from the same
bytes (``chunks.py``); ``to_numpy`` reads runs of contiguous utterances straight into its
output, with no intermediate block.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from .ragged import RaggedReader

BLOCK_BYTES = 64 << 20


def iter_ragged(reader: RaggedReader, utts: Iterable[str] | None = None,
                block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[str, np.ndarray]]:
    """(utt, array) for ``utts`` (default: all) in storage order."""
    index = reader.index
    wanted = list(index) if utts is None else list(utts)
    missing = [u for u in wanted if u not in index]
    if missing:
        raise KeyError(f"{reader.key}: no utterance {missing[0]!r} ({len(missing)} unknown)")
    wanted.sort(key=lambda u: (index[u][0] or "", index[u][1]))
    i = 0
    while i < len(wanted):
        part = index[wanted[i]][0]
        if part is None:
            raise KeyError(f"{reader.key}: this node stores no frames")
        rows = max(1, block_bytes // _row_bytes(reader, part))
        j = i
        while j < len(wanted) and index[wanted[j]][0] == part:
            j += 1
        group, k = wanted[i:j], 0
        while k < len(group):
            lo = index[group[k]][1]
            end = k
            while end < len(group) and (index[group[end]][2] - lo <= rows or end == k):
                end += 1
            hi = max(index[u][2] for u in group[k:end])
            block = reader.read_range(part, lo, hi, group[k])
            for u in group[k:end]:
                _, s, e, _ = index[u]
                yield u, block[s - lo:e - lo]
            k = end
        i = j


def read_many(reader: RaggedReader, utts: list[str]) -> list[np.ndarray]:
    """Arrays of ``utts`` in the order asked, each its own array (no view into a shared block
    keeps the others alive), read chunk by chunk in storage order straight into them."""
    index = reader.index
    missing = [u for u in utts if u not in index]
    if missing:
        raise KeyError(f"{reader.key}: no utterance {missing[0]!r} ({len(missing)} unknown)")
    out: dict[str, np.ndarray] = {}
    by_part: dict[str, list] = {}
    for u in dict.fromkeys(utts):
        part, s, e, _ = index[u]
        if part is None:
            raise KeyError(f"{reader.key}: this node stores no frames")
        dtype, tail = _layout(reader, part)
        out[u] = np.empty((e - s, *tail), dtype)
        by_part.setdefault(part, []).append((s, e, out[u], u))
    for part, pieces in by_part.items():
        pieces.sort(key=lambda x: x[0])
        reader.chunks.scatter(part, pieces)
    seen: set[str] = set()
    result = []
    for u in utts:  # an utterance asked twice: the second is a copy, never a shared array
        result.append(out[u] if u not in seen else out[u].copy())
        seen.add(u)
    return result


def _layout(reader: RaggedReader, part: str) -> tuple[np.dtype, tuple[int, ...]]:
    manifest = ((getattr(reader, "record", None) or {}).get("parts") or {}).get(part)
    if manifest is not None:
        return np.dtype(manifest["dtype"]), tuple(manifest["shape"][1:])
    arr = reader.store.read_array(f"{reader.key}/{part}")  # a part written before manifests
    return arr.dtype, tuple(arr.shape[1:])


def _row_bytes(reader: RaggedReader, part: str) -> int:
    dtype, tail = _layout(reader, part)
    return max(1, int(np.prod(tail, dtype=np.int64)) * dtype.itemsize)


def to_numpy(reader: RaggedReader, out: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(values concatenated in utterance order, offsets of len n+1, utterance ids).

    ``values`` is ``out`` when given (C-contiguous, of the node's dtype and frame shape, as many
    rows as frames): a caller reading every epoch reuses one buffer instead of having the
    kernel hand over — and zero — fresh pages for each copy (most of a bulk read's cost when
    the output is new memory)."""
    index = reader.index
    utts = reader.utterances()
    lengths = np.array([reader.length(u) for u in utts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    stored = [u for u in utts if index[u][0] is not None]
    if not stored:
        return (np.zeros((0,)) if out is None else out), offsets, utts
    dtype, tail = _layout(reader, index[stored[0]][0])
    shape = (int(offsets[-1]), *tail)
    if out is None:
        out = np.empty(shape, dtype=dtype)
    elif out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ValueError(f"{reader.key}: to_numpy(out=...) needs a writable C-contiguous "
                         f"{dtype} array of shape {shape}; got {out.dtype} {out.shape}")
    i = 0
    while i < len(utts):  # runs of utterances adjacent both in the output and in one part
        part, lo, hi, _ = index[utts[i]]
        j = i + 1
        while j < len(utts) and index[utts[j]][0] == part and index[utts[j]][1] == hi:
            hi = index[utts[j]][2]
            j += 1
        if part is None:
            raise KeyError(f"{reader.key}: this node stores no frames")
        reader.read_range(part, lo, hi, utts[i], out=out[offsets[i]:offsets[j]])
        i = j
    return out, offsets, utts
