"""Byte-level access to the store root: a local directory or any fsspec URL.

Node records and indexes are small JSON documents that planning reads on every run; reading them
directly (instead of through zarr) keeps a no-op ``run`` well under half a second. Every write of
such a document is atomic (temp file + rename locally), so a crash never leaves a torn record.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


class LocalBackend:
    def __init__(self, root: str):
        self.root = Path(root.removeprefix("file://")).expanduser().resolve()

    @property
    def url(self) -> str:
        return str(self.root)

    def _p(self, key: str) -> Path:
        return self.root / key

    def exists(self, key: str) -> bool:
        return self._p(key).exists()

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._p(key).read_bytes()
        except FileNotFoundError:
            return None

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._p(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def listdir(self, key: str) -> list[str]:
        try:
            return sorted(p.name for p in self._p(key).iterdir())
        except FileNotFoundError:
            return []

    def delete(self, key: str) -> None:
        path = self._p(key)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def size(self, key: str) -> int:
        path = self._p(key)
        if path.is_file():
            return path.stat().st_size
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class FsspecBackend:
    """Object stores (``s3://``, ``gs://``, ``memory://``...) through fsspec."""

    def __init__(self, url: str, storage_options: dict | None = None):
        import fsspec

        self.fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        self._root = path.rstrip("/")
        self._url = url.rstrip("/")

    @property
    def url(self) -> str:
        return self._url

    def _p(self, key: str) -> str:
        return f"{self._root}/{key}"

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._p(key))

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self.fs.cat_file(self._p(key))
        except FileNotFoundError:
            return None

    def write_bytes(self, key: str, data: bytes) -> None:
        # object stores replace whole objects atomically on PUT
        self.fs.pipe_file(self._p(key), data)

    def listdir(self, key: str) -> list[str]:
        try:
            return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self._p(key), detail=False))
        except FileNotFoundError:
            return []

    def delete(self, key: str) -> None:
        if self.fs.exists(self._p(key)):
            self.fs.rm(self._p(key), recursive=True)

    def size(self, key: str) -> int:
        return int(self.fs.du(self._p(key)))


def open_backend(location: str) -> LocalBackend | FsspecBackend:
    return FsspecBackend(location) if is_url(location) else LocalBackend(location)


def read_json(backend, key: str) -> Any | None:
    raw = backend.read_bytes(key)
    return None if raw is None else json.loads(raw)


def write_json(backend, key: str, value: Any) -> None:
    backend.write_bytes(key, json.dumps(value, indent=1, sort_keys=True).encode())
