"""Bulk reads of ragged nodes: every utterance, streamed in storage order, in large blocks.

Random access (``RaggedReader.get``) opens the part and decodes whole chunks for one utterance;
a dump of a whole corpus that way pays that cost per utterance. Here utterances are visited in
(part, offset) order and each part is read in contiguous blocks of about ``block_bytes``, so
throughput approaches a plain ``np.load`` and memory stays bounded by one block (plus the
caller's own accumulation).
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
        arr = reader.store.read_array(f"{reader.key}/{part}")
        row_bytes = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.dtype.itemsize)
        rows = max(1, block_bytes // row_bytes)
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
            block = np.asarray(arr[lo:hi])
            for u in group[k:end]:
                _, s, e, _ = index[u]
                yield u, block[s - lo:e - lo]
            k = end
        i = j


def read_many(reader: RaggedReader, utts: list[str], block_bytes: int = BLOCK_BYTES) -> list[np.ndarray]:
    """Arrays of ``utts`` in the order asked, read in storage order."""
    got = dict(iter_ragged(reader, utts, block_bytes))
    return [got[u] for u in utts]


def to_numpy(reader: RaggedReader) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(values concatenated in utterance order, offsets of len n+1, utterance ids)."""
    utts = reader.utterances()
    lengths = np.array([reader.length(u) for u in utts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    first = next(iter_ragged(reader, utts[:1]), None) if utts else None
    if first is None:
        return np.zeros((0,)), offsets, utts
    out = np.empty((int(offsets[-1]), *first[1].shape[1:]), dtype=first[1].dtype)
    pos = {u: i for i, u in enumerate(utts)}
    for u, a in iter_ragged(reader, utts):
        i = pos[u]
        out[offsets[i]:offsets[i + 1]] = a
    return out, offsets, utts
