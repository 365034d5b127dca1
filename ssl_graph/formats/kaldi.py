"""Kaldi data directories: ``wav.scp``, optional ``segments``, ``utt2spk`` and ``text``.

Only plain files are read. A piped ``wav.scp`` entry (``reco cmd ... |``) or an archive offset
(``x.ark:123``) is refused with the conversion to run, because running shell commands from a
spec file would make a corpus depend on the machine's tools and be unsafe to share.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..audio.segment import AudioSegment
from ..specs.base import SpecError
from .spans import check_span
from .tsv import read_rows, read_text_lines

_ARK_OFFSET = re.compile(r"\.ark:\d+$")


def read_wav_scp(path: Path, base: Path) -> dict[str, tuple[str, Path]]:
    """recording → (file:line, audio file); relative paths resolve against ``base``."""
    out: dict[str, tuple[str, Path]] = {}
    for ln, line in read_text_lines(path, "wav.scp"):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        where = f"{path}:{ln}"
        if len(parts) < 2:
            raise SpecError(f"{where}: wav.scp needs '<recording> <path>', got {line!r}")
        reco, target = parts[0], parts[1].strip()
        if target.endswith("|"):
            raise SpecError(
                f"{where}: recording {reco!r} is a piped command ({target!r}); ssl_graph reads "
                "audio files only: decode them first (e.g. 'sph2pipe -f wav x.sph x.wav' or "
                "'flac -d x.flac') and list the files in wav.scp"
            )
        if _ARK_OFFSET.search(target) or target == "-":
            raise SpecError(
                f"{where}: recording {reco!r} points into an archive or stdin ({target!r}); "
                "write the audio out as files (e.g. wav-copy) and list them in wav.scp"
            )
        if reco in out:
            raise SpecError(f"{where}: recording {reco!r} is listed twice (first at {out[reco][0]})")
        p = Path(target)
        out[reco] = (where, p if p.is_absolute() else base / p)
    return out


def read_segments(path: Path, recordings: dict[str, tuple[str, Path]]) -> list[tuple[str, AudioSegment]]:
    """(utt, segment) per ``utt reco start end`` row (seconds; ``end`` -1 = to the file's end)."""
    out = []
    for ln, cols in read_rows(path, "segments", 4, numeric=(2, 3), sep=None)[1]:
        utt, reco, start, end = cols[0], cols[1], float(cols[2]), float(cols[3])
        where = f"{path}:{ln}: utterance {utt!r}"
        if reco not in recordings:
            raise SpecError(f"{where}: recording {reco!r} is not in wav.scp; add it or drop the row")
        end = None if end == -1 else end
        check_span(where, start, end, open_end="-1 for the file's end")
        out.append((utt, AudioSegment(recordings[reco][1], start, end)))
    return out


def segment_table(path: Path) -> dict[str, list[tuple[str, float, float | None]]]:
    """recording → [(utt, start s, end s or None = to the end)] in file order, for re-basing
    recording-keyed annotations (the corpus scan has checked the rows against wav.scp)."""
    out: dict[str, list[tuple[str, float, float | None]]] = {}
    for _, cols in read_rows(path, "segments", 4, numeric=(2, 3), sep=None)[1]:
        end = float(cols[3])
        out.setdefault(cols[1], []).append((cols[0], float(cols[2]), None if end == -1 else end))
    return out


def read_utt2spk(path: Path) -> dict[str, str]:
    return {cols[0]: cols[1] for _, cols in read_rows(path, "utt2spk", 2, sep=None)[1]}


def list_data_dir(data_dir: Path, base: Path) -> tuple[list[tuple[str, Path | AudioSegment]], dict[str, str]]:
    """Utterances (id, audio source) in file order and their speakers (from ``utt2spk``)."""
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.is_file():
        raise SpecError(f"{data_dir}: not a Kaldi data directory (no wav.scp)")
    recordings = read_wav_scp(wav_scp, base)
    segments = data_dir / "segments"
    if segments.is_file():
        pairs = read_segments(segments, recordings)
    else:
        pairs = [(reco, p) for reco, (_, p) in recordings.items()]
    utt2spk = data_dir / "utt2spk"
    speakers = read_utt2spk(utt2spk) if utt2spk.is_file() else {}
    return pairs, speakers


def text_rows(path: Path) -> list[tuple[str, str, str]]:
    """Kaldi ``text``: ``utt word word ...`` → (file:line, utt, text)."""
    out = []
    for ln, cols in read_rows(path, "text", 1, sep=None)[1]:
        out.append((f"{path}:{ln}", cols[0], " ".join(cols[1:])))
    return out
