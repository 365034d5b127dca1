"""CTM time marks as alignments: ``key channel begin duration label [confidence]`` (seconds).

``key`` is an utterance id (Kaldi's per-utterance CTMs), or a recording id with times relative
to the recording (NIST CTMs, Kaldi's recording-level ``ctm`` output). When the corpus's
utterances are ranges of recordings (Kaldi ``segments``, Lhotse supervisions or cuts), a row
keyed by a recording is given to the utterance whose segment holds it, its times shifted to
that utterance's start. A row may cross a segment's edge by at most ``BOUNDARY_TOLERANCE`` (CTM
times are rounded to 10 ms frames; the overhang is clipped); a row straddling the edge by more
is refused with its ``file:line``, and one in no segment is refused too (or skipped with
``unknown="ignore"``). Where segments overlap, a row inside both goes to both. The channel is
not read: corpora are mono. ``;;`` lines are comments (NIST), blank lines are skipped.
"""

from __future__ import annotations

from pathlib import Path

from ..specs.base import SpecError
from .spans import check_span
from .tsv import read_text_lines

#: seconds a recording-keyed row may overhang the segment it is given to (one 10 ms frame)
BOUNDARY_TOLERANCE = 0.01

Row = tuple[str, str, float, float, str]


def alignment_rows(path: Path, segments: dict | None = None,
                   skip_outside: bool = False) -> list[Row]:
    """(file:line, utt, start, end, label); ``segments`` (recording → [(utt, start, end or
    None)]) re-bases rows keyed by a recording onto its utterances."""
    rows = _read(path)
    if not segments:
        return rows
    utts = {u for segs in segments.values() for u, _, _ in segs}
    out: list[Row] = []
    for row in rows:
        key = row[1]
        if key in utts or key not in segments:
            out.append(row)  # utterance-keyed (an unknown key is the validation's to refuse)
        else:
            out += _rebase(row, segments[key], skip_outside)
    return out


def _rebase(row: Row, segs: list, skip_outside: bool) -> list[Row]:
    where, reco, begin, end, label = row
    tol, out, crossed = BOUNDARY_TOLERANCE, [], None
    for utt, s, e in segs:
        top = float("inf") if e is None else e
        if begin >= s - tol and end <= top + tol:
            out.append((where, utt, max(begin, s) - s, min(end, top) - s, label))
        elif begin < top and end > s:
            crossed = (utt, s, e)
    if out or (skip_outside and crossed is None):
        return out
    span = f"{begin:.3f}–{end:.3f} s of recording {reco!r}"
    if crossed is not None:
        utt, s, e = crossed
        edge = "its end" if e is None else f"{e:.3f} s"
        raise SpecError(f"{where}: {label!r} at {span} straddles the edge of utterance {utt!r} "
                        f"({s:.3f} s to {edge}) by more than {tol} s; fix the CTM or the "
                        "segments so each row lies inside one segment")
    raise SpecError(f"{where}: {label!r} at {span} lies in none of its {len(segs)} segments; "
                    "drop the row, or set unknown='ignore' to skip such rows")


def _read(path: Path) -> list[Row]:
    out = []
    for ln, line in read_text_lines(path, "CTM"):
        if not line.strip() or line.lstrip().startswith(";;"):
            continue
        cols = line.split()
        where = f"{path}:{ln}"
        if len(cols) < 5:
            raise SpecError(f"{where}: CTM rows are 'utt channel begin duration label "
                            f"[confidence]', got {len(cols)} columns")
        try:
            begin, dur = float(cols[2]), float(cols[3])
        except ValueError:
            if not out and not _is_number(cols[2]) and not _is_number(cols[3]):
                continue  # a header row: both time columns are words
            raise SpecError(f"{where}: CTM begin and duration must be numbers, got "
                            f"{cols[2]!r} {cols[3]!r}") from None
        check_span(f"{where}: key {cols[0]!r}", begin, begin + dur)  # before any re-basing
        out.append((where, cols[0], begin, begin + dur, cols[4]))
    return out


def write_ctm(path: Path, segments: dict[str, list[tuple[float, float, str]]]) -> Path:
    """``utt 1 begin duration label`` per segment, utterances sorted, times to 0.1 µs (exact
    for TIMIT's 16 kHz samples)."""
    with open(path, "w", encoding="utf-8") as fh:
        for utt in sorted(segments):
            for start, end, label in segments[utt]:
                fh.write(f"{utt} 1 {seconds(start)} {seconds(end - start)} {label}\n")
    return path


def seconds(x: float) -> str:
    return f"{x:.7f}".rstrip("0").rstrip(".")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
