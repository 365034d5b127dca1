"""fairseq wav2vec manifests: ``{split}.tsv`` (root line, then ``relpath<TAB>num_samples``) with
``{split}.wrd`` / ``{split}.ltr`` transcripts, one line per manifest row in the same order.

The manifest has no utterance ids; an entry's id is its path without the extension (as a plain
directory corpus names it), so the same audio gets the same id either way.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from ..specs.base import SpecError
from .tsv import read_text_lines


def read_manifest(tsv: Path, root: Path | None = None) -> list[tuple[str, str, Path, int]]:
    """(file:line, utt, audio file, num_samples) per entry; ``root`` overrides the manifest's
    first line (relative first lines resolve against the manifest's directory). The corpus
    node compares ``num_samples`` with the file when it measures it."""
    lines = iter(read_text_lines(tsv, "fairseq manifest"))
    first = next(lines, None)
    if first is None or not first[1].strip():
        raise SpecError(f"{tsv}:1: a fairseq manifest starts with its root directory; the file "
                        "is empty or starts with a blank line")
    if root is None:
        root = Path(first[1].strip())
        root = root if root.is_absolute() else tsv.parent / root
    out = []
    for ln, line in lines:
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 2 or not cols[1].strip().isdigit():
            raise SpecError(f"{tsv}:{ln}: a fairseq manifest row is 'relpath<TAB>num_samples', "
                            f"got {line!r}")
        rel = cols[0]
        out.append((f"{tsv}:{ln}", utt_id(rel),
                    Path(rel) if Path(rel).is_absolute() else root / rel, int(cols[1])))
    return out


def utt_id(relpath: str) -> str:
    """``./spk/a.flac`` → ``spk/a``."""
    path = posixpath.normpath(relpath.replace("\\", "/"))
    stem, ext = posixpath.splitext(path)
    return stem if ext else path


def label_rows(path: Path, tsv: Path, kind: str) -> list[tuple[str, str, str]]:
    """(file:line, utt, text) for a ``.wrd`` (words) or ``.ltr`` (letters, ``|`` = word end)
    file; its line count must equal the manifest's entries, as fairseq asserts."""
    entries = read_manifest(tsv, Path("/"))
    lines = list(read_text_lines(path, f"fairseq .{kind}"))
    if len(lines) != len(entries):
        raise SpecError(f"{path}: {len(lines)} lines but manifest {tsv} has {len(entries)} "
                        f"entries; a .{kind} file has one line per manifest row, in order")
    out = []
    for (ln, line), (_, utt, _, _) in zip(lines, entries):
        text = letters_to_text(line) if kind == "ltr" else " ".join(line.split())
        out.append((f"{path}:{ln}", utt, text))
    return out


def letters_to_text(line: str) -> str:
    """``H I | Y O U |`` → ``HI YOU``."""
    return " ".join("".join(line.split()).replace("|", " ").split())
