"""A recording whose audio is a shell command's output (a Kaldi ``wav.scp`` pipe the corpus opted
in to running with ``Corpus.kaldi(dir, commands="run")``).

The command runs with ``/bin/sh`` in the data directory's base, and its standard output must be
audio soundfile reads (WAV, FLAC...). Its identity is the command text plus the identity of every
file the command names that exists, so editing either reruns what reads the recording.
"""

from __future__ import annotations

import io
import shlex
from dataclasses import dataclass
from pathlib import Path


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
