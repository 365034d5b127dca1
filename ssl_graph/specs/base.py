"""Spec bases: frozen pydantic value objects with content fingerprints.

Two families share one base. *Components* (encoders, quantizers, mask policies, ...) are plain
values that get inlined into whoever holds them. *Nodes* produce an artifact in the store; a node
held by another node's field is replaced by its fingerprint, so a fingerprint changes exactly when
the node's semantics, its op version, or anything upstream changes.

Fields marked with :func:`runtime` (device, workers, inference batch size, progress) only change
*how* a node is computed, never *what*, so they are left out of the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from functools import cached_property
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

_RUNTIME_KEY = "ssl_graph_runtime"
_LATER_KEY = "ssl_graph_later"
FINGERPRINT_CHARS = 16


def runtime(default: Any = None, description: str = "", **kwargs: Any) -> Any:
    """A field that changes how a node runs but not its result; excluded from fingerprints."""
    extra = {_RUNTIME_KEY: True}
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


def later(default: Any = None, description: str = "", **kwargs: Any) -> Any:
    """A semantic field added after results were cached under fingerprints that did not hold
    it. Its ``default`` must compute what was computed before the field existed: at that value
    the field is left out of the fingerprint (so those caches stay valid, and an upgrade does
    not retrain every model); any other value is part of it like any field."""
    extra = {_LATER_KEY: True}
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


def threads_setting() -> Any:
    """The runtime ``threads`` field of every node that runs torch: one number for torch, the
    OpenMP/BLAS pools and Numba while it computes (see ``train/threads.py``)."""
    return runtime(None, ge=1, description="torch intra-op, OpenMP/BLAS and Numba threads; "
                   "None = 1 where a process has <= 4 cores (more threads only contend there), "
                   "else min(its cores, 8)")


def _marked(cls: type[BaseModel], name: str, key: str) -> bool:
    extra = cls.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(key))


def is_runtime_field(cls: type[BaseModel], name: str) -> bool:
    return _marked(cls, name, _RUNTIME_KEY)


def is_later_field(cls: type[BaseModel], name: str) -> bool:
    return _marked(cls, name, _LATER_KEY)


def canonical_json(obj: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, floats via repr, so equal values hash equally."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update((p if isinstance(p, str) else canonical_json(p)).encode())
        h.update(b"\x00")
    return h.hexdigest()[:FINGERPRINT_CHARS]


class Spec(BaseModel):
    """Base of every spec: immutable, rejects unknown fields, derives variants with ``with_``."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=False,
                              defer_build=True)

    @property
    def kind(self) -> str:
        return type(self).__name__

    def with_(self, **changes: Any) -> "Spec":
        """A validated copy with some fields changed (``model_copy`` would skip validation)."""
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise ValueError(
                f"{self.kind}.with_: unknown field(s) {sorted(unknown)}; "
                f"valid fields: {sorted(type(self).model_fields)}"
            )
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update(changes)
        return type(self).model_validate(values)

    def semantic(self) -> dict[str, Any]:
        """What defines the result: kind + non-runtime fields, components inlined, nodes by fp."""
        out: dict[str, Any] = {"kind": self.kind}
        cls = type(self)
        for name, field in cls.model_fields.items():
            if is_runtime_field(cls, name):
                continue
            value = _semantic_value(getattr(self, name))
            if is_later_field(cls, name) and value == _semantic_value(field.default):
                continue  # a later field at its default: the fingerprint it had before
            out[name] = value
        return out

    def iter_nodes(self) -> Iterator[tuple[str, "Node"]]:
        """Direct upstream nodes held anywhere in this spec's fields (through components too)."""
        for name in type(self).model_fields:
            yield from _walk_nodes(name, getattr(self, name))


class Component(Spec):
    """A value with no artifact of its own (encoder, quantizer, loss, mask policy, ...)."""


class Node(Spec):
    """Produces an artifact. Subclasses set ``op_version`` when their computation changes."""

    op_version: ClassVar[int] = 1
    #: metric -> fields it is measured on: across two specs that differ in one of them, the
    #: metric is not compared ("previous → new" leaves it out)
    metrics_measured_on: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: per-utterance nodes store ragged arrays and are computed incrementally per utterance
    per_utterance: ClassVar[bool] = False
    #: scheduling hint, not a promise: among nodes whose inputs are ready, cheaper ranks run
    #: first, so diagnostics (0: scores, annotations) never wait behind training (4)
    cost: ClassVar[int] = 1

    @cached_property
    def fingerprint(self) -> str:
        return digest(self.fingerprint_payload())

    def fingerprint_payload(self) -> dict[str, Any]:
        return {"op_version": self.op_version, **self.semantic()}

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other.fingerprint == self.fingerprint

    def __repr__(self) -> str:
        return f"{self.kind}<{self.fingerprint[:8]}>"

    def extra_inputs(self) -> list[tuple[str, "Node"]]:
        """Nodes read without being held in a field (e.g. Labels reads its k-means' features)."""
        return []

    def check(self, resolve_name) -> None:  # noqa: B027 - optional hook
        """Plan-time validation beyond field types (rates, shapes). Raise SpecError to refuse."""


def _semantic_value(value: Any) -> Any:
    if isinstance(value, Node):
        return {"node": value.kind, "fingerprint": value.fingerprint}
    if isinstance(value, Spec):
        return value.semantic()
    if isinstance(value, (list, tuple)):
        return [_semantic_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _semantic_value(v) for k, v in value.items()}
    if isinstance(value, float) and value.is_integer():
        return value  # keep 1.0 distinct from 1 only through the field's type, not repr noise
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def _walk_nodes(path: str, value: Any) -> Iterator[tuple[str, Node]]:
    if isinstance(value, Node):
        yield path, value
    elif isinstance(value, Spec):
        for name in type(value).model_fields:
            yield from _walk_nodes(f"{path}.{name}", getattr(value, name))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk_nodes(f"{path}[{i}]", v)


class SpecError(ValueError):
    """A spec problem the user must fix; the message names the node/field and what to do."""
