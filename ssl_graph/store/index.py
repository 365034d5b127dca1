"""Per-node utterance index as append-only columnar segments, one small file per commit.

A ragged node's index maps utt -> [part, start, end, version]. Rewriting it whole as JSON at
every commit costs O(utterances) per commit (≈24 MB × 173 commits over one LibriSpeech pass);
instead each commit writes one ``index/NNNNN.seg`` holding only what changed since the commit
before: the utterances it (re)wrote, column by column, and the ones it dropped. The record lists
the segments (with each file's size and checksum); reading applies them in order, drops first,
so a re-done utterance's later entry overrides its earlier one. When segments pile up (many
commits, or many re-done utterances) the writer writes one full segment instead and the old ones
become garbage for ``gc``.

A segment file is a magic line, a JSON header naming its columns (dtype, length) and the columns'
bytes, zlib-compressed as one stream (strings as one UTF-8 text + character offsets): numeric
arrays only, nothing in a store is ever unpickled, and one inflate per file keeps loading a
281k-utterance index from 173 segments about as fast as parsing the one JSON it replaces.
"""

from __future__ import annotations

import json
import zlib

import numpy as np

FOLDER = "index"
#: compact (write one full segment) past this many segments, or when the segments hold more
#: than ``REDONE_FACTOR`` × the live entries (re-done utterances' superseded entries)
MAX_SEGMENTS = 64
REDONE_FACTOR = 2


class BadSegment(ValueError):
    """Bytes that are not an index segment this version wrote."""


MAGIC = b"ssl_graph index segment 1\n"


def segment_name(commit: int) -> str:
    return f"{FOLDER}/{commit:05d}.seg"


def _pack(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    text = "".join(strings).encode()
    offsets = np.zeros(len(strings) + 1, np.int64)
    np.cumsum([len(s) for s in strings], out=offsets[1:])
    return np.frombuffer(text, np.uint8), offsets


def _unpack(text: np.ndarray, offsets: np.ndarray) -> list[str]:
    s = text.tobytes().decode()
    o = offsets.tolist()
    if o and (o[0] != 0 or o[-1] != len(s)):
        raise BadSegment("string offsets do not match their text")
    return [s[a:b] for a, b in zip(o[:-1], o[1:])]


def encode(entries: dict[str, list], dropped) -> bytes:
    """One segment: ``entries`` (utt -> [part, start, end, version]) and ``dropped`` utts."""
    utts = list(entries)
    parts = sorted({e[0] for e in entries.values() if e[0] is not None})
    code = {p: i for i, p in enumerate(parts)}
    cols = list(zip(*entries.values())) if entries else [(), (), (), ()]
    arrays = {}
    arrays["utt_text"], arrays["utt_offsets"] = _pack(utts)
    arrays["version_text"], arrays["version_offsets"] = _pack([str(v) for v in cols[3]])
    arrays["drop_text"], arrays["drop_offsets"] = _pack(sorted(dropped))
    arrays["part_names"] = np.frombuffer(json.dumps(parts).encode(), np.uint8)
    arrays["part"] = np.array([-1 if p is None else code[p] for p in cols[0]], np.int32)
    arrays["start"] = np.array(cols[1], np.int64)
    arrays["end"] = np.array(cols[2], np.int64)
    header = json.dumps([[k, a.dtype.str, len(a)] for k, a in arrays.items()]).encode()
    body = zlib.compress(b"".join(a.tobytes() for a in arrays.values()), 6)
    return MAGIC + len(header).to_bytes(4, "little") + header + body


def _columns(data: bytes) -> dict[str, np.ndarray]:
    if not data.startswith(MAGIC):
        raise ValueError("no segment header")
    at = len(MAGIC) + 4
    n = int.from_bytes(data[len(MAGIC):at], "little")
    spec = json.loads(data[at:at + n])
    body = zlib.decompress(data[at + n:])
    cols, pos = {}, 0
    for name, dtype, count in spec:
        dt = np.dtype(dtype)
        if dt.hasobject:
            raise ValueError(f"column {name!r} is not numeric")
        cols[name] = np.frombuffer(body, dt, count, pos)
        pos += dt.itemsize * count
    if pos != len(body):
        raise ValueError(f"columns hold {pos} bytes, the segment {len(body)}")
    return cols


def decode(data: bytes) -> tuple[dict[str, list], list[str]]:
    """(entries, dropped) of a segment; ``BadSegment`` for anything else."""
    try:
        cols = _columns(data)
        utts = _unpack(cols["utt_text"], cols["utt_offsets"])
        versions = _unpack(cols["version_text"], cols["version_offsets"])
        dropped = _unpack(cols["drop_text"], cols["drop_offsets"])
        parts = json.loads(cols["part_names"].tobytes())
        codes = cols["part"]
        if len(codes) and int(codes.max()) >= len(parts):
            raise ValueError("an entry names an unknown part")
        part, start, end = codes.tolist(), cols["start"].tolist(), cols["end"].tolist()
    except (KeyError, ValueError, TypeError, zlib.error, UnicodeDecodeError) as exc:
        raise BadSegment(f"not a readable index segment ({type(exc).__name__}: {exc})") from None
    if not (len(utts) == len(versions) == len(part) == len(start) == len(end)):
        raise BadSegment("its columns disagree in length")
    names = [None if p < 0 else parts[p] for p in part]
    entries = dict(zip(utts, map(list, zip(names, start, end, versions))))
    return entries, dropped


def apply(index: dict[str, list], entries: dict[str, list], dropped) -> None:
    """Fold one segment into ``index`` (drops first: a dropped and re-done utt stays)."""
    for u in dropped:
        index.pop(u, None)
    index.update(entries)


def should_compact(segments: list[dict], live: int) -> bool:
    """Whether the next commit writes one full segment instead of appending a delta."""
    stored = sum(int(s.get("n", 0)) + int(s.get("dropped", 0)) for s in segments)
    return len(segments) >= MAX_SEGMENTS or stored > REDONE_FACTOR * live + 10_000
