"""The Zarr v3 store: one group per node fingerprint, a names index, atomic commits.

Layout under the root::

    nodes/<kind>-<fingerprint>/zarr.json      group; attributes["ssl_graph"] = the node record
    nodes/<kind>-<fingerprint>/index/N.seg    index segment of commit N (ragged nodes, see ``index``)
    nodes/<kind>-<fingerprint>/index-N.json   whole index of commit N (stores of earlier versions)
    nodes/<kind>-<fingerprint>/parts/N        zarr arrays of frames appended by commit N
    nodes/<kind>-<fingerprint>/<name>         other zarr arrays (centroids, counts, weights)
    names/<spec>.json                         name -> fingerprint history
    plans/<spec>.json                         node keys of the spec's latest run plan (for gc)
    locks/<kind>-<fingerprint>.lock           the node's lock (flock, or an S3 lease object)
    locks/runs/                               the runs writing the store now (see ``lock``)
    ssl_graph.json                            marker: {"format": FORMAT_VERSION, "created": ...}

A record becomes visible as complete only when its ``zarr.json`` is replaced, which is the last
write of a commit; data written before a crash is unreferenced and gets cleaned by ``gc``.
Records carry the checksums of the parts they reference (see ``integrity``).

A store document that cannot be parsed (a torn or hand-edited record, index or names file) does
not stop the store: it is remembered in ``damaged`` (key -> one-line problem naming the file),
the node reads as absent, and planning recomputes it.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .arrays import StoreArrays
from .backend import DamagedFile, LocalBackend, open_backend, read_json, write_json
from .errors import StoreError  # noqa: F401 - (re-exported: callers import it from here)
from .paths import Uncontained, check_record, contained

DEFAULT_LOCATION = "store"
ENV_VAR = "SSL_GRAPH_STORE"
#: 2: columnar index segments and CRC-32C manifests (format-1 stores read, and are marked 2 at
#: this version's first write into them, so an older ssl_graph refuses them instead of taking
#: the new checksums for damage)
FORMAT_VERSION = 2
MARKER = "ssl_graph.json"
#: what a store root may hold; stores from before the marker hold only these and are adopted
STORE_ENTRIES = {MARKER, ".lock", ".lock.clear", "locks", "nodes", "names", "plans", "zarr.json"}
#: placeholders a checkout keeps in an empty store folder (the repo's own ``store/.gitignore``)
PLACEHOLDERS = {".gitignore", ".gitkeep", ".keep", ".DS_Store"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def default_location() -> str:
    return os.environ.get(ENV_VAR) or DEFAULT_LOCATION


def node_key(kind: str, fingerprint: str) -> str:
    """The node's folder; kinds and fingerprints read from names files are checked like every
    stored path (:func:`paths.contained`)."""
    return contained("nodes", f"{kind.lower()}-{fingerprint}", "node")


class Store(StoreArrays):
    def __init__(self, location: str | None = None, storage_options: dict | None = None,
                 single_writer: bool | None = None):
        """``single_writer``: accept running on an object store whose server ignores
        conditional writes, as its only writer (``conditional.py``; default
        ``$SSL_GRAPH_SINGLE_WRITER``)."""

        self.location = location or default_location()
        if single_writer is None:  # (locks and the conditional-write probe: imported on use,
            from .conditional import single_writer_from_env  # a plan takes none of them)

            single_writer = single_writer_from_env()
        self.single_writer = single_writer
        self.backend = open_backend(self.location, storage_options)
        self._records: dict[str, dict | None] = {}
        #: key -> (segments it was read from, index): a run reads each index once, not per caller
        self._indexes: dict[str, tuple[str, dict]] = {}
        #: key -> problem, for documents found unreadable (records, indexes, names files)
        self.damaged: dict[str, str] = {}
        #: checksum manifests of the arrays written through this object (committed by the runner)
        self.written: dict[str, dict] = {}
        #: arrays without a manifest whose links were checked before zarr read them (``paths``)
        self._trees_checked: set[str] = set()
        self._marker = self._check_format()

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def marker(self) -> dict | None:
        """The store marker as read (None: a new store, marked at its first locked write)."""
        return self._marker

    @marker.setter
    def marker(self, value: dict) -> None:
        self._marker = value

    @property
    def local_root(self) -> Path | None:
        return self.backend.root if isinstance(self.backend, LocalBackend) else None

    # ---- format marker ------------------------------------------------------------------
    def _newer(self, what: str, fmt) -> StoreError:
        return StoreError(f"{what} was written by a newer ssl_graph (format {fmt}; this version "
                          f"reads format {FORMAT_VERSION}); upgrade ssl_graph to use it")

    def _check_format(self) -> dict | None:
        """Refuse a foreign non-empty directory and a store of a newer format, before any write."""
        try:
            marker = read_json(self.backend, MARKER, dict)
        except DamagedFile as exc:
            raise StoreError(f"{exc}; the store marker is damaged: restore it or rewrite it as "
                             f'{{"format": {FORMAT_VERSION}}}') from None
        if marker is not None:
            fmt = marker.get("format")
            if not isinstance(fmt, int):
                raise StoreError(f"{self.url}/{MARKER}: no integer 'format' in the store marker")
            if fmt > FORMAT_VERSION:
                raise self._newer(f"store {self.url}", fmt)
            return marker
        foreign = [n for n in self.backend.listdir("") if n not in STORE_ENTRIES
                   and n not in PLACEHOLDERS
                   and not n.startswith(".lock.") and not n.endswith(".partial")]
        if foreign:
            shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
            raise StoreError(f"{self.url} is not an ssl_graph store (it holds {shown} and no "
                             f"{MARKER}); choose an empty or new directory for --store")
        return None

    def note_in_marker(self, field: str, value) -> None:
        """Keep ``field`` in the store marker (writing the marker if the store has none yet)."""
        marker = dict(self._marker or {"format": FORMAT_VERSION, "created": _now()})
        marker[field] = value
        write_json(self.backend, MARKER, marker)
        self._marker = marker

    def _write_marker(self) -> None:
        if self._marker is None:
            self._marker = {"format": FORMAT_VERSION, "created": _now()}
            write_json(self.backend, MARKER, self._marker)
        elif self._marker.get("format", FORMAT_VERSION) < FORMAT_VERSION:
            self._marker = {**self._marker, "format": FORMAT_VERSION, "upgraded": _now()}
            write_json(self.backend, MARKER, self._marker)

    @contextmanager
    def lock(self, shared: bool = False):
        """The store lock: ``shared`` for runs (many at once, each node under ``node_lock``),
        exclusive for gc / repair. A new store gets its format marker on the first locked write.
        An object store is first probed for conditional writes (``conditional.py``)."""

        from .conditional import lock_mode
        from .lock import store_lock

        with store_lock(self.backend, lock_mode(self, shared)):
            self._write_marker()
            yield

    def node_lock(self, key: str, name: str, echo=None):
        """Hold node ``key`` while computing it; waits (via ``echo``) for a live run that has it."""
        from .lock import node_lock

        return node_lock(self.backend, key, name, echo)

    def meta_lock(self):
        """A short section for read-merge-write of documents every run updates (names, plans)."""
        from .lock import meta_lock

        return meta_lock(self.backend)

    # ---- node records -------------------------------------------------------------------
    def record(self, key: str) -> dict | None:
        """The node's record; None if absent or unreadable (then ``damaged[key]`` says why)."""
        if key not in self._records:
            rec = None
            try:
                meta = read_json(self.backend, f"{key}/zarr.json", dict)
                if meta is not None and (meta.get("attributes") or meta.get("node_type") != "group"):
                    # (an attribute-less group is zarr's parent of a first part: no commit yet)
                    rec = (meta.get("attributes") or {}).get("ssl_graph")
                    if not isinstance(rec, dict):
                        raise DamagedFile(f"{self.url}/{key}/zarr.json", "holds no ssl_graph record")
                    fmt = rec.get("format", 1)
                    if not isinstance(fmt, int) or fmt > FORMAT_VERSION:
                        raise self._newer(f"{self.url}/{key}/zarr.json", fmt)
                    check_record(self.backend, key, rec)
            except DamagedFile as exc:
                self.damaged[key] = f"{exc}; the node will be recomputed"
                rec = None
            self._records[key] = rec
        return self._records[key]

    def write_record(self, key: str, record: dict) -> None:
        """Atomically replace the node's group metadata: the commit point of every write."""
        record = {**record, "updated": _now(), "format": FORMAT_VERSION}
        if record.get("status") == "complete":  # recomputed: what a repair noted is history
            record.pop("repaired", None)
        meta = {"zarr_format": 3, "node_type": "group", "attributes": {"ssl_graph": record}}
        write_json(self.backend, f"{key}/zarr.json", meta)
        self._records[key] = record
        self.damaged.pop(key, None)

    def index(self, key: str, record: dict | None = None) -> dict[str, list]:
        """utt -> [part, start, end, version] of the record's current commit ({} if unreadable).

        ``record["index"]`` is a list of checksummed segments (``store/index.py``), or, in
        stores of earlier versions, the name of one JSON file holding the whole index."""
        record = record if record is not None else self.record(key)
        field = (record or {}).get("index")
        if not field:
            return {}
        try:
            if isinstance(field, str):
                return self._json_index(key, field)
            return self._segment_index(key, field)
        except DamagedFile as exc:
            self.damaged[key] = f"{exc}; its utterances will be recomputed"
            return {}

    def _json_index(self, key: str, name: str) -> dict[str, list]:
        index = read_json(self.backend, f"{key}/{name}", dict) or {}
        bad = next((u for u, e in index.items() if not (isinstance(e, list) and len(e) == 4)), None)
        if bad is not None:
            raise DamagedFile(f"{self.url}/{key}/{name}", f"malformed entry for utterance {bad!r}")
        self._check_parts(key, index)
        return index

    def _check_parts(self, key: str, index: dict[str, list]) -> None:
        """The part names an index gives its utterances stay inside the node's folder."""
        for part in {e[0] for e in index.values() if isinstance(e[0], str)}:
            contained(key, part, "index part", self.backend, on_disk=False)

    def _segment_index(self, key: str, field) -> dict[str, list]:
        from . import index as columnar
        from .integrity import read_checked

        segments = field.get("segments") if isinstance(field, dict) else None
        if not isinstance(segments, list) or not all(
                isinstance(s, dict) and isinstance(s.get("file"), str) for s in segments):
            raise DamagedFile(f"{self.url}/{key}/zarr.json", "the record's index field is malformed")
        memo = json.dumps(segments, sort_keys=True)
        cached = self._indexes.get(key)
        if cached is not None and cached[0] == memo:
            return dict(cached[1])  # callers may add and drop entries; the cache stays as read
        index: dict[str, list] = {}
        for seg in segments:
            data, problem = read_checked(self.backend, key, seg["file"],
                                         [seg.get("size"), seg.get("digest")])
            where = f"{self.url}/{key}/{seg['file']}"
            if problem:  # missing or damaged: never an index silently short of its utterances
                raise DamagedFile(where, problem.removeprefix(f"{where} "))
            try:
                entries, dropped = columnar.decode(data)
            except columnar.BadSegment as exc:
                raise DamagedFile(where, str(exc)) from None
            columnar.apply(index, entries, dropped)
        self._check_parts(key, index)
        index = {u: index[u] for u in sorted(index)}  # utterance order, as JSON indexes read
        self._indexes[key] = (memo, index)
        return dict(index)

    def write_index_segment(self, key: str, commit: int, entries: dict[str, list],
                            dropped) -> dict:
        """Write one commit's index segment; returns its entry for ``record["index"]``."""
        from . import index as columnar
        from .integrity import digest

        name = columnar.segment_name(commit)
        data = columnar.encode(entries, dropped)
        self.backend.write_bytes(f"{key}/{name}", data)
        return {"file": name, "size": len(data), "digest": digest(data), "n": len(entries),
                "dropped": len(dropped)}

    def document(self, key: str, name: str, expect: type = dict):
        """A node's side document (``fit_utts.json``...); unreadable -> None and the node damaged."""
        try:
            return read_json(self.backend, f"{key}/{name}", expect)
        except DamagedFile as exc:
            self.damaged[key] = f"{exc}; the node will be recomputed"
            return None

    def damaged_utterances(self, key: str, record: dict | None, index: dict[str, list],
                           memo=None) -> list[str]:
        """Utterances whose part files are missing, resized or modified after their commit and
        unlike their checksum (``integrity.plan_problems``: cheap enough to plan)."""
        from .integrity import plan_problems

        manifests = (record or {}).get("parts") or {}
        since = self.committed_ns(key)
        bad = set()
        for part in {e[0] for e in index.values() if e[0]}:
            if part in manifests and plan_problems(self.backend, f"{key}/{part}", manifests[part],
                                                   since, memo):
                bad.add(part)
        return [u for u, e in index.items() if e[0] in bad]

    def committed_ns(self, key: str) -> int | None:
        """When the node's last commit was written (its record's mtime, ns); None if unknown."""
        return self.backend.mtime_ns(f"{key}/zarr.json")

    def node_keys(self) -> list[str]:
        return [f"nodes/{n}" for n in self.backend.listdir("nodes")
                if not n.startswith(".") and n != "zarr.json"]

    # ---- names index --------------------------------------------------------------------
    def names(self, spec: str) -> dict[str, list[dict]]:
        """name -> history; an unreadable names file reads as the history its records imply."""
        key = f"names/{spec}.json"
        try:
            names = read_json(self.backend, key, dict) or {}
            for name, history in names.items():
                if not (isinstance(history, list) and all(
                        isinstance(h, dict) and isinstance(h.get("fingerprint"), str)
                        and isinstance(h.get("kind"), str) for h in history)):
                    raise DamagedFile(f"{self.url}/{key}", f"malformed history for name {name!r}")
                try:
                    for h in history:
                        node_key(h["kind"], h["fingerprint"])
                except Uncontained as exc:
                    raise DamagedFile(f"{self.url}/{key}", f"history of name {name!r}: "
                                      f"{exc.problem}") from None
        except DamagedFile as exc:
            self.damaged[key] = f"{exc}; rebuilt from the node records"
            return self.rebuild_names(spec)
        return names

    def rebuild_names(self, spec: str) -> dict[str, list[dict]]:
        """Name histories recovered from the records (each names its spec file and node name)."""
        found = []
        for key in self.node_keys():
            rec = self.record(key)
            if rec and rec.get("spec_file") == spec and rec.get("name") and rec.get("fingerprint"):
                found.append((rec.get("updated", ""), rec))
        names: dict[str, list[dict]] = {}
        for updated, rec in sorted(found, key=lambda x: x[0]):
            names.setdefault(rec["name"], []).append(
                {"fingerprint": rec["fingerprint"], "kind": rec["kind"], "time": updated})
        return names

    def spec_names(self) -> list[str]:
        return [n.removesuffix(".json") for n in self.backend.listdir("names") if n.endswith(".json")]

    def record_names(self, spec: str, entries: dict[str, tuple[str, str]]) -> None:
        """Append ``name -> (kind, fingerprint)`` to each name's history when it changed."""
        names = self.names(spec)
        changed = f"names/{spec}.json" in self.damaged  # rewrite a damaged file with the rebuild
        for name, (kind, fp) in entries.items():
            history = names.setdefault(name, [])
            if not history or history[-1]["fingerprint"] != fp:
                history.append({"fingerprint": fp, "kind": kind, "time": _now()})
                changed = True
        if changed:
            write_json(self.backend, f"names/{spec}.json", names)
            self.damaged.pop(f"names/{spec}.json", None)

    # ---- latest plans (what gc must keep even before any name points there) -------------
    def record_plan(self, spec: str, keys: list[str]) -> None:
        key = f"plans/{spec}.json"
        try:
            if (read_json(self.backend, key, dict) or {}).get("keys") == sorted(keys):
                return  # a no-op run rewrites nothing
        except DamagedFile:
            pass
        write_json(self.backend, key, {"time": _now(), "keys": sorted(keys)})

    def planned_keys(self) -> set[str]:
        return set().union(*(self.plan_keys(spec) for spec in self.plan_specs()))

    def plan_specs(self) -> list[str]:
        return [n.removesuffix(".json") for n in self.backend.listdir("plans") if n.endswith(".json")]

    def plan_keys(self, spec: str) -> set[str]:
        """The node keys of a spec's latest plan; an unreadable plans file, or a key leading out
        of ``nodes/``, is skipped and noted in ``damaged`` (a plan only keeps nodes from gc)."""
        key = f"plans/{spec}.json"
        try:
            plan = read_json(self.backend, key, dict) or {}
        except DamagedFile as exc:
            self.damaged[key] = str(exc)
            return set()
        keys = set()
        for k in plan.get("keys", []):
            try:
                keys.add(contained("nodes", str(k).removeprefix("nodes/"), "planned node"))
            except Uncontained as exc:
                self.damaged[key] = f"{self.url}/{key}: {exc.problem}"
        return keys

    def delete(self, key: str) -> None:
        self.backend.delete(key)
        self.forget(key)

    def forget(self, key: str) -> None:
        """Drop what this object remembers of a node (after its files changed underneath)."""
        self._records.pop(key, None)
        self._indexes.pop(key, None)
        self.damaged.pop(key, None)
