"""TIMIT trees: ``<TRAIN|TEST>/DR<n>/<speaker>/<sentence>.{WAV,PHN,WRD,TXT}``.

``.WAV`` files are NIST SPHERE, which libsndfile reads directly. ``.PHN`` rows are
``begin end phone`` and ``.WRD`` rows ``begin end word``, in samples at 16 kHz (words may
overlap and leave gaps, phones tile the utterance); ``.TXT`` is one ``begin end text`` line. Names are
matched case-insensitively (the disc is upper case, many copies are lower case), and an
utterance id is ``<speaker>-<sentence>`` in lower case (``fcjf0-sa1``): sentence names repeat
across speakers (every speaker reads SA1).
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from ..specs.base import SpecError
from .tsv import read_rows

#: TIMIT's sample rate; .PHN/.WRD/.TXT times are sample indices at this rate
TIMIT_RATE = 16000


def utt_id(path: Path) -> str:
    return f"{path.parent.name}-{path.stem}".lower()


def files_with(root: Path, suffix: str, name_pattern: str = "*.wav") -> list[Path]:
    """Files under ``root`` ending in ``suffix`` (any case) that sit beside a ``.WAV`` of the
    same name whose name matches ``name_pattern`` (the corpus's glob, so annotations of the
    sentences it drops are not read, and ``DOC/*.TXT`` is not read as a transcript), sorted;
    ``root`` may be one file."""
    if root.is_file():
        return [root]
    out = []
    for d, _, names in os.walk(root):
        stems = {n.rsplit(".", 1)[0] for n in names if n.lower().endswith(".wav")
                 and fnmatch.fnmatch(n.lower(), name_pattern.lower())}
        out += [Path(d) / n for n in names
                if n.lower().endswith(suffix) and n.rsplit(".", 1)[0] in stems]
    return sorted(out)


def list_tree(root: Path, name_pattern: str) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    """(utt, .WAV file) and utt → speaker, for files whose name matches ``name_pattern`` in any
    case (``"s[ix]*.wav"`` drops the SA sentences, as most recipes do)."""
    pairs, speakers = [], {}
    for f in files_with(root, ".wav", name_pattern):
        pairs.append((utt_id(f), f))
        speakers[utt_id(f)] = f.parent.name.lower()
    return pairs, speakers


def phone_rows(root: Path, name_pattern: str = "*.wav") -> list[tuple[str, str, float, float, str]]:
    """(file:line, utt, start s, end s, phone) from every ``.PHN`` under ``root``."""
    return _sample_rows(root, ".phn", name_pattern)


def word_rows(root: Path, name_pattern: str = "*.wav") -> list[tuple[str, str, float, float, str]]:
    """(file:line, utt, start s, end s, word) from every ``.WRD`` under ``root``."""
    return _sample_rows(root, ".wrd", name_pattern)


def _sample_rows(root: Path, suffix: str, name_pattern: str) -> list[tuple[str, str, float, float, str]]:
    what = f"TIMIT {suffix.upper()}"
    out = []
    for f in files_with(root, suffix, name_pattern):
        utt = utt_id(f)
        for ln, cols in read_rows(f, what, 3, numeric=(0, 1), sep=None)[1]:
            out.append((f"{f}:{ln}", utt, float(cols[0]) / TIMIT_RATE, float(cols[1]) / TIMIT_RATE,
                        cols[2]))
    return out


def text_rows(root: Path, name_pattern: str = "*.wav") -> list[tuple[str, str, str]]:
    """(file:line, utt, text) from every ``.TXT`` under ``root`` (the sample range dropped)."""
    out = []
    for f in files_with(root, ".txt", name_pattern):
        rows = read_rows(f, "TIMIT .TXT", 3, numeric=(0, 1), sep=None)[1]
        if len(rows) != 1:
            raise SpecError(f"{f}: a TIMIT .TXT holds one line 'begin end text', found {len(rows)}")
        ln, cols = rows[0]
        out.append((f"{f}:{ln}", utt_id(f), " ".join(cols[2:])))
    return out
