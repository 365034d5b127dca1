"""Parsed, validated annotations and their storage in the store (no torch, no zarr at plan time).

Validation happens where the data enters: every error names ``file:line`` and says what to fix,
so a bad row fails the plan instead of a run hours later, and nothing downstream ever reads an
alignment set that was not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..formats.readers import alignment_rows, transcript_rows
from ..formats.spans import check_span
from ..specs.base import SpecError
from ..store.backend import read_json, write_json


@dataclass
class AlignmentSet:
    """utt → (starts, ends, label ids), sorted by start; ``phones`` names the ids (the phones
    of ``Alignments``, the words of ``WordAlignments``)."""

    phones: list[str]
    utts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: utt → ``file:line`` of its last row (for errors found after parsing, e.g. past the end)
    last_line: dict[str, str] = field(default_factory=dict)

    def segments(self, utt: str) -> list[tuple[float, float, str]]:
        s, e, p = self.utts[utt]
        return [(float(a), float(b), self.phones[i]) for a, b, i in zip(s, e, p)]


def parse_alignments(node, utterances) -> AlignmentSet:
    """Read, fold (``node.label``) and check an ``Alignments``/``WordAlignments`` file against
    the corpus's ids; overlapping segments are refused unless the kind allows them (words).

    Every alignment format's rows come through here: the row rules (known utterance, times
    by ``formats.spans.check_span``, sorted, not overlapping) are the same for all of them."""
    path = node.file()
    kind = type(node).__name__
    rows = alignment_rows(node)
    if not rows:
        what = "word alignments" if node.allows_overlap else "alignments"
        raise SpecError(f"{path}: {what} file has no segments; add rows "
                        "'utt<TAB>start<TAB>end<TAB>label' or remove it from the spec")
    per: dict[str, list[tuple[float, float, str]]] = {}
    last: dict[str, tuple[float, float]] = {}
    lines: dict[str, str] = {}
    for ln, utt, start, end, label in rows:
        where = f"{ln}: utterance {utt!r}"
        if utt not in utterances:
            if node.unknown == "ignore":
                continue
            raise SpecError(f"{where} is not in the corpus; remove the row, or set "
                            f"{kind}(unknown='ignore')")
        check_span(where, start, end)
        if utt in last:
            p_start, p_end = last[utt]
            if start < p_start:
                raise SpecError(f"{where}: segment at {start} s comes after one at {p_start} s; "
                                "sort each utterance's rows by time")
            if start < p_end - 1e-6 and not node.allows_overlap:
                raise SpecError(f"{where}: segment {start}–{end} s overlaps the previous one "
                                f"(ends at {p_end} s)")
        last[utt], lines[utt] = (start, end), ln
        folded = node.label(label)
        if folded is not None:
            per.setdefault(utt, []).append((start, end, folded))
    phones = sorted({p for segs in per.values() for _, _, p in segs})
    ids = {p: i for i, p in enumerate(phones)}
    out = AlignmentSet(phones=phones, last_line=lines)
    for utt, segs in per.items():
        out.utts[utt] = (np.array([s for s, _, _ in segs], np.float64),
                         np.array([e for _, e, _ in segs], np.float64),
                         np.array([ids[p] for _, _, p in segs], np.int32))
    return out


def check_ends(node, aset: AlignmentSet, seconds: dict[str, float]) -> None:
    """Refuse segments that end more than ``end_tolerance`` after their utterance's audio."""
    kind = type(node).__name__
    for utt, dur in seconds.items():
        if utt in aset.utts and len(aset.utts[utt][1]):
            end = float(aset.utts[utt][1].max())  # words may overlap: the last row may end early
            if end > dur + node.end_tolerance:
                raise SpecError(
                    f"{aset.last_line.get(utt, node.file())}: utterance {utt!r}: segment "
                    f"ends at {end:.3f} s but the audio lasts {dur:.3f} s (tolerance "
                    f"{node.end_tolerance} s); fix the alignments or set {kind}(end_tolerance=...)"
                )


def parse_transcripts(node, utterances) -> dict[str, str]:
    path = node.file()
    rows = transcript_rows(node)
    if not rows:
        raise SpecError(f"{path}: transcripts file has no rows; add 'utt<TAB>text' rows")
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for ln, utt, text in rows:
        if utt not in utterances:
            if node.unknown == "ignore":
                continue
            raise SpecError(f"{ln}: utterance {utt!r} is not in the corpus; remove the "
                            "row, or set Transcripts(unknown='ignore')")
        if utt in seen:
            prev_file, _, prev_line = seen[utt].rpartition(":")
            prev = f"line {prev_line}" if prev_file == ln.rpartition(":")[0] else seen[utt]
            raise SpecError(f"{ln}: utterance {utt!r} already has a transcript ({prev}); "
                            "keep one")
        seen[utt] = ln
        out[utt] = text
    return out


# ---- storage: what an annotation node commits, and how its readers get it back -------------
def write_alignments(store, key: str, aset: AlignmentSet) -> dict:
    utts = sorted(aset.utts)
    bounds, lo = {}, 0
    for u in utts:
        n = len(aset.utts[u][0])
        bounds[u] = [lo, lo + n]
        lo += n
    for i, name in enumerate(("starts", "ends", "phone_ids")):
        dtype = np.int32 if i == 2 else np.float64
        data = (np.concatenate([aset.utts[u][i] for u in utts]) if utts
                else np.zeros(0, dtype)).astype(dtype)
        store.write_array(f"{key}/{name}", data)
    write_json(store.backend, f"{key}/utts.json", bounds)
    return {"phones": aset.phones, "n_utts": len(utts), "n_segments": lo}


def read_alignments(store, key: str) -> AlignmentSet:
    record = store.record(key) or {}
    bounds = read_json(store.backend, f"{key}/utts.json") or {}
    starts, ends, ids = (np.asarray(store.read_array(f"{key}/{n}")[...])
                         for n in ("starts", "ends", "phone_ids"))
    out = AlignmentSet(phones=list(record.get("phones", [])))
    for u, (lo, hi) in bounds.items():
        out.utts[u] = (starts[lo:hi], ends[lo:hi], ids[lo:hi])
    return out


def write_transcripts(store, key: str, texts: dict[str, str]) -> dict:
    write_json(store.backend, f"{key}/texts.json", texts)
    return {"n_utts": len(texts)}


def read_transcripts(store, key: str) -> dict[str, str]:
    return read_json(store.backend, f"{key}/texts.json") or {}
