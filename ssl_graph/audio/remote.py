"""Audio on an object store: ``Corpus(root="s3://bucket/audio")`` listed and read through fsspec.

Listing gives each object's size and ETag (or modification time), which is the file identity a
local corpus takes from size + mtime, so an overwritten object restales only its utterance
without downloading anything at plan time. ``identity="hash"`` reads every object once.
fsspec options (endpoint, credentials) come from ``$SSL_GRAPH_STORAGE_OPTIONS`` as for stores.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
from dataclasses import dataclass

from ..specs.base import SpecError
from .manifest import Manifest, Utterance, check_utt_id


@dataclass(frozen=True)
class RemoteFile:
    """One audio object, usable wherever a corpus file path is (``audio/io.py`` reads it)."""

    url: str

    def __str__(self) -> str:
        return self.url

    def open(self) -> io.BytesIO:
        """The whole object in memory (soundfile seeks; utterances are seconds long)."""
        fs, path = _fs(self.url)
        return io.BytesIO(fs.cat_file(path))


def is_remote(root: str | None) -> bool:
    from ..store.backend import is_url

    return root is not None and is_url(root)


def _fs(url: str):
    import fsspec

    from ..store.backend import resolve_options

    return fsspec.core.url_to_fs(url, **resolve_options(url))


def _identity(fs, path: str, info: dict, mode: str) -> str:
    if mode == "hash":
        return "sha256:" + hashlib.sha256(fs.cat_file(path)).hexdigest()[:32]
    tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
    return f"{info.get('size')}:{str(tag).strip(chr(34))}"


def scan_remote(corpus, name: str):
    """The manifest of a corpus whose root is an fsspec URL (plain ``layout="files"`` only)."""
    if corpus.layout != "files" or corpus.manifest is not None:
        raise SpecError(f"{name}: a corpus root URL ({corpus.root}) works with plain files only "
                        "(no layout or manifest); copy the tree locally for other layouts")
    if corpus.speakers is not None:
        raise SpecError(f"{name}: Corpus(speakers=...) is not supported with a root URL")
    try:
        fs, root = _fs(corpus.root)
        root = root.rstrip("/")
        found = fs.find(root, detail=True)
    except (OSError, ValueError) as exc:
        raise SpecError(f"{name}: cannot list audio at {corpus.root} ({exc}); check the URL and "
                        "$SSL_GRAPH_STORAGE_OPTIONS (endpoint, credentials)") from None
    protocol = corpus.root.split("://", 1)[0]
    utts: dict[str, Utterance] = {}
    for path, info in sorted(found.items()):
        rel = path.removeprefix(root + "/")
        if info.get("type", "file") != "file" or not _matches(rel, corpus.glob):
            continue
        utt = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
        url = f"{protocol}://{path}"
        check_utt_id(utt, url, name)
        utts[utt] = Utterance(utt, RemoteFile(url), _identity(fs, path, info, corpus.identity))
    if not utts:
        raise SpecError(f"{name}: no objects match {corpus.glob!r} under {corpus.root}; fix "
                        "Corpus(glob=...) or the URL")
    return Manifest(utts)  # built whole: its id/identity columns come from these


def _matches(rel: str, pattern: str) -> bool:
    """Glob semantics of a local corpus: ``*`` stays in one folder, ``**/`` spans folders."""
    if pattern.startswith("**/"):
        return fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pattern[3:]) or fnmatch.fnmatch(rel, pattern)
    return "/" not in rel and fnmatch.fnmatch(rel, pattern) or (
        "/" in pattern and fnmatch.fnmatch(rel, pattern))
