"""``--set NODE.FIELD=VALUE``: change how a node runs without editing the spec.

Only runtime fields (device, max_batch_seconds, workers, ...) may be set: they are outside the
fingerprint, so the node keeps its identity, its stored results and its checkpoints. A semantic
field would change the result, so it is refused with its name. ``SSL_GRAPH_SET`` holds the same
assignments, separated by whitespace or ``;``; ``--set`` wins over it.
"""

from __future__ import annotations

import json
import os
import re

from ..specs.base import SpecError, is_runtime_field

ENV_VAR = "SSL_GRAPH_SET"


def parse_assignments(items: list[str]) -> list[tuple[str, str, object]]:
    out = []
    for item in items:
        m = re.fullmatch(r"\s*([^.=\s]+)\.([A-Za-z_]\w*)\s*=(.*)", item)
        if m is None:
            raise SpecError(f"--set {item!r}: expected NODE.FIELD=VALUE, e.g. it1.device=cuda:1")
        raw = m.group(3).strip()
        try:
            value = json.loads(raw)  # numbers, true/false, null, quoted strings
        except ValueError:
            value = raw
        out.append((m.group(1), m.group(2), value))
    return out


def env_assignments() -> list[str]:
    return [s for s in re.split(r"[;\s]+", os.environ.get(ENV_VAR, "")) if s]


def apply_overrides(pipeline, items: list[str]) -> None:
    """Replace the named nodes in ``pipeline`` by copies with the runtime fields set."""
    changes: dict[str, dict] = {}
    for name, fld, value in parse_assignments(items):
        node = pipeline.node(name)  # raises naming the known nodes
        cls = type(node)
        if fld not in cls.model_fields:
            raise SpecError(f"--set {name}.{fld}: {node.kind} has no field {fld!r}")
        if not is_runtime_field(cls, fld):
            raise SpecError(
                f"--set {name}.{fld}: {fld!r} is a semantic field of {node.kind} (it would change "
                "the result and the fingerprint); edit the spec instead")
        changes.setdefault(name, {})[fld] = value
    for name, fields in changes.items():
        old = pipeline.node(name)
        try:
            new = old.with_(**fields)
        except ValueError as exc:
            msg = str(exc).strip().splitlines()
            raise SpecError(f"--set {name}: {' '.join(msg[:3])}") from None
        if new.fingerprint != old.fingerprint:  # a runtime field this node's result depends on
            raise SpecError(
                f"--set {name}: {', '.join(fields)} changes what this {old.kind} computes (e.g. "
                "max_batch_seconds with cross-sample negatives); edit the spec instead")
        spec = pipeline.spec
        for alias, node in list(spec.nodes.items()):
            if node.fingerprint == old.fingerprint:
                spec.nodes[alias] = new
        pipeline.nodes[old.fingerprint] = new
