"""LibriSpeech trees: ``<speaker>/<chapter>/<speaker>-<chapter>-<NNNN>.flac`` with one
``<speaker>-<chapter>.trans.txt`` (``utt TRANSCRIPT`` lines) per chapter directory.

Utterance ids are the file stems (globally unique in LibriSpeech); the speaker is the
``<speaker>`` directory, checked against the file name so a misplaced file is caught.
"""

from __future__ import annotations

from pathlib import Path

from ..specs.base import SpecError
from .tsv import read_rows


def list_tree(root: Path, pattern: str) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    """(utt, file) sorted by path, and utt → speaker."""
    pairs, speakers = [], {}
    for f in sorted(root.glob(pattern)):
        speaker, chapter = f.parent.parent.name, f.parent.name
        if not f.stem.startswith(f"{speaker}-{chapter}-"):
            raise SpecError(f"{f}: a LibriSpeech file is <speaker>/<chapter>/<speaker>-<chapter>-"
                            f"NNNN.flac; this one is not named {speaker}-{chapter}-NNNN")
        pairs.append((f.stem, f))
        speakers[f.stem] = speaker
    return pairs, speakers


def transcript_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.trans.txt")) if root.is_dir() else [root]


def transcript_rows(root: Path) -> list[tuple[str, str, str]]:
    """(file:line, utt, text) from every ``*.trans.txt`` under ``root`` (or one such file)."""
    out = []
    for f in transcript_files(root):
        for ln, cols in read_rows(f, "LibriSpeech transcript", 1, sep=None)[1]:
            out.append((f"{f}:{ln}", cols[0], " ".join(cols[1:])))
    return out
