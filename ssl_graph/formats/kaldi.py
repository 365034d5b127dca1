"""Kaldi data directories: ``wav.scp``, optional ``segments``, ``utt2spk`` and ``text``.

A piped ``wav.scp`` entry (``reco cmd ... |``) that only decodes one file (``flac -c -d -s x.flac |``,
``sox``, lhotse's ``ffmpeg … pipe:1 |``, ``sph2pipe``; see ``kaldi_pipes.py``) is read as that
file. Any other command is refused unless the corpus opts in with ``commands="run"``: a data file
that runs shell commands makes a corpus depend on the machine's tools and is unsafe to share. An
archive offset (``x.ark:123``) is refused with the conversion to run.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..specs.base import SpecError
from .kaldi_pipes import NotADecoder, decoded_file
from .sources import AudioSegment, CommandAudio
from .spans import check_span
from .tsv import read_rows, read_text_lines

_ARK_OFFSET = re.compile(r"\.ark:\d+$")


def read_wav_scp(path: Path, base: Path, commands: str = "refuse",
                 sample_rate: int | None = None) -> dict[str, tuple[str, Path | CommandAudio]]:
    """recording → (file:line, audio file, or the command to run with ``commands="run"``);
    relative paths resolve against ``base``."""
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
            source = _piped(where, reco, target[:-1].strip(), base, commands, sample_rate)
            if reco in out:
                raise SpecError(f"{where}: recording {reco!r} is listed twice (first at "
                                f"{out[reco][0]})")
            out[reco] = (where, source)
            continue
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


def _piped(where: str, reco: str, command: str, base: Path, commands: str,
           sample_rate: int | None) -> Path | CommandAudio:
    """The file a decode command reads, or (opted in) the command itself."""
    try:
        decoded = decoded_file(command)
    except NotADecoder as why:
        if commands == "run":
            return CommandAudio(command, base)
        raise SpecError(
            f"{where}: recording {reco!r} is a command ssl_graph does not run ({why}); decode "
            "it to a file and list that, or opt in with Corpus.kaldi(dir, commands='run')"
        ) from None
    if decoded.rate is not None and sample_rate is not None and decoded.rate != sample_rate:
        raise SpecError(
            f"{where}: recording {reco!r}: the command resamples to {decoded.rate} Hz, the "
            f"corpus is {sample_rate} Hz; set Corpus(sample_rate={decoded.rate}) or drop -ar"
        )
    p = Path(decoded.file)
    return p if p.is_absolute() else base / p


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


def list_data_dir(data_dir: Path, base: Path, commands: str = "refuse",
                  sample_rate: int | None = None
                  ) -> tuple[list[tuple[str, Path | AudioSegment]], dict[str, str]]:
    """Utterances (id, audio source) in file order and their speakers (from ``utt2spk``)."""
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.is_file():
        raise SpecError(f"{data_dir}: not a Kaldi data directory (no wav.scp)")
    recordings = read_wav_scp(wav_scp, base, commands, sample_rate)
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
