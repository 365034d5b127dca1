"""Listing a corpus at plan time: which utterances it holds, with their file identities.

Local trees, manifests and layouts (``formats.layouts``) are listed here, one ``os.stat`` a
file; a root URL goes through ``remote.py``. The result is a :class:`~.manifest.Manifest`.
"""

from __future__ import annotations

import itertools
import os
import stat as statlib
from pathlib import Path

from ..formats.sources import AudioSegment, CommandAudio
from ..formats.tsv import read_rows
from ..specs.base import SpecError
from .manifest import Manifest, check_utt_id, source_identity
from .remote import is_remote, scan_remote


def scan_corpus(corpus, name: str = "corpus") -> Manifest:
    """List a Corpus node's utterances with identities; errors name the node and the path."""
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
