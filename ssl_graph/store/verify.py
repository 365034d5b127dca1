"""``ssl-graph verify``: read everything the store promises and say, per node, what is damaged.

Plan-time checks are deliberately cheap (part file sizes); this is the thorough pass: every
record and index parses and agrees with itself, every part's files match their checksums and
decode to the recorded shape, index offsets tile their parts, other arrays decode, and training
checkpoints have intact safetensors headers. ``repair`` never deletes data that still reads
correctly: it drops damaged utterances from the index (the next run recomputes just those),
marks damaged aggregate nodes incomplete, and rebuilds damaged names files from the records.
A repaired record says so (``repaired``: what was damaged), so that until the next run commits
the node, ``verify`` calls it clean (it no longer vouches for the damaged data, which only waits
to be replaced) and ``plan`` says ``repaired: will recompute …``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .backend import DamagedFile, read_json, write_json
from .chunks import ChunkReader
from .integrity import DamagedData
from .paths import Uncontained, contained
from .store import Store
from .train_log import LOG, read_log


@dataclass
class NodeCheck:
    key: str
    name: str = "?"
    kind: str = "?"
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    #: utterances whose stored frames are unusable (dropped by repair)
    bad_utts: set[str] = field(default_factory=set)
    #: the record or index cannot be trusted at all; aggregate data is unusable
    bad_record: bool = False
    bad_index: bool = False
    bad_data: bool = False
    bad_checkpoint: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def _examples(utts, n: int = 3) -> str:
    utts = sorted(utts)
    return ", ".join(utts[:n]) + (", …" if len(utts) > n else "")


def _check_index(c: NodeCheck, rec: dict, index: dict) -> None:
    manifests = rec.get("parts") or {}
    by_part: dict[str, list[tuple[int, int, str]]] = {}
    for utt, e in index.items():
        part, s, end, version = e
        if not utt or any(ch in utt for ch in "\t\n\r"):
            c.problems.append(f"index holds an invalid utterance id {utt!r}")
            c.bad_utts.add(utt)
        if not (isinstance(s, int) and isinstance(end, int) and 0 <= s <= end
                and isinstance(version, str) and (part is None or isinstance(part, str))):
            c.problems.append(f"index entry of {utt!r} is malformed: {e}")
            c.bad_utts.add(utt)
        elif part is not None:
            by_part.setdefault(part, []).append((s, end, utt))
    for part, spans in by_part.items():
        rows = (manifests.get(part) or {}).get("shape", [None])[0]
        spans.sort()
        prev_end = 0
        for s, end, utt in spans:
            if s < prev_end:
                c.problems.append(f"{part}: utterance {utt!r} overlaps the one before it")
                c.bad_utts.add(utt)
            if rows is not None and end > rows:
                c.problems.append(f"{part}: utterance {utt!r} ends at row {end}, past {rows}")
                c.bad_utts.add(utt)
            prev_end = max(prev_end, end)
    if rec.get("n_utts") is not None and rec["n_utts"] != len(index):
        c.problems.append(f"record says {rec['n_utts']} utterances, the index holds {len(index)}")
        c.bad_index = True


def _check_part(store: Store, c: NodeCheck, part: str, manifest: dict | None, utts: list[str]):
    key = f"{c.key}/{part}"
    if manifest is not None:  # each file read once, checked, decoded; one chunk in memory
        problem = ChunkReader(store, c.key, {part: manifest}, str).check_part(part)
    else:  # a part written before checksums were kept: it can only be decoded
        problem = None
        try:
            store.read_array(key)[...]
        except Exception as exc:  # noqa: BLE001 - every decode failure is a finding
            problem = f"{key} cannot be read ({type(exc).__name__}: {exc})"
    if problem:
        c.problems.append(f"{problem} ({len(utts)} utterances: {_examples(utts)})")
        c.bad_utts.update(utts)


def _safetensors_problem(raw: bytes | None, where: str) -> str | None:
    """Header parses and its tensors fit the file (no torch needed)."""
    if raw is None:
        return f"{where} is missing"
    try:
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                  default=0)
    except (ValueError, KeyError, TypeError, IndexError):
        return f"{where} has no valid safetensors header"
    if len(raw) - 8 - n != end:
        return f"{where} is truncated or padded ({len(raw)} bytes, header implies {8 + n + end})"
    return None


def _weights_problem(store: Store, key: str, rel: str, field: str) -> str | None:
    """What is wrong with the safetensors file a record's ``field`` names (a path leading out
    of the node's folder is damage, never read)."""
    try:
        where = contained(key, rel, field, store.backend)
        return _safetensors_problem(store.backend.read_bytes(where), where)
    except Uncontained as exc:
        return str(exc)


def _check_aggregate(store: Store, c: NodeCheck, rec: dict) -> None:
    skip = {"parts", "ckpt", "index", "zarr.json"}
    for name in store.backend.listdir(c.key):
        sub = f"{c.key}/{name}"
        if name in skip or name.startswith("index-"):
            continue
        if name == LOG:  # a training's log parts
            try:
                read_log(store.backend, c.key)
            except DamagedFile as exc:
                c.problems.append(str(exc))
                c.bad_data = True
            continue
        if name.endswith(".json"):
            try:
                read_json(store.backend, sub)
            except DamagedFile as exc:
                c.problems.append(str(exc))
                c.bad_data = True
        elif store.backend.exists(f"{sub}/zarr.json"):
            try:
                store.read_array(sub)[...]
            except DamagedData as exc:
                c.problems.append(str(exc).split("; run `")[0])
                c.bad_data = True
            except Exception as exc:  # noqa: BLE001
                c.problems.append(f"{sub} cannot be read ({type(exc).__name__}: {exc})")
                c.bad_data = True
    if rec.get("weights"):
        problem = _weights_problem(store, c.key, rec["weights"], "weights")
        if problem:
            c.problems.append(problem)
            c.bad_data = True
    if rec.get("checkpoint"):
        for f in ("model.safetensors", "state.safetensors"):
            problem = _weights_problem(store, c.key, f"{rec['checkpoint']}/{f}", "checkpoint")
            if problem:
                c.problems.append(problem)
                c.bad_checkpoint = True


def names_by_key(store: Store) -> dict[str, str]:
    """key -> the name some spec gives it, for nodes whose own record cannot say."""
    from .store import node_key

    out = {}
    for spec in store.spec_names():
        for name, history in store.names(spec).items():
            for h in history:
                out.setdefault(node_key(h["kind"], h["fingerprint"]), name)
    return out


def verify_node(store: Store, key: str, name: str = "?") -> NodeCheck:
    c = NodeCheck(key, name=name)
    rec = store.record(key)
    if rec is None and key not in store.damaged:
        # the record is every write's commit point: without one, the directory holds only what
        # an interrupted first write left (a part, an index, a temp file); nothing is promised
        c.summary = "nothing committed (an interrupted first write; the next run computes it)"
        return c
    if rec is None:
        c.problems.append(store.damaged[key])
        c.bad_record = True
        return c
    c.name, c.kind = rec.get("name", name), rec.get("kind", "?")
    repaired = rec.get("repaired") if rec.get("status") != "complete" else None
    index = store.index(key, rec)
    if key in store.damaged:
        c.problems.append(store.damaged[key])
        c.bad_index = True
        return c
    if rec.get("index"):
        _check_index(c, rec, index)
        manifests = rec.get("parts") or {}
        utts_of: dict[str, list[str]] = {}
        for u, e in index.items():
            if isinstance(e[0], str):
                utts_of.setdefault(e[0], []).append(u)
        for part, utts in sorted(utts_of.items()):
            _check_part(store, c, part, manifests.get(part), utts)
        unchecked = [p for p in utts_of if p not in manifests]
        c.summary = f"{len(index)} utterances in {len(utts_of)} parts" + (
            f" ({len(unchecked)} written without checksums: decoded only)" if unchecked else "")
    if repaired:  # its damaged data is no longer referenced as a result: the next run redoes it
        c.summary = "; ".join(filter(None, [c.summary, f"repaired ({repaired}): the next run "
                                            "recomputes what was damaged"]))
        return c
    _check_aggregate(store, c, rec)
    if not c.summary:
        c.summary = f"status {rec.get('status', '?')}"
    return c


def check_names(store: Store) -> list[str]:
    """Problems of the names files (each is rebuilt from the records by ``repair_names``)."""
    out = []
    for spec in store.spec_names():
        store.names(spec)
        if f"names/{spec}.json" in store.damaged:
            out.append(store.damaged[f"names/{spec}.json"].split(";")[0])
    return out


def repair(store: Store, c: NodeCheck) -> str:
    """Make the next run recompute exactly what is damaged; returns what was done."""
    from .ragged import RaggedWriter

    if c.bad_record:
        if store.backend.link_target(c.key) is not None:  # never deletes through the link
            store.delete(c.key)
            return ("removed the node's folder, a symbolic link out of the store (what it leads "
                    "to is left alone): the next run recomputes the node")
        store.backend.delete(f"{c.key}/zarr.json")
        store.forget(c.key)
        return "removed the unreadable record: the next run recomputes the node"
    rec = store.record(c.key)
    what = c.problems[0].replace(f"node {c.name!r} ({c.key}): ", "")  # (short: from the node)
    what = re.sub(r" \(\d+ utterances: [^()]*\)$", "", what.replace(f"{store.url}/", ""))
    what = what.replace(f"{c.key}/", "")
    if c.bad_index:
        store.write_record(c.key, {**rec, "status": "partial", "index": None, "parts": {},
                                   "repaired": what})
        return "dropped the unreadable index: the next run recomputes every utterance"
    done = []
    if c.bad_utts:
        writer = RaggedWriter(store, c.key, rec, store.index(c.key, rec))
        writer.drop(sorted(c.bad_utts))
        writer.commit(final=False, repaired=what)
        done.append(f"dropped {len(c.bad_utts)} damaged utterances ({_examples(c.bad_utts)}): "
                    "the next run recomputes just those")
        rec = store.record(c.key)
    if c.bad_data or c.bad_checkpoint:
        # the record stops vouching for the damaged arrays: planning sees a repaired node
        update = {"status": "partial", "repaired": what, "arrays": {}}
        if c.bad_checkpoint:
            update.update(checkpoint=None, step=0)
        store.write_record(c.key, {**rec, **update})
        done.append("marked incomplete: the next run recomputes it")
    return "; ".join(done)


def repair_names(store: Store, spec: str) -> None:
    write_json(store.backend, f"names/{spec}.json", store.rebuild_names(spec))
    store.damaged.pop(f"names/{spec}.json", None)
