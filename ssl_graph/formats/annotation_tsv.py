"""Annotation TSVs: alignments ``utt<TAB>start<TAB>end<TAB>phone`` (seconds) and transcripts
``utt<TAB>text``, read into rows that keep their line numbers for validation messages (and
alignments written back out, for ``ssl-graph export segments``)."""

from __future__ import annotations

from pathlib import Path

from ..specs.base import SpecError
from .tsv import read_rows


def alignment_rows(path: Path) -> list[tuple[int, str, float, float, str]]:
    """(line, utt, start, end, label) in file order."""
    _, rows = read_rows(path, "alignments", 4, numeric=(1, 2))
    return [(ln, c[0], float(c[1]), float(c[2]), c[3].strip()) for ln, c in rows]


def write_alignments(path: Path, segments: dict[str, list[tuple[float, float, str]]]) -> Path:
    """The TSV ``alignment_rows`` reads (header ``utt start end label``), utterances sorted."""
    from .ctm import seconds

    with open(path, "w", encoding="utf-8") as fh:
        fh.write("utt\tstart\tend\tlabel\n")
        for utt in sorted(segments):
            for start, end, label in segments[utt]:
                fh.write(f"{utt}\t{seconds(start)}\t{seconds(end)}\t{label}\n")
    return path


def transcript_rows(path: Path, column: int | str = 1) -> list[tuple[int, str, str]]:
    """(line, utt, text); ``column`` is a 0-based index or a header name."""
    header, rows = read_rows(path, "transcripts", 2)
    if isinstance(column, str):
        if header is None or column not in header:
            found = f"its header is {header}" if header else "it has no header row"
            raise SpecError(f"{path}: transcripts column {column!r} not found ({found})")
        column = header.index(column)
    out = []
    for ln, cols in rows:
        if column >= len(cols):
            raise SpecError(f"{path}:{ln}: transcripts: no column {column} (the row has {len(cols)})")
        out.append((ln, cols[0], cols[column].strip()))
    return out
