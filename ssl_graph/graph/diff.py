"""Field-level differences between a node's spec and what the store last held under its name."""

from __future__ import annotations

from typing import Any

from ..store.store import Store, node_key

_ABSENT = "(absent)"


def _is_ref(v: Any) -> bool:
    return isinstance(v, dict) and set(v) == {"node", "fingerprint"}


def _fmt(v: Any) -> str:
    if isinstance(v, dict) and "kind" in v:
        return f"{v['kind']}(…)"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def spec_diff(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every leaf that differs; node references compare by fingerprint."""
    if old == new:
        return []
    if _is_ref(old) and _is_ref(new):
        return [(path, old, new)]
    if isinstance(old, dict) and isinstance(new, dict):
        if old.get("kind") != new.get("kind") and "kind" in old and "kind" in new:
            return [(path or "kind", old, new)]
        out = []
        for k in sorted(set(old) | set(new), key=lambda k: (k != "kind", k)):
            sub = f"{path}.{k}" if path else k
            out += spec_diff(old.get(k, _ABSENT), new.get(k, _ABSENT), sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += spec_diff(a, b, f"{path}[{i}]")
        return out
    return [(path, old, new)]


def describe_changes(old_spec: dict, new_spec: dict, old_version: int | None, new_version: int,
                     name_of_fp) -> list[str]:
    """Human lines: ``k: 100 → 500``, ``upstream changed: mfcc``, ``op version changed: 1 → 2``."""
    lines = []
    if old_version is not None and old_version != new_version:
        lines.append(f"op version changed: {old_version} → {new_version}")
    for path, a, b in spec_diff(old_spec, new_spec):
        if _is_ref(b):
            lines.append(f"upstream changed: {name_of_fp(b['fingerprint'])} (field {path})")
        else:
            lines.append(f"{path}: {_fmt(a)} → {_fmt(b)}")
    return lines


def previous_record(name: str, node, store: Store, spec_name: str) -> dict | None:
    """The newest stored record under this name whose fingerprint differs from the node's."""
    for entry in reversed(store.names(spec_name).get(name, [])):
        if entry["fingerprint"] != node.fingerprint:
            return store.record(node_key(entry["kind"], entry["fingerprint"]))
    return None


#: node kinds that are annotations: a different one (another phone set, another corpus's
#: alignments, edited transcripts) makes two results measure different things
ANNOTATION_KINDS = frozenset({"Alignments", "WordAlignments", "Transcripts", "PhoneMap"})


def same_roles(old_spec: dict, new_spec: dict, store: Store, depth: int = 6) -> bool:
    """Whether two specs of one kind read inputs of the same roles: every upstream that differs
    is of the same kind, its own inputs likewise (down to ``depth`` levels: an MFCC k-means is
    no earlier version of a layer-feature one), and no annotation differs."""
    if old_spec.get("kind") != new_spec.get("kind"):
        return False
    for _, a, b in spec_diff(old_spec, new_spec):
        if not (_is_ref(a) or _is_ref(b)):
            continue
        if not (_is_ref(a) and _is_ref(b)) or a["node"] != b["node"]:
            return False
        if a["node"] in ANNOTATION_KINDS:
            return False
        if depth:
            ra = store.record(node_key(a["node"], a["fingerprint"]))
            rb = store.record(node_key(b["node"], b["fingerprint"]))
            if ra and rb and "spec" in ra and "spec" in rb and \
                    not same_roles(ra["spec"], rb["spec"], store, depth - 1):
                return False
    return True


def comparable_metrics(prev: dict, node, store: Store) -> dict:
    """``prev``'s metrics that may stand beside ``node``'s new ones: none when the two read
    inputs of other roles; without those the node kind measures on something a changed field
    moves (``metrics_measured_on``: k-means inertia is on each fit's own sample)."""
    new_spec = node.semantic()
    if "spec" not in prev or not same_roles(prev["spec"], new_spec, store):
        return {}
    metrics = dict(prev.get("metrics", {}))
    for metric, fields in type(node).metrics_measured_on.items():
        if any(prev["spec"].get(f) != new_spec.get(f) for f in fields):
            metrics.pop(metric, None)
    return metrics


def nearest_relative(node, store: Store, exclude: set[str] = frozenset(),
                     name: str | None = None) -> dict | None:
    """The stored complete record of the same kind closest to ``node``'s spec, from any spec
    file: fewest differing upstream nodes first (same inputs where possible), then fewest
    differing fields. ``exclude``: fingerprints not to consider (the nodes of the pipeline
    being planned: a sibling such as ``quality`` is no earlier version of ``quality2``).
    Among equally close records, one stored under the same ``name`` wins (a copied spec's
    ``score`` is compared with the original's ``score``, not with ``scratch_score``).
    None when the store holds no other node of that kind."""
    prefix = f"nodes/{node.kind.lower()}-"
    new_spec, best, best_score = node.semantic(), None, None
    for key in store.node_keys():
        if not key.startswith(prefix) or key.endswith(node.fingerprint):
            continue
        if key.removeprefix(prefix) in exclude:
            continue
        try:
            rec = store.record(key)
        except Exception:  # a damaged record is not a relative; verify reports it
            continue
        if not isinstance(rec, dict) or rec.get("status") != "complete" or "spec" not in rec:
            continue
        diffs = spec_diff(rec["spec"], new_spec)
        score = (sum(_is_ref(b) for _, _, b in diffs), len(diffs), rec.get("name") != name,
                 rec.get("updated", ""))
        if best_score is None or score[:3] < best_score[:3] or (
                score[:3] == best_score[:3] and score[3] > best_score[3]):
            best, best_score = rec, score
    return best


def relative_label(rec: dict) -> str:
    return f"{rec.get('spec_file', '?')}.py:{rec.get('name', rec.get('fingerprint', '?')[:8])}"


def why_new(name: str, node, store: Store, pipeline) -> list[str]:
    history = store.names(pipeline.spec_name).get(name, [])
    if not any(h["fingerprint"] != node.fingerprint for h in history):
        rel = nearest_relative(node, store, exclude=set(pipeline.nodes), name=name)
        if rel is None:
            return ["new"]
        lines = describe_changes(rel["spec"], node.semantic(), rel.get("op_version"),
                                 node.op_version, lambda fp: _name_for(fp, pipeline))
        return [f"new (vs {relative_label(rel)}: {'; '.join(lines) or 'same spec'})"]
    prev = previous_record(name, node, store, pipeline.spec_name)
    if prev is None:
        return ["spec changed (the previous result is no longer in the store)"]
    lines = describe_changes(
        prev["spec"], node.semantic(), prev.get("op_version"), node.op_version,
        lambda fp: _name_for(fp, pipeline),
    )
    return lines or ["spec changed"]


def _name_for(fp: str, pipeline) -> str:
    return pipeline.spec.names.get(fp, fp[:8])
