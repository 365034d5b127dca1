"""A training node's log (rows of {step, loss, lr, ...}) and heartbeat, as the store keeps them.

The log is append-only: each checkpoint (and the end) adds one JSON-lines part
``log/<first step>-<last step>.jsonl`` holding the rows since the previous part, so a checkpoint
writes what is new, never the whole history (a whole log rewritten at every checkpoint of a
400k-step run adds up to hundreds of GB), and it works alike on every backend (an S3 object
cannot grow). Readers join the parts in step order; a part that starts at or before a step
already read replaces the rows from there on (a run resumed from an earlier checkpoint than a
killed run's last part). Logs written before hold one JSON list, ``log.json``, read first.

The heartbeat is one small file per rank, ``heartbeat/rank-<r>.json`` = {step, steps, updated},
rewritten every few seconds while a rank trains, so ``plan``/``status`` show the live step
rather than the last checkpoint's.
"""

from __future__ import annotations

import json
import time

from .backend import DamagedFile, location_of, read_json

LOG = "log"
LEGACY_LOG = "log.json"
HEARTBEAT = "heartbeat"
HEARTBEAT_SECONDS = 10.0


def append_log(backend, key: str, rows: list[dict]) -> None:
    """Add ``rows`` (consecutive, in step order) to node ``key``'s log as one part."""
    if rows:
        name = f"{key}/{LOG}/{rows[0]['step']:08d}-{rows[-1]['step']:08d}.jsonl"
        backend.write_bytes(name, "".join(json.dumps(r) + "\n" for r in rows).encode())


def read_log(backend, key: str) -> list[dict] | None:
    """Node ``key``'s logged rows in step order; None when it has no log."""
    rows = read_json(backend, f"{key}/{LEGACY_LOG}", list)
    parts = sorted(backend.listdir(f"{key}/{LOG}"))
    parts = [p for p in parts if p.endswith(".jsonl") and not p.startswith(".")]
    if rows is None and not parts:
        return None
    rows = list(rows or [])
    for part in parts:
        path = f"{key}/{LOG}/{part}"
        raw = backend.read_bytes(path)
        if raw is None:  # deleted since the listing (rank 0 restarting the log)
            continue
        try:
            new = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DamagedFile(location_of(backend, path), f"not JSON lines ({exc})") from None
        if new:
            while rows and rows[-1]["step"] >= new[0]["step"]:
                rows.pop()
            rows += new
    return rows


def restart_log(backend, key: str, start: int, owner: bool = True) -> list[dict]:
    """The rows a training resuming at ``start`` (0: from scratch) keeps. The ``owner`` (rank
    0) deletes the parts a killed run wrote beyond ``start``, or all of the log when the
    training starts over."""
    if not owner:
        return [r for r in read_log(backend, key) or [] if r["step"] <= start] if start else []
    if start == 0:
        backend.delete(f"{key}/{LEGACY_LOG}")
        backend.delete(f"{key}/{LOG}")
        return []
    for part in backend.listdir(f"{key}/{LOG}"):
        if part.endswith(".jsonl") and part[:1] != "." and int(part.split("-", 1)[0]) > start:
            backend.delete(f"{key}/{LOG}/{part}")
    return [r for r in read_log(backend, key) or [] if r["step"] <= start]


def beat(backend, key: str, rank: int, step: int, steps: int) -> None:
    """This rank of node ``key``'s training is alive at ``step`` of ``steps``."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S")  # as the node lock's "since" and records' "updated"
    backend.write_bytes(f"{key}/{HEARTBEAT}/rank-{rank}.json",
                        json.dumps({"step": step, "steps": steps, "updated": now}).encode())


def heartbeats(backend, key: str) -> list[dict]:
    """Every rank's last heartbeat ({step, steps, updated}); unreadable ones are skipped."""
    out = []
    for name in backend.listdir(f"{key}/{HEARTBEAT}"):
        if name.startswith(".") or not name.endswith(".json"):  # a write in progress
            continue
        try:
            beat_ = json.loads(backend.read_bytes(f"{key}/{HEARTBEAT}/{name}") or b"")
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(beat_, dict) and "step" in beat_:
            out.append(beat_)
    return out
