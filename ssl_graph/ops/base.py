"""How nodes compute: one op per node kind, looked up by kind, reading inputs only via the store.

Per-utterance ops see batches of utterances and return one array (or a length) per utterance;
the runner owns parts, commits and progress, so every op gets incrementality and crash safety
for free. Aggregate ops compute one artifact and return the metrics to record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..store.ragged import RaggedReader
from ..store.store import Store

OPS: dict[str, type["Op"]] = {}


def register(kind: str) -> Callable[[type["Op"]], type["Op"]]:
    def deco(cls):
        OPS[kind] = cls
        return cls

    return deco


def get_op(kind: str) -> "Op":
    from . import load_all  # noqa: F401 - registers the built-in ops

    if kind not in OPS:
        raise KeyError(f"no op registered for node kind {kind!r}")
    return OPS[kind]()


@dataclass
class RunContext:
    store: Store
    states: dict[str, Any]  # fingerprint -> NodeState
    progress: Any = None  # rich Progress or None
    _readers: dict[str, RaggedReader] = field(default_factory=dict)
    _totals: dict = field(default_factory=dict)
    _done: dict = field(default_factory=dict)

    def state(self, node):
        return self.states[node.fingerprint]

    def reader(self, node) -> RaggedReader:
        key = self.state(node).key
        if key not in self._readers:
            self._readers[key] = RaggedReader(self.store, key)
        return self._readers[key]

    def forget(self, node) -> None:
        """Drop the cached reader of a node that was just rewritten (its index changed)."""
        self._readers.pop(self.state(node).key, None)

    def task(self, description: str, total: float | None):
        """A progress task id (None when progress is off); use with ``advance``."""
        if self.progress is None:
            return None
        task = self.progress.add_task(description, total=total)
        self._totals[task] = total
        return task

    def advance(self, task, n: float = 1, **kw) -> None:
        if task is not None:
            self._done[task] = self._done.get(task, 0) + n
            self.progress.update(task, advance=n, **kw)

    def finish(self, task) -> None:
        """Close a bar whose length was unknown or that ended early (k-means converged)."""
        if task is not None:
            total = self._totals.get(task) or self._done.get(task, 0)
            self.progress.update(task, total=total, completed=total)


class Op:
    per_utterance = False


class PerUttOp(Op):
    per_utterance = True
    #: utterances per compute call
    batch_utts = 32

    def setup(self, st, ctx: RunContext) -> None:
        pass

    def compute(self, utts: list[str], st, ctx: RunContext) -> list[np.ndarray | int]:
        raise NotImplementedError

    def finish(self, st, ctx: RunContext) -> dict:
        return {}


class AggregateOp(Op):
    def compute(self, st, ctx: RunContext) -> dict:
        """Write arrays under ``st.key`` and return record fields (metrics, ...)."""
        raise NotImplementedError
