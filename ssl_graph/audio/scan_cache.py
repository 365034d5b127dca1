"""The file list of a ``Corpus(root=..., glob=...)``, cached and keyed by directory mtimes.

Globbing 250k files costs more than everything else a no-op plan does. A directory's mtime
changes whenever an entry is added, removed or renamed in it (a new subdirectory changes its
parent's), so while every directory the glob could have listed keeps its mtime, the glob's
answer is unchanged. Content edits do not touch directory mtimes: they are caught by the
per-file stat that gives each utterance its identity (``manifest.py``), which this cache never
replaces. A directory modified within ``RACY_NS`` of the scan is not trusted (timestamps are
coarse: a file added in the same tick would leave the mtime unchanged), so no cache is saved
for it. Each directory is recorded with its ctime and inode too: tools that restore mtimes
(``tar -x``, ``rsync -a``, ``cp -a``) cannot restore a ctime, and a directory deleted and made
again is a new inode. Anything unreadable or inconsistent in a cache file makes it a miss, never an answer.
"""

from __future__ import annotations

import contextlib
import glob as globlib
import hashlib
import json
import os
import time

VERSION = 2
ENV_VAR = "SSL_GRAPH_CACHE"
#: directories changed this recently are not cached (coarse filesystem timestamps)
RACY_NS = 2_000_000_000


def cache_dir() -> str:
    """``$SSL_GRAPH_CACHE``, else ``$XDG_CACHE_HOME/ssl_graph``, else ``~/.cache/ssl_graph``."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ssl_graph")


def _cache_file(root: str, pattern: str) -> str:
    key = hashlib.sha256(f"{VERSION}\0{root}\0{pattern}".encode()).hexdigest()[:24]
    return os.path.join(cache_dir(), "scans", f"{key}.json")


def _depth(pattern: str) -> int | None:
    """How deep below root the glob can list directories (None: any depth, ``**``)."""
    parts = pattern.replace(os.sep, "/").split("/")
    return None if any("**" in p for p in parts) else len(parts) - 1


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _directories(root: str, depth: int | None) -> list[list]:
    """[path relative to root, mtime_ns, ctime_ns, inode] of root and every directory below it up to ``depth``
    (hidden ones and symlinked ones too: recording more than glob lists only costs misses)."""
    out = [["", *_stamp(os.stat(root))]]
    seen = {os.path.realpath(root)}
    stack = [("", 0)]
    while stack:
        rel, level = stack.pop()
        if depth is not None and level >= depth:
            continue
        with os.scandir(os.path.join(root, rel)) as it:
            for e in it:
                try:
                    if not e.is_dir():
                        continue
                    sub = os.path.join(rel, e.name)
                    real = os.path.realpath(e.path)
                    if real in seen:  # a symlink loop or a second link to one directory
                        continue
                    seen.add(real)
                    out.append([sub, *_stamp(e.stat())])
                except OSError:
                    continue
                stack.append((sub, level + 1))
    return out


def _load(path: str, root: str, pattern: str) -> tuple[list[str], list[str]] | None:
    """The cached (relative file names, utterance ids), or None when the cache is absent,
    garbage or stale."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        if not (isinstance(doc, dict) and doc.get("version") == VERSION
                and doc.get("root") == root and doc.get("glob") == pattern):
            return None
        dirs, files, utts = doc["dirs"], doc["files"], doc["utts"]
        if not (isinstance(dirs, list) and isinstance(files, str) and isinstance(utts, str)
                and dirs):
            return None
        for entry in dirs:
            if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str)):
                return None
            if _stamp(os.stat(os.path.join(root, entry[0]))) != entry[1:]:
                return None
        if _checksum(files, utts) != doc.get("sha256"):
            return None  # a torn or hand-edited list
        names, ids = files.split("\n"), utts.split("\n")
        return (names, ids) if len(names) == len(ids) else None
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _checksum(files: str, utts: str) -> str:
    return hashlib.sha256(f"{files}\0{utts}".encode()).hexdigest()


def _save(path: str, root: str, pattern: str, dirs: list[list], names: list[str],
          ids: list[str]) -> None:
    files, utts = "\n".join(names), "\n".join(ids)
    doc = {"version": VERSION, "root": root, "glob": pattern, "dirs": dirs, "files": files,
           "utts": utts, "sha256": _checksum(files, utts)}
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):  # a read-only home only loses the speed-up
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


class GlobScan:
    """``files()`` → the sorted relative paths glob finds; ``hit`` says whether they came from
    the cache, and then ``ids`` holds their utterance ids (validated when they were saved)."""

    def __init__(self, root: str, pattern: str):
        self.root = os.path.abspath(root)
        self.pattern = pattern
        self.path = _cache_file(self.root, pattern)
        self.hit = False
        self.ids: list[str] = []
        self._dirs: list[list] = []

    def files(self) -> list[str]:
        cached = _load(self.path, self.root, self.pattern)
        if cached is not None:
            self.hit = True
            names, self.ids = cached
            return names
        # directories first: a change made while globbing then shows as a miss next time
        started = time.time_ns()
        try:
            self._dirs = _directories(self.root, _depth(self.pattern))
        except OSError:
            self._dirs = []
        if any(d[1] > started - RACY_NS for d in self._dirs):
            self._dirs = []  # too fresh to trust: the next scan globs again
        found = sorted(globlib.glob(os.path.join(globlib.escape(self.root), self.pattern),
                                    recursive=True))
        n = len(self.root) + (0 if self.root.endswith(os.sep) else 1)
        out = []
        for f in found:  # relpath costs 7 µs a file: only where the glob left '.'/'//' in
            rel = f[n:]
            out.append(os.path.relpath(f, self.root) if "/." in f"/{rel}" or "//" in rel else rel)
        return out

    def save(self, names: list[str], ids: list[str]) -> None:
        """Called once the names passed the scan's checks (ids valid and unique)."""
        if not self.hit and names and self._dirs and not any("\n" in s for s in names):
            _save(self.path, self.root, self.pattern, self._dirs, names, ids)
