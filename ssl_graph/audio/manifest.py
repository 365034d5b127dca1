"""Which utterances a corpus holds and their file identities, read at plan time without decoding.

The identity of each file (size + mtime, or a content hash) is what makes per-utterance
incrementality work: an edited file gets a new identity, so only its downstream frames rerun.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..formats.tsv import read_rows
from ..specs.base import SpecError
from .segment import AudioSegment


@dataclass(frozen=True)
class Utterance:
    utt: str
    #: a file, or an ``AudioSegment`` (a time range of one); ``audio/io.py`` reads either
    path: Path | AudioSegment
    identity: str
    #: from the layout or ``Corpus(speakers=...)``; None = unknown (splits use the utterance id)
    speaker: str | None = None


@dataclass
class Manifest:
    utts: dict[str, Utterance] = field(default_factory=dict)


def file_identity(path: Path, mode: str) -> str:
    if mode == "hash":
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return "sha256:" + h.hexdigest()[:32]
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def source_identity(source: Path | AudioSegment, mode: str, seen: dict | None = None) -> str:
    """A file's identity; a segment's is its recording's plus the time range (``seen`` caches
    recordings' identities, so hashing a long recording happens once, not once per segment)."""
    if not isinstance(source, AudioSegment):
        return file_identity(source, mode)
    seen = {} if seen is None else seen
    if source.file not in seen:
        seen[source.file] = file_identity(source.file, mode)
    return f"{seen[source.file]}@{source.start!r}-{source.end!r}"


def scan_corpus(corpus, name: str = "corpus") -> Manifest:
    """List a Corpus node's utterances with identities; errors name the node and the path."""
    from .remote import is_remote, scan_remote

    if is_remote(corpus.root):  # s3://bucket/audio: listed through fsspec
        return scan_remote(corpus, name)
    root = corpus.path(corpus.root)
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
        files = sorted(globlib.glob(os.path.join(glob_escape(str(root)), corpus.glob), recursive=True))
        pairs = []
        for f in files:
            rel = os.path.relpath(f, root)
            pairs.append((os.path.splitext(rel)[0].replace(os.sep, "/"), Path(f)))
        if not pairs:
            raise SpecError(
                f"{name}: no files match {corpus.glob!r} under {root}; fix Corpus(glob=...) "
                "(e.g. '**/*.wav' for nested folders)"
            )
    if corpus.speakers is not None:
        from ..formats.layouts import read_speakers

        speakers = {**speakers, **read_speakers(_existing(corpus, corpus.speakers, name))}
    manifest, seen = Manifest(), {}
    for utt, path in pairs:
        file = path.file if isinstance(path, AudioSegment) else path
        check_utt_id(utt, path, name)
        if utt in manifest.utts:
            raise SpecError(
                f"{name}: utterance id {utt!r} appears twice ({manifest.utts[utt].path} and {path}); "
                "utterance ids must be unique"
            )
        try:
            ident = source_identity(path, corpus.identity, seen)
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
        manifest.utts[utt] = Utterance(utt, path, ident, speakers.get(utt))
    return manifest


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
