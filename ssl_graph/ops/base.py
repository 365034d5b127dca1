"""How nodes compute: one op per node kind, looked up by kind, reading inputs only via the store.

Per-utterance ops see batches of utterances and return one array (or a length) per utterance;
the runner owns parts, commits and progress, so every op gets incrementality and crash safety
for free, and no op can commit NaN/Inf (``check_finite``). Aggregate ops compute one artifact and
return the metrics to record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audio.io import AudioError
from ..store.ragged import RaggedReader
from ..store.store import Store

OPS: dict[str, type["Op"]] = {}


def register(kind: str) -> Callable[[type["Op"]], type["Op"]]:
    def deco(cls):
        OPS[kind] = cls
        return cls

    return deco


def get_op(kind: str) -> "Op":
    """The op of a node kind (the ``ssl_graph.ops`` package registered every built-in one)."""
    if kind not in OPS:
        raise KeyError(f"no op registered for node kind {kind!r}")
    return OPS[kind]()


@dataclass
class RunContext:
    store: Store
    states: dict[str, Any]  # fingerprint -> NodeState
    progress: Any = None  # rich Progress or None
    executor: Any = None  # exec.executors.Lazy, or None: per-utterance jobs run in-process
    _readers: dict[str, RaggedReader] = field(default_factory=dict)
    _totals: dict = field(default_factory=dict)
    _done: dict = field(default_factory=dict)

    def state(self, node):
        return self.states[node.fingerprint]

    @property
    def in_workers(self) -> bool:
        """Whether this run's jobs go to worker processes (``--executor pool|dask``)."""
        return self.executor is not None and self.executor.kind != "local"

    @property
    def parallel(self) -> int:
        """How many jobs run at once (starts the executor); 1 in-process."""
        return self.executor.get().parallel if self.in_workers else 1

    def map(self, fn: Callable, jobs: Iterable) -> Iterator:
        """``fn(job)`` for every job, results in job order: on the run's executor when jobs go
        to workers, else here, one after the other. The seam through which an aggregate op
        shards a pass over utterances (``fn`` module-level, jobs picklable and naming what
        they read, not carrying it); a worker that dies has only its unfinished task rerun (one
        job, or on Dask a chunk of short ones)."""
        if not self.in_workers:
            return (fn(job) for job in jobs)
        return self.executor.get().imap(fn, jobs)

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


    def write_array(self, st, name: str, value: np.ndarray) -> None:
        """Write an aggregate array under the node, refusing NaN/Inf (a NaN centroid would label
        frames silently wrong)."""
        value = np.asarray(value)
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            raise ValueError(
                f"{st.name}: {name} holds {int((~np.isfinite(value)).sum())} non-finite values "
                "(NaN/Inf); nothing was committed — check the node's inputs"
            )
        self.store.write_array(f"{st.key}/{name}", value)

    def audio_path(self, node, utt: str) -> str:
        """The file an utterance was decoded from, for messages ('?' when unknown)."""
        corpus = getattr(node, "corpus", None)
        st = self.states.get(corpus.fingerprint) if corpus is not None else None
        ut = st.manifest.utts.get(utt) if st is not None and st.manifest is not None else None
        return str(ut.path) if ut is not None else "?"


def content_version(record: dict, *fields: str) -> str:
    """Identity of a stored result's content (checksum manifests, timings), for worker-side
    caches that outlive a run (a long-lived Dask worker): a rewritten node never hits a stale
    entry, even under the same key."""
    blob = json.dumps([record.get(f) for f in fields], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_finite(st, utts: list[str], arrays: list, ctx: RunContext, what: str = "output",
                 hint: str = "nothing of it was committed") -> None:
    """Refuse a batch holding NaN/Inf before any of it is committed, naming node and utterance.

    Called by the runner on every per-utterance op's outputs (and by ops on the features they
    read), so a non-finite value can never be stored as a complete result.
    """
    for utt, arr in zip(utts, arrays):
        if isinstance(arr, np.ndarray) and arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            n = int((~np.isfinite(arr)).sum())
            raise ValueError(
                f"{st.name}: utterance {utt!r}: {what} has {n} non-finite (NaN/Inf) values; "
                f"{hint} — check its audio ({ctx.audio_path(st.node, utt)}) and the node's inputs"
            )


def refuse_short(st, ctx: RunContext, min_samples: int, why: str) -> None:
    """Policy for audio too short for a feature node: refuse, before the node computes anything.

    An utterance must give at least one frame of every feature node that reads it (a 25 ms
    window for MFCC, the encoder's receptive field for LayerFeatures). Shorter ones are named
    with their length; the user removes them from the corpus. Lengths come from the Corpus
    node's index, which is committed before any node reading it runs.
    """
    corpus_st = ctx.state(st.node.corpus)
    index = ctx.store.index(corpus_st.key, corpus_st.record)
    lengths = {u: index[u][2] - index[u][1] for u in st.todo if u in index}
    short = [(u, n) for u, n in lengths.items() if n < min_samples]
    if not short:
        return
    sr = st.node.corpus.sample_rate
    shown = ", ".join(f"{u!r} ({ctx.audio_path(st.node, u)}, {n} samples)" for u, n in short[:3])
    more = f" and {len(short) - 3} more" if len(short) > 3 else ""
    raise AudioError(
        f"{st.name}: {len(short)} utterance(s) shorter than {min_samples} samples "
        f"({min_samples / sr:.4g} s, {why}): {shown}{more}; remove them from corpus "
        f"{corpus_st.name}"
    )


class Tallied(list):
    """A batch's outputs plus counts about how they were made (``tally``: name -> int), which
    the op sums in ``absorb`` wherever the batch ran (a worker's part descriptor carries them)."""

    def __init__(self, outs, **tally: int):
        super().__init__(outs)
        self.tally = tally


class Op:
    per_utterance = False

    def scope(self, st, ctx: RunContext):
        """A context the whole computation of one node runs in (setup to finish): model ops fix
        their thread pools here, so their numerics never depend on what ran before."""
        return contextlib.nullcontext()


class PerUttOp(Op):
    per_utterance = True
    #: utterances per compute call (per job); fixed per op, so results never depend on the executor
    batch_utts = 32
    #: a module-level function computing one ``job`` in any process and returning what
    #: ``compute`` would; None: the op runs in the coordinator only (heavy state, e.g. a model)
    work: Callable | None = None

    def setup(self, st, ctx: RunContext) -> None:
        pass

    def setup_workers(self, st, ctx: RunContext) -> None:
        """``setup`` when the jobs run in worker processes: the coordinator still refuses bad
        input before any work, but need not build what only ``compute`` uses (a model)."""
        self.setup(st, ctx)

    def job(self, utts: list[str], st, ctx: RunContext) -> Any:
        """Everything ``work`` needs for these utterances, picklable (paths, keys, small arrays)."""
        raise NotImplementedError

    def compute(self, utts: list[str], st, ctx: RunContext) -> list[np.ndarray | int]:
        raise NotImplementedError

    def absorb(self, tally: dict) -> None:
        """Counts of one batch or task (``Tallied``), as the runner receives them."""

    def finish(self, st, ctx: RunContext) -> dict:
        return {}


class AggregateOp(Op):
    def compute(self, st, ctx: RunContext) -> dict:
        """Write arrays under ``st.key`` and return record fields (metrics, ...)."""
        raise NotImplementedError
