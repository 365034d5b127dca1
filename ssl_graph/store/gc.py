"""Garbage collection: keep what some name points to now, drop everything else.

Live = the newest fingerprint of every name in every names index (``keep`` > 1 keeps that many
recent fingerprints per name, so switching a parameter back stays a cache hit). Inside a live
node, index files, parts and training checkpoints that its current record no longer references
are dropped too (a finished training node keeps only its final weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .store import Store, node_key


@dataclass
class GCReport:
    removed: list[tuple[str, int]] = field(default_factory=list)  # (key, bytes)

    @property
    def bytes(self) -> int:
        return sum(b for _, b in self.removed)


def live_keys(store: Store, keep: int = 1) -> set[str]:
    live = set()
    for spec in store.spec_names():
        for history in store.names(spec).values():
            for entry in history[-keep:]:
                live.add(node_key(entry["kind"], entry["fingerprint"]))
    return live


def collect(store: Store, keep: int = 1, dry_run: bool = False) -> GCReport:
    report = GCReport()
    live = live_keys(store, keep)
    for key in store.node_keys():
        if key not in live:
            report.removed.append((key, store.backend.size(key)))
            continue
        rec = store.record(key)
        if rec is None:
            continue
        used_parts = {e[0] for e in store.index(key, rec).values() if e[0]}
        for name in store.backend.listdir(key):
            if name.startswith("index-") and name != rec.get("index"):
                report.removed.append((f"{key}/{name}", store.backend.size(f"{key}/{name}")))
        current_ckpt = (rec.get("checkpoint") or "").removeprefix("ckpt/")
        for name in store.backend.listdir(f"{key}/ckpt"):  # superseded training checkpoints
            if name != current_ckpt:
                k = f"{key}/ckpt/{name}"
                report.removed.append((k, store.backend.size(k)))
        for name in store.backend.listdir(f"{key}/parts"):
            if name != "zarr.json" and f"parts/{name}" not in used_parts:
                k = f"{key}/parts/{name}"
                report.removed.append((k, store.backend.size(k)))
    if not dry_run:
        with store.lock():
            for key, _ in report.removed:
                store.delete(key)
    return report
