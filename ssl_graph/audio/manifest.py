"""Which utterances a corpus holds and their file identities, read at plan time without decoding.

The identity of each file (size + mtime, or a content hash) is what makes per-utterance
incrementality work: an edited file gets a new identity, so only its downstream frames rerun.
"""

from __future__ import annotations

import glob as globlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..formats.sources import AudioSegment, CommandAudio, file_identity
from ..specs.base import SpecError


@dataclass(frozen=True)
class Utterance:
    utt: str
    #: a file, or an ``AudioSegment`` (a time range of one); ``audio/io.py`` reads either
    path: Path | AudioSegment
    identity: str
    #: from the layout or ``Corpus(speakers=...)``; None = unknown (splits use the utterance id)
    speaker: str | None = None


class Manifest:
    """The corpus's utterances. Built as columns (ids, paths, identities) because a no-op plan
    of 250k utterances reads only the identities: the ``Utterance`` objects (and their
    ``Path``, 5 µs each) are made on first use of ``utts``."""

    def __init__(self, utts: dict[str, Utterance] | None = None):
        self._utts = utts
        self.ids: list[str] = list(utts) if utts else []
        self.identities: list[str] = [u.identity for u in utts.values()] if utts else []
        self._paths: list = []
        self._speakers: dict[str, str] = {}

    @classmethod
    def from_columns(cls, ids: list[str], paths: list, identities: list[str],
                     speakers: dict[str, str]) -> "Manifest":
        m = cls()
        m.ids, m._paths, m.identities, m._speakers = ids, paths, identities, speakers
        return m

    @property
    def utts(self) -> dict[str, Utterance]:
        if self._utts is None:
            sp = self._speakers
            self._utts = {
                u: Utterance(u, p if isinstance(p, (Path, AudioSegment, CommandAudio)) else Path(p),
                             i, sp.get(u))
                for u, p, i in zip(self.ids, self._paths, self.identities)}
        return self._utts

    def speaker(self, utt: str) -> str | None:
        return self._utts[utt].speaker if self._utts is not None else self._speakers.get(utt)

    def __len__(self) -> int:
        return len(self.ids)

    def scan_digest(self) -> str:
        """One hash of every (utterance, identity) in order: equal digests mean equal
        per-utterance audio versions, decided without hashing each utterance."""
        h = hashlib.sha256()
        h.update("\n".join(f"{u}\t{i}" for u, i in zip(self.ids, self.identities)).encode())
        return h.hexdigest()[:32]


def command_identity(source: CommandAudio, mode: str) -> str:
    """A command recording's identity: its text and the identities of the files it names."""
    h = hashlib.sha256(source.command.encode())
    for f in source.files():
        h.update(f"\0{f}\0{file_identity(f, mode)}".encode())
    return "cmd:" + h.hexdigest()[:32]


def source_identity(source: Path | AudioSegment | CommandAudio, mode: str,
                    seen: dict | None = None) -> str:
    """A file's identity; a segment's is its recording's plus the time range (``seen`` caches
    recordings' identities, so hashing a long recording happens once, not once per segment)."""
    if isinstance(source, CommandAudio):
        return command_identity(source, mode)
    if not isinstance(source, AudioSegment):
        return file_identity(source, mode)
    seen = {} if seen is None else seen
    if source.file not in seen:
        seen[source.file] = source_identity(source.file, mode)
    return f"{seen[source.file]}@{source.start!r}-{source.end!r}"


def check_utt_id(utt: str, path: Path, name: str) -> None:
    """Utterance ids name store entries and exported files: no control characters (a tab or
    newline would break every TSV written from them), no absolute or ``..`` paths."""
    bad = next((c for c in utt if ord(c) < 32 or ord(c) == 127), None)
    why = None
    if not utt.strip():
        why = "is empty"
    elif bad is not None:
        why = f"contains the control character {bad!r}"
    elif utt.startswith(("/", "\\")) or (utt[:1].isalpha() and utt[1:3] in (":/", ":\\")):
        why = "is an absolute path"
    elif any(part in (".", "..", "") for part in utt.replace("\\", "/").split("/")):
        why = "has a '.', '..' or empty path component"
    if why:
        raise SpecError(
            f"{name}: utterance id {utt!r} (file {str(path)!r}) {why}; rename the file or fix its id in "
            "the manifest"
        )


def glob_escape(path: str) -> str:
    return globlib.escape(path)
