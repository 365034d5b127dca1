"""Node indexes this machine already parsed intact, remembered by their files' stat identity.

A fresh-by-digest node still has its index parsed, only so that a torn index is named and
recomputed. Parsing three 250k-utterance indexes costs more than the rest of a no-op plan, so
an index that parsed cleanly is remembered with (size, mtime_ns, inode) of its file, the trust
``Corpus(identity="stat")`` gives audio: any rewrite, truncation or replacement changes it and
the index is parsed again. Files changed within ``RACY_NS`` are not remembered (coarse clocks),
non-local stores are never memoised, and a memo file that cannot be read is just empty.

It also remembers part files that were modified after their commit yet matched their checksum
when the plan read them (a store copied without keeping mtimes), by (size, mtime_ns, digest),
so such files are read once, not by every plan (``store.integrity.plan_problems``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time

from ..audio.scan_cache import RACY_NS, cache_dir
from ..store.paths import contained


class IndexMemo:
    def __init__(self, store):
        root = store.local_root
        self.root = None if root is None else os.path.realpath(root)
        self.backend = store.backend
        self.entries: dict[str, list] = {}
        #: "nodes/<key>/<part>/<file>" -> [size, mtime_ns, digest] read and found intact
        self.files: dict[str, list] = {}
        self.dirty = False
        self.path = None
        if self.root is None:
            return
        name = hashlib.sha256(self.root.encode()).hexdigest()[:24]
        self.path = os.path.join(cache_dir(), "indexes", f"{name}.json")
        with contextlib.suppress(OSError, ValueError):
            with open(self.path, encoding="utf-8") as fh:
                doc = json.load(fh)
            if isinstance(doc, dict) and isinstance(doc.get("entries"), dict):
                self.entries = doc["entries"]
            if isinstance(doc, dict) and isinstance(doc.get("files"), dict):
                self.files = doc["files"]

    def _files(self, record: dict) -> list[str] | None:
        """The index's file names: its segments (``store/index.py``), or one JSON (older stores)."""
        field = record.get("index")
        if isinstance(field, str):
            return [field]
        segments = field.get("segments") if isinstance(field, dict) else None
        if isinstance(segments, list) and segments and all(
                isinstance(s, dict) and isinstance(s.get("file"), str) for s in segments):
            return [s["file"] for s in segments]
        return None  # (no index, or a layout this memo does not know: always parsed)

    def _identity(self, key: str, record: dict) -> list | None:
        names = self._files(record) if self.root is not None else None
        if names is None:
            return None
        ident = []
        for name in names:
            try:  # (a link out of the node's folder is refused, never followed)
                st = os.stat(os.path.join(self.root, contained(key, name, "index segment",
                                                             self.backend)))
            except (OSError, ValueError):
                return None
            ident.append([name, st.st_size, st.st_mtime_ns, st.st_ino])
        return ident

    def intact(self, key: str, record: dict) -> bool:
        ident = self._identity(key, record)
        return ident is not None and self.entries.get(key) == ident

    def remember(self, key: str, record: dict) -> None:
        ident = self._identity(key, record)
        if ident is not None and max(f[2] for f in ident) < time.time_ns() - RACY_NS \
                and self.entries.get(key) != ident:
            self.entries[key] = ident
            self.dirty = True

    def checked(self, path: str, stat: tuple, digest: str) -> bool:
        """``path`` was read intact at this (size, mtime) against this digest."""
        return self.root is not None and self.files.get(path) == [*stat, digest]

    def remember_checked(self, path: str, stat: tuple, digest: str) -> None:
        if self.root is not None and stat[1] < time.time_ns() - RACY_NS:
            self.files[path] = [*stat, digest]
            self.dirty = True

    def save(self) -> None:
        if not (self.dirty and self.path):
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError):  # a read-only cache only loses the speed-up
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"entries": self.entries, "files": self.files}, fh)
            os.replace(tmp, self.path)
            self.dirty = False
        with contextlib.suppress(OSError):
            os.unlink(tmp)
