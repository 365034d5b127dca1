"""Tab-separated annotation and manifest files, with header detection and file:line errors.

A first row is a header when its first column is a usual id heading (``utt``, ``utt_id``, ``id``,
``key``, ...) or when a column that must be numeric is not: a manifest headed ``utt_id<TAB>path``
is never read as an utterance, and a bad header fails when the file is read (at plan time), not
after the upstream work ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..specs.base import SpecError

#: first-column headings that mark a header row (compared lower-case)
ID_HEADINGS = frozenset({
    "utt", "utt_id", "uttid", "utterance", "utterance_id", "id", "key", "name", "file", "audio",
    "path", "recording", "recording_id", "segment", "segment_id",
})


def read_text_lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file; a decoding error names the line and the fix."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SpecError(
                    f"{path}:{lineno}: {what} is not UTF-8 (byte {raw[exc.start]:#04x} at column "
                    f"{exc.start + 1}); re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                ) from None
            yield lineno, line.rstrip("\r\n")


def is_header(cols: list[str], numeric: tuple[int, ...] = ()) -> bool:
    if cols[0].strip().lower() in ID_HEADINGS:
        return True
    for i in numeric:
        if i < len(cols):
            try:
                float(cols[i])
            except ValueError:
                return True
    return False


def read_rows(path: Path, what: str, min_cols: int, numeric: tuple[int, ...] = (),
              sep: str | None = "\t") -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """(header or None, [(line number, columns)]); blank lines and ``#`` comments are skipped.

    ``sep=None`` splits on any whitespace (Kaldi files, CTM). Columns listed in ``numeric`` must
    parse as numbers on every row after the header.
    """
    header, rows = None, []
    first = True
    for lineno, line in read_text_lines(path, what):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split(sep) if sep is not None else line.split()
        if first:
            first = False
            if is_header(cols, numeric):
                header = cols
                continue
        if len(cols) < min_cols:
            raise SpecError(
                f"{path}:{lineno}: {what} needs {min_cols} "
                f"{'tab-separated ' if sep == chr(9) else ''}columns, got {len(cols)}"
            )
        for i in numeric:
            try:
                float(cols[i])
            except ValueError:
                raise SpecError(
                    f"{path}:{lineno}: {what}: column {i + 1} must be a number, got {cols[i]!r}"
                ) from None
        rows.append((lineno, cols))
    return header, rows
