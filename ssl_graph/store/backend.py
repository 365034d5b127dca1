"""Byte-level access to the store root: a local directory or any fsspec URL.

Node records and indexes are small JSON documents that planning reads on every run; reading them
directly (instead of through zarr) keeps a no-op ``run`` well under half a second. Every write of
such a document is atomic (temp file + rename locally), so a crash never leaves a torn record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import DamagedFile  # noqa: F401 - (re-exported: readers import it from here)
from .paths import Uncontained, contained, folder_of, guard

#: URL schemes that name a plain local directory (read and written directly, with a real lock)
LOCAL_SCHEMES = ("file://", "local://")
#: JSON object of fsspec options for URL stores and corpus roots (endpoint_url, key, secret...)
OPTIONS_ENV = "SSL_GRAPH_STORAGE_OPTIONS"
#: fsspec protocols that read archives: a store is written in place, so it cannot be in one
ARCHIVE_PROTOCOLS = ("zip", "tar", "libarchive")


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith(LOCAL_SCHEMES)


def _strip_scheme(location: str) -> str:
    for scheme in LOCAL_SCHEMES:
        location = location.removeprefix(scheme)
    return location


class LocalBackend:
    def __init__(self, root: str):
        self.root = Path(_strip_scheme(root)).expanduser().resolve()
        #: folders under the root already seen to be real folders, not links (``paths``)
        self.real_dirs: set[str] = set()

    @property
    def url(self) -> str:
        return str(self.root)

    def _p(self, key: str) -> Path:
        return self.root / guard(self, key)

    def path(self, key: str) -> Path:
        """The local file of ``key``, for readers that open it themselves (checked like every
        key: a symbolic link that leads outside its folder is refused)."""
        return self._p(key)

    def exists(self, key: str) -> bool:
        contained(*folder_of(key), "file", self, on_disk=False)  # a bad key is an error
        try:
            return self._p(key).exists()
        except Uncontained:  # something is there: a link leading out, refused when read
            return True

    def link_target(self, key: str) -> str | None:
        """Where ``key`` points if it is a symbolic link (its folder checked), else None."""
        path = self._p(key.rpartition("/")[0]) / key.rpartition("/")[2]
        return os.readlink(path) if path.is_symlink() else None

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
        """Remove a file or folder; a symbolic link is removed itself, never what it leads to
        (and nothing is removed through one: its folder must be inside the store)."""
        if self.link_target(key) is not None:
            (self._p(key.rpartition("/")[0]) / key.rpartition("/")[2]).unlink()
            return
        path = self._p(key)
        if path.is_dir():
            shutil.rmtree(path)  # (removes links inside, never following them)
            self.real_dirs.clear()  # (what was a folder here may come back as anything)
        else:
            path.unlink(missing_ok=True)

    def size(self, key: str) -> int:
        """Bytes under ``key``, links counted as themselves (never followed)."""
        if self.link_target(key) is not None:
            return 0
        path = self._p(key)
        if not path.is_dir():
            return path.lstat().st_size if path.exists() else 0
        return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path)
                   for f in files)

    def file_sizes(self, key: str) -> dict[str, int]:
        """Every file under ``key``, as relative key -> size (one directory walk)."""
        return {rel: size for rel, (size, _) in self.file_stats(key).items()}

    def file_stats(self, key: str) -> dict[str, tuple[int, int | None]]:
        """Every file under ``key``, as relative key -> (size, mtime in ns): one directory walk,
        the same ``stat`` calls as sizes alone."""
        base = self._p(key)
        out = {}
        for dirpath, _, files in os.walk(base):
            for f in files:
                full = Path(dirpath) / f
                with contextlib.suppress(FileNotFoundError):  # removed while listing
                    st = full.lstat()  # (a link counts as itself, never followed)
                    out[full.relative_to(base).as_posix()] = (st.st_size, st.st_mtime_ns)
        return out

    def mtime_ns(self, key: str) -> int | None:
        try:
            return self._p(key).stat().st_mtime_ns
        except OSError:
            return None


def resolve_options(url: str, given: dict | None = None) -> dict:
    """The fsspec options for ``url``: ``given``, else the JSON in ``$SSL_GRAPH_STORAGE_OPTIONS``.

    They are also made the protocol's fsspec defaults, so every filesystem opened for that
    protocol in this process (zarr's arrays, audio read from an ``s3://`` corpus) uses them."""
    import fsspec.config

    if given is None:
        raw = os.environ.get(OPTIONS_ENV, "").strip()
        try:
            given = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"${OPTIONS_ENV} is not valid JSON ({exc}); set it to an object "
                             'such as {"endpoint_url": "http://127.0.0.1:9000"}') from None
        if not isinstance(given, dict):
            raise ValueError(f"${OPTIONS_ENV} must be a JSON object of fsspec options")
    if given:
        protocol = url.split("://", 1)[0]
        fsspec.config.conf.setdefault(protocol, {}).update(given)
    return dict(given)


def _precondition_failed(exc: OSError) -> bool:
    return isinstance(exc, FileExistsError) or "pre-condition" in str(exc).lower()


class FsspecBackend:
    """Object stores (``s3://``, ``gs://``, ``memory://``...) through fsspec.

    The ``*_if`` methods are the lock primitive: on S3 they are conditional PUT/DELETE
    (``If-None-Match: *`` to create only, ``If-Match: <etag>`` to compare-and-swap); other
    filesystems get a read-compare-write emulation that is not atomic (``atomic`` says which)."""

    def __init__(self, url: str, storage_options: dict | None = None):
        import fsspec

        self.options = resolve_options(url, storage_options)
        protocol = url.split("://", 1)[0]
        if protocol in ARCHIVE_PROTOCOLS:
            raise ValueError(f"store {url}: a store cannot live inside a {protocol} archive "
                             "(ssl_graph writes it in place); unpack the archive and pass the "
                             "directory, or use an object store (s3://bucket/prefix)")
        try:
            self.fs, path = fsspec.core.url_to_fs(url, **self.options)
        except ImportError as exc:
            raise ValueError(f"store {url}: {exc}") from None
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"store {url}: cannot open it ({type(exc).__name__}: {exc}); "
                             "give a directory or a writable fsspec URL such as "
                             f"s3://bucket/prefix (options in ${OPTIONS_ENV})") from None
        self._root = path.rstrip("/")
        self._url = url.rstrip("/")
        self.atomic = hasattr(self.fs, "call_s3")
        if self.atomic:
            self._check_bucket()

    def _check_bucket(self) -> None:
        """A missing bucket is named now: writes would fail deep inside a run, and reads would
        find an empty store and plan everything as new."""
        bucket = self.fs.split_path(self._root)[0]
        try:
            self.fs.call_s3("head_bucket", Bucket=bucket)
        except FileNotFoundError:
            where = self.options.get("endpoint_url") or "AWS"
            raise ValueError(f"store {self._url}: bucket {bucket!r} does not exist (at "
                             f"{where}); create it (aws s3 mb s3://{bucket}) or fix the URL or "
                             f"the endpoint in ${OPTIONS_ENV}") from None
        except (PermissionError, OSError):
            pass  # no right to HEAD the bucket is not proof it is missing: let the I/O decide

    # ---- conditional writes (leases) ----------------------------------------------------
    def _s3(self, method: str, key: str, **kwargs):
        bucket, path, _ = self.fs.split_path(self._p(key))
        try:
            return self.fs.call_s3(method, Bucket=bucket, Key=path, **kwargs)
        finally:
            self.fs.invalidate_cache(self._p(key))

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        """(content, version tag) of an object, or None if absent."""
        if not self.atomic:
            data = self.read_bytes(key)
            return None if data is None else (data, hashlib.md5(data).hexdigest())
        try:
            tag = self._s3("head_object", key)["ETag"]
            data = self.fs.cat_file(self._p(key))
        except FileNotFoundError:
            return None
        return data, tag  # content newer than the tag only makes a later *_if fail: safe

    def create_if_absent(self, key: str, data: bytes) -> str | None:
        """Write ``data`` only if ``key`` does not exist; its tag, or None if it existed."""
        if not self.atomic:
            if self.exists(key):
                return None
            self.write_bytes(key, data)
            return hashlib.md5(data).hexdigest()
        try:
            return self._s3("put_object", key, Body=data, IfNoneMatch="*")["ETag"]
        except OSError as exc:
            if _precondition_failed(exc):
                return None
            raise

    def replace_if(self, key: str, data: bytes, tag: str) -> str | None:
        """Replace ``key`` only if it still has version ``tag``; the new tag, or None."""
        if not self.atomic:
            now = self.read_tagged(key)
            if now is None or now[1] != tag:
                return None
            self.write_bytes(key, data)
            return hashlib.md5(data).hexdigest()
        try:
            return self._s3("put_object", key, Body=data, IfMatch=tag)["ETag"]
        except FileNotFoundError:
            return None
        except OSError as exc:
            if _precondition_failed(exc):
                return None
            raise

    def delete_if(self, key: str, tag: str) -> bool:
        if not self.atomic:
            now = self.read_tagged(key)
            if now is None or now[1] != tag:
                return False
            self.delete(key)
            return True
        try:
            self._s3("delete_object", key, IfMatch=tag)
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            if _precondition_failed(exc):
                return False
            raise

    @property
    def url(self) -> str:
        return self._url

    def _p(self, key: str) -> str:
        return f"{self._root}/{guard(self, key)}"

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._p(key))

    def link_target(self, key: str) -> None:
        self._p(key)  # (the key is checked all the same)
        return None  # object stores have no symbolic links

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
        return {rel: size for rel, (size, _) in self.file_stats(key).items()}

    def file_stats(self, key: str) -> dict[str, tuple[int, int | None]]:
        """relative key -> (size, last-modified in ns, None where the filesystem has none)."""
        base = self._p(key)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return {}
        prefix = base.rstrip("/") + "/"
        return {p.removeprefix(prefix): (int(info.get("size") or 0), _modified_ns(info))
                for p, info in found.items()
                if p.startswith(prefix) and info.get("type", "file") == "file"}

    def mtime_ns(self, key: str) -> int | None:
        try:
            return _modified_ns(self.fs.info(self._p(key)))
        except (FileNotFoundError, OSError):
            return None


def _modified_ns(info: dict) -> int | None:
    """An fsspec entry's last-modified time in ns (S3 ``LastModified``, local ``mtime``, memory
    ``created``), in whole seconds: S3 keeps no finer time, yet some servers list milliseconds
    where HEAD gives seconds. None if the filesystem keeps none."""
    import datetime

    for field in ("LastModified", "mtime", "created"):
        value = info.get(field)
        if isinstance(value, datetime.datetime):
            value = value.timestamp()
        if isinstance(value, (int, float)):
            return int(value) * 1_000_000_000
    return None


def open_backend(location: str, storage_options: dict | None = None) -> LocalBackend | FsspecBackend:
    """``storage_options``: fsspec options for a URL (default: ``$SSL_GRAPH_STORAGE_OPTIONS``)."""
    return FsspecBackend(location, storage_options) if is_url(location) else LocalBackend(location)


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
