"""Containment: a path named by stored data never leads outside the folder it belongs to.

Records, index segments, names and plans files and checkpoint fields name files by relative
path (a part ``parts/00003``, a checkpoint ``ckpt/step-00000020``, a node
``nodes/kmeans-<fp>``). A crafted or corrupted store could name ``../../victim`` or ``/home``
there, or replace a folder by a symbolic link; following it would read, overwrite or delete
files outside the store. So every such path becomes a store key through :func:`contained`, and
both backends pass every key they touch through it too (:func:`guard`): what would land outside
is refused as damage (:class:`Uncontained`, a :class:`DamagedFile`), for reads, writes and
deletes alike. Stored data is checked by its text (no ``..``, no absolute path or URL, which is
the whole rule on object stores, where nothing is a link); a local store is also checked on
disk: a symbolic link below the store root that leads out of its node's folder is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from .errors import DamagedFile

#: record fields that each name one file or folder of the node
PATH_FIELDS = ("checkpoint", "weights", "hypotheses")


class Uncontained(DamagedFile):
    """A stored path (or a symbolic link in the store) that leads outside its folder."""

    def __init__(self, location: str, field: str, value, base: str, reason: str):
        self.field, self.value, self.reason = field, value, reason
        super().__init__(location, f"{field} {value!r} leads outside {base or 'the store'} "
                         f"({reason})")


def _text_problem(path) -> str | None:
    """Why ``path`` cannot be a relative store path, judged by its text alone (None: it can)."""
    if not isinstance(path, str):
        return f"it is a {type(path).__name__}, not a path"
    if not path:
        return None
    if "\x00" in path or "\\" in path:
        return "it holds a NUL or a backslash"
    if "://" in path or (len(path) > 1 and path[1] == ":"):
        return "it is a URL or a drive path"
    if path.startswith("/") or path.startswith("~"):
        return "it is absolute"
    bad = next((part for part in path.split("/") if part in ("", ".", "..")), None)
    if bad is not None:
        return f"it has a {bad!r} component" if bad else "it has an empty component"
    return None


#: folders a process remembers as real (not links) per store, at most (then it starts over)
REAL_DIRS = 1 << 16


def _link_problem(root, base: str, key: str, real_dirs: set | None) -> str | None:
    """Whether following ``key`` on disk under ``root`` leaves ``base`` (a symbolic link on the
    way that resolves elsewhere). One ``lstat`` per component not yet known as a real folder
    (``real_dirs``: the backend's memo), so a chunk read costs one or two, not seven."""
    names = key.split("/") if key else []
    known = 0  # leading components known to be real folders
    if real_dirs is not None and key.rpartition("/")[0] in real_dirs:
        known = len(names) - 1
    top = os.fspath(root)
    for i in range(known, len(names)):
        prefix = "/".join(names[:i + 1])
        if real_dirs is not None and prefix in real_dirs:
            continue
        path = f"{top}/{prefix}"
        try:
            mode = os.lstat(path).st_mode
        except OSError:  # missing (or under a file): nothing further down to follow
            return None
        if stat.S_ISDIR(mode) and real_dirs is not None:
            if len(real_dirs) >= REAL_DIRS:
                real_dirs.clear()
            real_dirs.add(prefix)
        elif stat.S_ISLNK(mode):
            real = os.path.realpath(os.path.join(root, key))
            inside = os.path.join(root, base) if base else str(root)
            if real == inside or real.startswith(inside + os.sep):
                return None  # a link that stays inside its folder
            return (f"a symbolic link on the way resolves to {real}; links are never followed: "
                    "`ssl-graph verify --repair` then `ssl-graph gc` remove them")
    return None


def contained(base: str, relative, field: str, backend=None, on_disk: bool = True) -> str:
    """The store key of ``relative`` inside store folder ``base`` (a node key, ``nodes``...).

    ``relative`` comes from stored data: ``field`` says which (``checkpoint``, ``part``...), for
    the message. Anything that would leave ``base`` raises :class:`Uncontained` naming the
    folder, the field and the value. In a local store (``backend``) the path is also followed
    on disk, for symbolic links, unless ``on_disk`` is False; otherwise it is judged by its
    text (all an object store needs)."""
    problem = _text_problem(relative) or (_text_problem(base) if base else None)
    key = f"{base}/{relative}" if base and relative else (base or relative)
    root = getattr(backend, "root", None)
    if problem is None and root is not None and on_disk:
        problem = _link_problem(root, base, key, getattr(backend, "real_dirs", None))
    if problem is not None:
        where = f"{backend.url}/{base}".rstrip("/") if backend is not None else base or "."
        raise Uncontained(where, field, relative, base, problem)
    return key


def folder_of(key: str) -> tuple[str, str]:
    """(the folder ``key`` must stay inside, the rest): a node's folder for what is under
    ``nodes/``, else the top-level folder (``names``, ``locks``...), else the root."""
    parts = key.split("/")
    n = 2 if parts[0] == "nodes" and len(parts) > 1 else 1 if len(parts) > 1 else 0
    return "/".join(parts[:n]), "/".join(parts[n:])


def guard(backend, key: str) -> str:
    """``key`` checked before a backend touches it: what every read, write and delete passes."""
    return contained(*folder_of(key), "file", backend)


def check_tree(backend, key: str) -> None:
    """Every link under folder ``key`` stays inside its node's folder (for what zarr reads by
    itself without a checksum manifest to go through the backend first)."""
    root = getattr(backend, "root", None)
    if root is None:
        return
    for dirpath, dirs, files in os.walk(backend.path(key)):  # (never descends into a link)
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                guard(backend, os.path.relpath(full, root).replace(os.sep, "/"))


def record_paths(record: dict) -> Iterator[tuple[str, object]]:
    """(field, relative path) of every file or folder a node record names: checkpoint, weights,
    hypotheses, best weights, index file or segments, parts and named arrays with their files."""
    for name in PATH_FIELDS:
        if record.get(name) is not None:
            yield name, record[name]
    best = record.get("best")
    if isinstance(best, dict) and best.get("key") is not None:
        yield "best.key", best["key"]
    index = record.get("index")
    if isinstance(index, str):
        yield "index", index
    elif isinstance(index, dict):
        for seg in index.get("segments") or ():
            yield "index segment", seg.get("file") if isinstance(seg, dict) else seg
    for field in ("parts", "arrays"):
        manifests = record.get(field)
        for name, manifest in manifests.items() if isinstance(manifests, dict) else ():
            yield field[:-1], name
            files = manifest.get("files") if isinstance(manifest, dict) else None
            for rel in files if isinstance(files, dict) else ():
                yield f"{field[:-1]} file", f"{name}/{rel}"


def check_record(backend, key: str, record: dict) -> None:
    """Every path of node ``key``'s record stays inside its folder, by its text (links are
    refused where files are touched): else :class:`Uncontained` naming the field and value."""
    for field, rel in record_paths(record):
        contained(key, rel, field, backend, on_disk=False)
