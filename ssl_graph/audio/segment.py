"""A time range of a longer recording, usable wherever a file path of an utterance is.

Kaldi ``segments`` and Lhotse supervisions define utterances as ranges of one long file. Making
the range a value that ``audio_info``/``read_audio`` understand keeps every caller unchanged:
they pass ``manifest.utts[u].path`` and get just that range's samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AudioSegment:
    """``file`` from ``start`` to ``end`` seconds (``end=None``: to the end of the file).

    Seconds, not samples, because the file's rate is only known once it is opened (run time);
    the sample range is ``round(start * rate)`` to ``round(end * rate)``.
    """

    file: Path
    start: float
    end: float | None = None

    def __str__(self) -> str:
        end = "end" if self.end is None else f"{self.end:g}"
        return f"{self.file} [{self.start:g}–{end} s]"

    def sample_range(self, rate: int, frames: int) -> tuple[int, int]:
        """(first, stop) sample indices, clipped to the file's ``frames``."""
        first = min(round(self.start * rate), frames)
        stop = frames if self.end is None else min(round(self.end * rate), frames)
        return first, max(first, stop)
