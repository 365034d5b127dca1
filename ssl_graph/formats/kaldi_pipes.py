"""``wav.scp`` commands that only decode one file to WAV, read as that file.

Kaldi's recipes and lhotse's ``kaldi export`` list every non-WAV recording as a command whose
output Kaldi reads (``reco flac -c -d -s x.flac |``). When the command is one of the standard
decoders below, with no option that changes the samples, ssl_graph reads the file it names
directly: the same samples, with the file's identity (size + mtime or hash) for incrementality,
and no shell. Recognised:

- ``flac -c -d -s FILE`` (flags in any order and spelling: ``-cds``, ``--decode --stdout --silent``)
- ``sox FILE -t wav -``
- ``ffmpeg [-threads N] [-nostdin] [-hide_banner] [-loglevel L] -i FILE [-ar RATE]
  [-map_channel 0.0.0] [-ac 1] [-f wav] [-threads N] pipe:1`` (lhotse's form; ``-ar`` must be
  the corpus rate: resampling is left to ``Corpus(resample=True)``, as for any file)
- ``sph2pipe [-f wav] [-p] [-c 1] FILE``, alone or piped into such an ``ffmpeg -i pipe:0``

Any other command is refused unless the corpus opts in to running it (``commands="run"``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

_FLAC_FLAGS = {"-c": "c", "--stdout": "c", "-d": "d", "--decode": "d", "-s": "s",
               "--silent": "s", "-f": "", "--force": ""}


@dataclass(frozen=True)
class Decoded:
    """The file a recognised command decodes, and the rate it asks ffmpeg for (None: as is)."""

    file: str
    rate: int | None = None


class NotADecoder(ValueError):
    """A command that is not one of the recognised plain decoders (the reason says why)."""


def _flac(args: list[str]) -> Decoded:
    flags, files = set(), []
    for a in args:
        if a in _FLAC_FLAGS:
            flags.add(_FLAC_FLAGS[a])
        elif a.startswith("-") and not a.startswith("--") and len(a) > 2 \
                and set(a[1:]) <= {"c", "d", "s", "f"}:
            flags.update(a[1:].replace("f", ""))
        elif a.startswith("-"):
            raise NotADecoder(f"flac option {a!r} is not a plain decode")
        else:
            files.append(a)
    if not {"c", "d"} <= flags or len(files) != 1:
        raise NotADecoder("flac must decode (-d) one file to stdout (-c)")
    return Decoded(files[0])


def _sox(args: list[str]) -> Decoded:
    if len(args) == 4 and args[1:] == ["-t", "wav", "-"]:
        return Decoded(args[0])
    raise NotADecoder("only 'sox FILE -t wav -' (no effects) reads as FILE")


_FFMPEG_VALUED = {"-threads", "-loglevel", "-v"}
_FFMPEG_FLAGS = {"-nostdin", "-hide_banner", "-y"}


def _ffmpeg(args: list[str], piped_input: bool) -> Decoded:
    if not args or args[-1] not in ("pipe:1", "pipe:", "-"):
        raise NotADecoder("ffmpeg must write to stdout (pipe:1)")
    args, source, rate, i = args[:-1], None, None, 0
    while i < len(args):
        a, value = args[i], args[i + 1] if i + 1 < len(args) else None
        if a in _FFMPEG_FLAGS:
            i += 1
            continue
        if value is None:
            raise NotADecoder(f"ffmpeg option {a!r} lacks its value")
        if a == "-i":
            source = value
        elif a == "-ar":
            if not value.isdigit():
                raise NotADecoder(f"ffmpeg -ar {value!r} is not a rate")
            rate = int(value)
        elif a == "-f" and value != "wav" or a == "-ac" and value != "1" \
                or a == "-map_channel" and value != "0.0.0":
            raise NotADecoder(f"ffmpeg {a} {value} changes the audio")
        elif a not in _FFMPEG_VALUED and a not in ("-f", "-ac", "-map_channel"):
            raise NotADecoder(f"ffmpeg option {a!r} is not a plain decode")
        i += 2
    if source is None:
        raise NotADecoder("ffmpeg names no input (-i)")
    if piped_input != (source in ("pipe:0", "pipe:", "-")):
        raise NotADecoder("ffmpeg must read a file (or, after sph2pipe, its stdin)")
    return Decoded(source, rate)


def _sph2pipe(args: list[str]) -> Decoded:
    files, i = [], 0
    while i < len(args):
        a, value = args[i], args[i + 1] if i + 1 < len(args) else None
        if (a, value) in (("-f", "wav"), ("-f", "rif"), ("-c", "1")):  # WAV out, first channel
            i += 2
        elif a == "-p":
            i += 1
        elif a.startswith("-"):
            raise NotADecoder(f"sph2pipe option {a!r} is not a plain decode")
        else:
            files.append(a)
            i += 1
    if len(files) != 1:
        raise NotADecoder("sph2pipe must decode one file")
    return Decoded(files[0])


def decoded_file(command: str) -> Decoded:
    """The file a ``wav.scp`` command (without its trailing ``|``) decodes unchanged; raises
    :class:`NotADecoder` saying why when it is anything else."""
    stages = [s.strip() for s in command.split("|")]
    if not all(stages) or len(stages) > 2:
        raise NotADecoder("a pipeline of more than a decoder (and ffmpeg after sph2pipe)")
    try:
        tools = [shlex.split(s) for s in stages]
    except ValueError as exc:
        raise NotADecoder(f"cannot split the command ({exc})") from None
    if any(ch in command for ch in ";&<>`$("):
        raise NotADecoder("the command uses shell syntax beyond one pipe")
    first, args = tools[0][0].rsplit("/", 1)[-1], tools[0][1:]
    if len(tools) == 2:
        second = tools[1][0].rsplit("/", 1)[-1]
        if first != "sph2pipe" or second != "ffmpeg":
            raise NotADecoder("only 'sph2pipe ... | ffmpeg -i pipe:0 ...' pipes two tools")
        after = _ffmpeg(tools[1][1:], piped_input=True)
        return Decoded(_sph2pipe(args).file, after.rate)
    if first == "flac":
        return _flac(args)
    if first == "sox":
        return _sox(args)
    if first == "ffmpeg":
        return _ffmpeg(args, piped_input=False)
    if first == "sph2pipe":
        return _sph2pipe(args)
    raise NotADecoder(f"{first!r} is not one of flac, sox, ffmpeg, sph2pipe")
