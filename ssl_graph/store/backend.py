"""Byte-level access to the store root: a local directory or any fsspec URL.

Node records and indexes are small JSON documents that planning reads on every run; reading them
directly (instead of through zarr) keeps a no-op ``run`` well under half a second. Every write of
such a document is atomic (temp file + rename locally), so a crash never leaves a torn record.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: URL schemes that name a plain local directory (read and written directly, with a real lock)
LOCAL_SCHEMES = ("file://", "local://")


class DamagedFile(ValueError):
    """A store document that exists but cannot be parsed (torn write, manual edit, disk fault)."""

    def __init__(self, location: str, problem: str):
        self.location, self.problem = location, problem
        super().__init__(f"{location}: {problem}")


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith(LOCAL_SCHEMES)


def _strip_scheme(location: str) -> str:
    for scheme in LOCAL_SCHEMES:
        location = location.removeprefix(scheme)
    return location


class LocalBackend:
    def __init__(self, root: str):
        self.root = Path(_strip_scheme(root)).expanduser().resolve()

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
        except OSError as exc:  # name the file (ENOSPC, EROFS... come without one)
            Path(tmp).unlink(missing_ok=True)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
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

    def file_sizes(self, key: str) -> dict[str, int]:
        """Every file under ``key``, as relative key -> size (one directory walk)."""
        base = self._p(key)
        out = {}
        for dirpath, _, files in os.walk(base):
            for f in files:
                full = Path(dirpath) / f
                with contextlib.suppress(FileNotFoundError):  # removed while listing
                    out[full.relative_to(base).as_posix()] = full.stat().st_size
        return out


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

    def file_sizes(self, key: str) -> dict[str, int]:
        base = self._p(key)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return {}
        prefix = base.rstrip("/") + "/"
        return {p.removeprefix(prefix): int(info.get("size") or 0) for p, info in found.items()
                if p.startswith(prefix) and info.get("type", "file") == "file"}


def open_backend(location: str) -> LocalBackend | FsspecBackend:
    return FsspecBackend(location) if is_url(location) else LocalBackend(location)


def location_of(backend, key: str) -> str:
    return f"{backend.url}/{key}"


def read_json(backend, key: str, expect: type | None = None) -> Any | None:
    """Parse one store document; a torn or mistyped one raises :class:`DamagedFile` naming it."""
    raw = backend.read_bytes(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFile(location_of(backend, key), f"not valid JSON ({exc})") from None
    if expect is not None and not isinstance(value, expect):
        raise DamagedFile(location_of(backend, key),
                          f"expected a JSON {expect.__name__}, found {type(value).__name__}")
    return value


def write_json(backend, key: str, value: Any) -> None:
    backend.write_bytes(key, json.dumps(value, indent=1, sort_keys=True).encode())
