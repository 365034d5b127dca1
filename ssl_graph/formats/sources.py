"""What a corpus entry points at, as the readers of ``ssl_graph/formats`` resolve it: a file, a
time range of a longer file (:class:`AudioSegment`), or a command's output
(:class:`CommandAudio`); and a file's identity. Decoding them is ``ssl_graph/audio``'s job.

:class:`AudioSegment` — A time range of a longer recording, usable wherever a file path of an utterance is.

Kaldi ``segments`` and Lhotse supervisions define utterances as ranges of one long file. Making
the range a value that ``audio_info``/``read_audio`` understand keeps every caller unchanged:
they pass ``manifest.utts[u].path`` and get just that range's samples.

:class:`CommandAudio` — A recording whose audio is a shell command's output (a Kaldi ``wav.scp`` pipe the corpus opted
in to running with ``Corpus.kaldi(dir, commands="run")``).

The command runs with ``/bin/sh`` in the data directory's base, and its standard output must be
audio soundfile reads (WAV, FLAC...). Its identity is the command text plus the identity of every
file the command names that exists, so editing either reruns what reads the recording.
"""

from __future__ import annotations

import hashlib
import io
import shlex
from dataclasses import dataclass
from pathlib import Path


def file_identity(path: Path, mode: str) -> str:
    """A file's identity: ``size:mtime_ns``, or ``sha256:`` of its content (``mode="hash"``)."""
    if mode == "hash":
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return "sha256:" + h.hexdigest()[:32]
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


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


@dataclass(frozen=True)
class CommandAudio:
    command: str
    cwd: Path

    def __str__(self) -> str:
        return f"`{self.command} |`"

    def files(self) -> list[Path]:
        """The existing files the command names (its inputs, as far as can be told)."""
        try:
            words = shlex.split(self.command.replace("|", " "))
        except ValueError:
            return []
        out = []
        for w in words:
            p = Path(w) if Path(w).is_absolute() else self.cwd / w
            if not w.startswith("-") and p.is_file():
                out.append(p)
        return out

    def open(self) -> io.BytesIO:
        """Run the command; its output as an in-memory file (a failure names the command)."""
        import subprocess  # (only a read runs one: planning imports this module, never runs it)

        done = subprocess.run(["/bin/sh", "-c", self.command], cwd=self.cwd,
                              capture_output=True, timeout=600)
        if done.returncode != 0:
            err = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            raise OSError(f"command exited {done.returncode}: {err}")
        return io.BytesIO(done.stdout)
