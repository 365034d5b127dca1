"""Which utterances a corpus holds and their file identities, read at plan time without decoding.

The identity of each file (size + mtime, or a content hash) is what makes per-utterance
incrementality work: an edited file gets a new identity, so only its downstream frames rerun.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import itertools
import os
import stat as statlib
from dataclasses import dataclass
from pathlib import Path

from ..formats.tsv import read_rows
from ..specs.base import SpecError
from .command import CommandAudio
from .segment import AudioSegment


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


def file_identity(path: Path, mode: str) -> str:
    if mode == "hash":
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return "sha256:" + h.hexdigest()[:32]
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


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


def scan_corpus(corpus, name: str = "corpus") -> Manifest:
    """List a Corpus node's utterances with identities; errors name the node and the path."""
    from .remote import is_remote, scan_remote

    if is_remote(corpus.root):  # s3://bucket/audio: listed through fsspec
        return scan_remote(corpus, name)
    root = corpus.path(corpus.root)
    cache = None
    speakers: dict[str, str] = {}
    if corpus.layout != "files":
        from ..formats.layouts import read_layout

        pairs, speakers = read_layout(corpus, name)
    elif corpus.manifest is not None:
        mpath = corpus.path(corpus.manifest)
        if not mpath.is_file():
            what = "is a directory, not a TSV file" if mpath.is_dir() else "not found"
            raise SpecError(f"{name}: manifest {corpus.manifest!r} {what} (looked at {mpath})")
        pairs = []
        for _, cols in read_rows(mpath, "manifest", 2)[1]:
            p = Path(cols[1])
            base = root if root is not None else mpath.parent
            pairs.append((cols[0], p if p.is_absolute() else base / p))
        if not pairs:
            raise SpecError(f"{name}: manifest {mpath} lists no utterances ('utt<TAB>path' rows)")
    else:
        if root is None:
            raise SpecError(f"{name}: set Corpus(root=...) to a directory of audio, or "
                            "manifest=... to a TSV 'utt<TAB>path'")
        if not root.is_dir():
            raise SpecError(
                f"{name}: audio directory {corpus.root!r} does not exist (looked at {root}); "
                "fix Corpus(root=...) — relative paths are relative to the spec file"
            )
        from .scan_cache import GlobScan

        cache = GlobScan(str(root), corpus.glob)
        rels = cache.files()
        base = cache.root + os.sep
        if cache.hit:
            pairs = list(zip(cache.ids, [base + rel for rel in rels]))
        else:
            pairs = [(os.path.splitext(rel)[0].replace(os.sep, "/"), base + rel) for rel in rels]
        if not pairs:
            raise SpecError(
                f"{name}: no files match {corpus.glob!r} under {root}; fix Corpus(glob=...) "
                "(e.g. '**/*.wav' for nested folders)"
            )
    if corpus.speakers is not None:
        from ..formats.layouts import read_speakers

        speakers = {**speakers, **read_speakers(_existing(corpus, corpus.speakers, name),
                                                 corpus.speakers_column)}
    if cache is not None and cache.hit:  # ids were checked when the list was cached
        ids = [u for u, _ in pairs]
    else:
        ids = _checked_ids(pairs, name)
    identities = _identities(pairs, corpus.identity, name)
    if cache is not None:
        cache.save(rels, ids)
    return Manifest.from_columns(ids, [p for _, p in pairs], identities, speakers)


def _checked_ids(pairs: list, name: str) -> list[str]:
    seen: dict[str, object] = {}
    for utt, path in pairs:
        check_utt_id(utt, path, name)
        if utt in seen:
            raise SpecError(
                f"{name}: utterance id {utt!r} appears twice ({seen[utt]} and {path}); "
                "utterance ids must be unique"
            )
        seen[utt] = path
    return list(seen)


def _identities(pairs: list, mode: str, name: str) -> list[str]:
    """Each source's identity; one ``os.stat`` a file in 'stat' mode (the only per-file cost
    of a no-op plan: it is what catches an edit that leaves the directory unchanged)."""
    paths = [p for _, p in pairs]
    fast = _stat_identities(paths) if mode == "stat" and all(isinstance(p, str) for p in paths) \
        else [None] * len(paths)
    seen: dict = {}
    return [ident if ident is not None else _identity_or_error(utt, path, mode, name, seen)
            for (utt, path), ident in zip(pairs, fast)]


def _stat_identities(paths: list[str]) -> list[str | None]:
    """'size:mtime_ns' of each regular file, None where the careful path must look (missing,
    not a regular file, unreadable). Files are stat'ed by name inside their open directory,
    a folder at a time: ~30% cheaper than resolving each full path."""
    out: list[str | None] = []
    at_dir = os.stat in os.supports_dir_fd
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    isreg = statlib.S_ISREG
    for folder, group in itertools.groupby(paths, key=lambda p: p.rpartition(os.sep)[0]):
        group = list(group)
        try:
            fd = os.open(folder, flags) if at_dir else None
        except OSError:
            out.extend([None] * len(group))
            continue
        try:
            try:
                if fd is None:
                    sts = [os.stat(p) for p in group]
                else:
                    n = len(folder) + 1
                    sts = [os.stat(p[n:], dir_fd=fd) for p in group]
            except OSError:
                sts = [_stat_or_none(p) for p in group]
        finally:
            if fd is not None:
                os.close(fd)
        out.extend([f"{st.st_size}:{st.st_mtime_ns}" if st is not None and isreg(st.st_mode)
                     else None for st in sts])
    return out


def _stat_or_none(path: str):
    try:
        return os.stat(path)
    except OSError:
        return None


def _identity_or_error(utt: str, path, mode: str, name: str, seen: dict) -> str:
    path = Path(path) if isinstance(path, str) else path
    file = path.file if isinstance(path, AudioSegment) else path
    if isinstance(file, CommandAudio):  # nothing to stat: the command and the files it names
        return source_identity(path, mode, seen)
    try:
        ident = source_identity(path, mode, seen)
    except FileNotFoundError:
        raise SpecError(
            f"{name}: utterance {utt!r}: file {path} not found; restore it or drop it from "
            "the corpus"
        ) from None
    except OSError as exc:  # a directory under identity="hash", no permission, ...
        if not file.is_dir():
            raise SpecError(
                f"{name}: utterance {utt!r}: cannot read {path} ({exc.strerror}); fix its "
                "permissions or drop it from the corpus"
            ) from None
        ident = ""
    if not file.is_file():
        raise SpecError(
            f"{name}: utterance {utt!r}: {path} is not a regular file (a directory?); "
            "list audio files only (narrow Corpus(glob=...) or fix the manifest)"
        )
    return ident


def _existing(corpus, rel: str, name: str) -> Path:
    p = corpus.path(rel)
    if not p.is_file():
        raise SpecError(f"{name}: file {rel!r} not found (looked at {p})")
    return p


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
