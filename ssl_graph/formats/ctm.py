"""CTM time marks as alignments: ``utt channel begin duration label [confidence]`` (seconds).

The first column must be the utterance id, as in Kaldi's per-utterance CTMs (recording-based
CTMs need re-basing onto utterances first, e.g. with Kaldi's ``utils/convert_ctm.pl`` reversed).
``;;`` lines are comments (NIST), blank lines are skipped.
"""

from __future__ import annotations

from pathlib import Path

from ..specs.base import SpecError
from .tsv import read_text_lines


def alignment_rows(path: Path) -> list[tuple[str, str, float, float, str]]:
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
        out.append((where, cols[0], begin, begin + dur, cols[4]))
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
