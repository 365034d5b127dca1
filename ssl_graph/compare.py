"""Two variants side by side: which nodes they share, how the others differ, and their numbers.

A variant is a spec file (or one node of it). Nodes are matched by name; a shared fingerprint
means one cache serves both. Numbers come from the store records, so comparing is free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .graph.diff import describe_changes

#: the numbers a researcher reads first, in this order
HEADLINE = ("pnmi", "phone_purity", "cluster_purity", "cer", "per", "wer", "accuracy", "loss",
            "inertia")


@dataclass
class Row:
    name: str
    kind: str
    status: str  # "shared" | "differs" | "only A" | "only B"
    changes: list[str] = field(default_factory=list)
    a: dict = field(default_factory=dict)  # headline metrics of A's node (empty: not computed)
    b: dict = field(default_factory=dict)


def headline(record: dict | None) -> dict:
    metrics = (record or {}).get("metrics", {}) if (record or {}).get("status") == "complete" else {}
    out = {k: metrics[k] for k in HEADLINE if isinstance(metrics.get(k), (int, float))}
    if "final_loss" in (record or {}):
        out.setdefault("loss", record["final_loss"])
    return out


def compare(project_a, project_b, names_a: list[str] | None = None,
            names_b: list[str] | None = None) -> list[Row]:
    """Rows for the named nodes (default: every user-named node of both spec files)."""
    pa, pb = project_a.pipeline, project_b.pipeline
    if names_a is None:
        names_a = [n for n in pa.spec.nodes if "." not in n]
        names_b = [n for n in pb.spec.nodes if "." not in n]
        pairs = [(n, n if n in pb.spec.nodes else None) for n in names_a]
        pairs += [(None, n) for n in names_b if n not in pa.spec.nodes]
    else:
        pairs = list(zip(names_a, names_b))
    rows = []
    store = project_a.store
    names = {**pa.spec.names, **pb.spec.names}

    def rec(n):
        return store.record(f"nodes/{n.kind.lower()}-{n.fingerprint}") if n else None

    for na, nb in pairs:
        node_a = pa.spec[na] if na else None
        node_b = pb.spec[nb] if nb else None
        if node_a is None or node_b is None:
            node = node_a or node_b
            rows.append(Row(na or nb, node.kind, "only A" if node_b is None else "only B",
                            a=headline(rec(node_a)), b=headline(rec(node_b))))
            continue
        label = na if na == nb else f"{na} / {nb}"
        if node_a.fingerprint == node_b.fingerprint:
            rows.append(Row(label, node_a.kind, "shared", a=headline(rec(node_a)),
                            b=headline(rec(node_b))))
            continue
        changes = describe_changes(node_a.semantic(), node_b.semantic(), node_a.op_version,
                                   node_b.op_version, lambda fp: names.get(fp, fp[:8]))
        rows.append(Row(label, node_a.kind, "differs", changes or ["spec changed"],
                        headline(rec(node_a)), headline(rec(node_b))))
    return rows


def format_metrics(a: dict, b: dict) -> tuple[str, str]:
    keys = [k for k in HEADLINE if k in a or k in b]
    fa = " ".join(f"{k}={a[k]:.3f}" for k in keys if k in a)
    fb = " ".join(f"{k}={b[k]:.3f}" + (f" ({b[k] - a[k]:+.3f})" if k in a else "")
                  for k in keys if k in b)
    return fa, fb
