"""Garbage collection: keep what some name points to now, drop everything else.

Live = every node of each spec file's latest run plan, plus, per name, the newest ``keep``
*complete* fingerprints and anything newer (``keep`` > 1 keeps more, so switching a parameter
back stays a cache hit; an interrupted newer attempt never pushes out the last good result).
Names are recorded as each node commits, so a failed or killed run keeps what it finished.
Inside a live node, index files and segments, parts and training checkpoints that its current record no
longer references are dropped too (a finished training node keeps only its final weights).
A damaged names file is read back from the node records (see ``Store.names``).
gc never follows a symbolic link (a link where a node or one of its folders belongs is removed
itself, never what it leads to) and never stops at an odd entry: it reports it and goes on.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

from .backend import DamagedFile
from .lock import node_lock_key
from .store import Store, node_key


@dataclass
class GCReport:
    removed: list[tuple[str, int]] = field(default_factory=list)  # (key, bytes)
    #: key -> what it belonged to, e.g. "demo.py:km2 (superseded result)"
    owners: dict[str, str] = field(default_factory=dict)
    #: (key, problem) of entries gc could not look into or remove (left as they are)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, key: str, size: int, what: str) -> None:
        self.removed.append((key, size))
        self.owners[key] = what

    @property
    def bytes(self) -> int:
        return sum(b for _, b in self.removed)


def live_keys(store: Store, keep: int = 1) -> set[str]:
    if keep < 1:
        raise ValueError(f"gc --keep must be at least 1 (got {keep}): the newest result of every "
                         "name is always kept")
    live = store.planned_keys()
    for spec in store.spec_names():
        for history in store.names(spec).values():
            complete = 0
            for entry in reversed(history):
                key = node_key(entry["kind"], entry["fingerprint"])
                live.add(key)
                complete += (store.record(key) or {}).get("status") == "complete"
                if complete >= keep:
                    break
    return live


def collect(store: Store, keep: int = 1, dry_run: bool = False) -> GCReport:
    """Find (and unless ``dry_run`` delete) garbage, under the writer lock so no run interleaves."""
    with nullcontext() if dry_run else store.lock():
        report = _garbage(store, keep)
        if not dry_run:
            for key, size in list(report.removed):
                try:
                    store.delete(key)
                    if key.count("/") == 1:  # a whole node: its lock file goes with it
                        store.backend.delete(node_lock_key(key))
                except (DamagedFile, OSError) as exc:  # left as it is; the rest still goes
                    report.removed.remove((key, size))
                    report.skipped.append((key, str(exc)))
    return report


def _garbage(store: Store, keep: int) -> GCReport:
    report = GCReport()
    live = live_keys(store, keep)
    for key in store.node_keys():
        try:
            if not _link(store, report, key, key):
                _node_garbage(store, report, key, key in live)
        except (DamagedFile, OSError) as exc:  # an odd entry: reported, the others collected
            report.skipped.append((key, str(exc)))
    return report


def _link(store: Store, report: GCReport, key: str, node: str) -> bool:
    """A symbolic link where the store keeps a node or its folders: marked for removal (the
    link itself; what it leads to is never looked into)."""
    target = store.backend.link_target(key)
    if target is not None:
        report.add(key, 0, f"{_owner(store, node)} (a symbolic link to {target}: the link "
                   "is removed, what it leads to is left alone)")
    return target is not None


def _node_garbage(store: Store, report: GCReport, key: str, live: bool) -> None:
    if not live:
        report.add(key, store.backend.size(key), f"{_owner(store, key)} (no name or plan "
                   "points to it any more)")
        return
    rec = store.record(key)
    if rec is None:
        return
    used_parts = {e[0] for e in store.index(key, rec).values() if e[0]}
    if key in store.damaged:  # unreadable index: keep every part until `verify --repair`
        return
    field = rec.get("index")
    segments = {s["file"] for s in field.get("segments", [])} if isinstance(field, dict) else set()
    for name in store.backend.listdir(key):  # whole JSON indexes of earlier versions
        if name.startswith("index-") and name != field:
            report.add(f"{key}/{name}", store.backend.size(f"{key}/{name}"),
                       f"{_owner(store, key)} (superseded index)")
    current_ckpt = (rec.get("checkpoint") or "").removeprefix("ckpt/")
    keeps = {"index": lambda name: f"index/{name}" in segments,
             "ckpt": lambda name: name == current_ckpt,
             "parts": lambda name: name == "zarr.json" or f"parts/{name}" in used_parts}
    whats = {"index": "superseded index segment", "ckpt": "old checkpoint",
             "parts": "unreferenced part"}
    for folder, kept in keeps.items():
        if _link(store, report, f"{key}/{folder}", key):
            continue
        for name in store.backend.listdir(f"{key}/{folder}"):
            k = f"{key}/{folder}/{name}"
            if not kept(name) and not _link(store, report, k, key):
                report.add(k, store.backend.size(k), f"{_owner(store, key)} ({whats[folder]})")


def _owner(store: Store, key: str) -> str:
    """``spec.py:name`` of the run that wrote a node, from its record (damaged: the key)."""
    try:
        rec = store.record(key) or {}
    except Exception:  # a torn record still gets collected; say what it was
        rec = {}
    if not isinstance(rec, dict) or not rec.get("name"):
        return key.removeprefix("nodes/")
    return f"{rec.get('spec_file', '?')}.py:{rec['name']}"
