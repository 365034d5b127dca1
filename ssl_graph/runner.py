"""Run a plan: compute stale nodes in topological order, commit each atomically, record names.

Several runs may share a store: each holds the store lock shared and each node's lock while it
computes that node. A node whose record changed since the plan (another run computed or advanced
it meanwhile) is planned again once its lock is held, so a result another run committed is
reused, never recomputed, and a dead run's partial work is resumed. An op that fails leaves every earlier commit intact (per-utterance nodes
commit what they finished, so the next run resumes there). The plan's node keys are saved
before anything runs and each node's name is recorded as soon as it commits, so ``gc`` after a
failed or killed run keeps everything that run finished.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import heapq
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

from .graph.pipeline import Pipeline
from .graph.plan import NodeState, make_plan
from .store.store import Store, StoreError


@dataclass
class NodeRun:
    name: str
    kind: str
    status: str  # "fresh" | "computed"
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)
    utterances: int | None = None
    metrics: dict = field(default_factory=dict)
    #: metrics of the previous result under this name (or of the nearest stored relative)
    previous: dict = field(default_factory=dict)
    #: seconds after the run began that this node started (computed nodes)
    started: float | None = None
    #: what the op wants the user to know about its result (e.g. a budget it could not fill)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    nodes: list[NodeRun]
    seconds: float

    @property
    def failed(self) -> list[NodeRun]:
        return [n for n in self.nodes if n.status == "failed"]

    @property
    def computed(self) -> list[str]:
        return [n.name for n in self.nodes if n.status == "computed"]

    def __repr__(self) -> str:
        return (f"<RunReport computed {len(self.computed)} of {len(self.nodes)} nodes in "
                f"{self.seconds:.2f}s: {', '.join(self.computed) or 'nothing'}>")

    def _repr_html_(self) -> str:
        """A table in Jupyter: node, kind, status, seconds, headline metrics."""
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(n.name)}</td><td>{n.kind}</td><td>{n.status}</td>"
            f"<td>{n.seconds:.2f}</td><td>{escape(', '.join(f'{k}={v:.3f}' for k, v in n.metrics.items() if isinstance(v, float)))}</td></tr>"
            for n in self.nodes)
        return ("<table><tr><th>node</th><th>kind</th><th>status</th><th>s</th><th>metrics</th>"
                f"</tr>{rows}</table><p>{escape(repr(self))}</p>")


def base_record(st: NodeState, states: dict[str, NodeState], pipeline: Pipeline) -> dict:
    node = st.node
    inputs = [states[n.fingerprint] for n in pipeline.inputs(node)]
    return {
        "kind": node.kind,
        "fingerprint": node.fingerprint,
        "op_version": node.op_version,
        "spec": node.semantic(),
        "name": st.name,
        "spec_file": pipeline.spec_name,
        "inputs": {s.node.fingerprint: s.data_version for s in inputs},
        "input_names": {s.node.fingerprint: s.name for s in inputs},
        **({"input_digest": st.input_digest} if st.input_digest else {}),
    }


def _run_per_utterance(st: NodeState, op, ctx, record: dict, t0: float) -> int:
    from .ops.base import check_finite
    from .store.ragged import RaggedWriter

    old = st.record or {}
    index = ctx.store.index(st.key, old) if old else {}
    keep = {**old, **record, "status": "partial"}
    writer = RaggedWriter(ctx.store, st.key, keep, index)
    writer.drop(st.removed + st.todo)
    with op.scope(st, ctx):
        where = _placement(st, op, ctx)
        (op.setup if where is None else op.setup_workers)(st, ctx)
        task = ctx.task(f"{st.name}", total=len(st.todo))
        batches = [st.todo[i:i + op.batch_utts] for i in range(0, len(st.todo), op.batch_utts)]
        executor, own = _executor_for(where, ctx)
        if executor is None:
            results = (op.compute(batch, st, ctx) for batch in batches)
        else:  # jobs made lazily, in order: the executor keeps a few in flight per worker;
            # each worker writes its job's part and returns a descriptor (exec/part_writer.py)
            from .exec.jobs import Counted
            from .exec.part_writer import group_batches, prepare, worker_writes

            prepare(ctx.store, st.key)
            groups = group_batches(batches, op.batch_utts, executor.parallel)
            batches = [[u for b in g for u in b] for g in groups]
            results = executor.imap(worker_writes(op.work, ctx.store, st.key),
                                    Counted(((utts, [op.job(b, st, ctx) for b in g])
                                             for utts, g in zip(batches, groups)), len(groups)))
        try:
            for batch, outs in zip(batches, results):
                if isinstance(outs, dict):  # a part a worker wrote: checked, then indexed
                    writer.adopt(batch, outs, [st.expected[u] for u in batch])
                    op.absorb(outs.get("tally") or {})
                    ctx.advance(task, len(batch))
                    continue
                check_finite(st, batch, outs, ctx)  # input-reliability: never commit NaN/Inf
                op.absorb(getattr(outs, "tally", None) or {})
                for utt, out in zip(batch, outs):
                    if isinstance(out, int):
                        writer.add(utt, None, st.expected[utt], length=out)
                    else:
                        writer.add(utt, out, st.expected[utt])
                ctx.advance(task, len(batch))
        except BaseException:
            if writer.pending:  # keep finished utterances; the next run resumes after them
                writer.commit(final=False)
            raise
        finally:
            if own:
                executor.close()
        updates = op.finish(st, ctx)
    writer.commit(final=True, data_version=st.data_version,
                  seconds=round(time.perf_counter() - t0, 3), **updates)
    return len(st.todo)


def _placement(st: NodeState, op, ctx) -> str | int | None:
    """Where a node's jobs run: None in-process, "run" on the run's executor, or N for a pool
    of its own. An op without ``work`` stays in-process; ``MFCC(workers=N)`` (deprecated) means
    a pool of N for it. Decided before ``setup``, so an op set up for workers loads no model."""
    if op.work is None:
        return None
    if ctx.in_workers:
        return "run"
    workers = getattr(st.node, "workers", 1) if st.node.kind == "MFCC" else 1
    return workers if workers > 1 else None


def _executor_for(where: str | int | None, ctx):
    """(executor, owned) for a placement; (None, False) to compute in-process. Started after
    ``setup``, so input the coordinator refuses starts no cluster."""
    if where is None:
        return None, False
    if where == "run":
        return ctx.executor.get(), False
    from .exec.executors import ProcessPool

    return ProcessPool(where), True


class RunFailed(RuntimeError):
    """``keep_going`` runs: some nodes failed; ``report`` holds what ran, failed and was skipped."""

    def __init__(self, report: RunReport):
        self.report = report
        first = report.failed[0]
        more = f" (+{len(report.failed) - 1} more)" if len(report.failed) > 1 else ""
        skipped = sum(n.status == "skipped" for n in report.nodes)
        super().__init__(f"{len(report.failed)} node(s) failed{more}: {first.name}: "
                         f"{first.reasons[0]}; {skipped} node(s) needing them were skipped, "
                         "everything else finished")


def schedule(pipeline: Pipeline, states: dict[str, NodeState], todo: set[int]) -> list[NodeState]:
    """The stale nodes in a run order: topological, and among ready nodes the cheapest
    (``Node.cost``) first, ties in plan order, so a sub-second score never waits hours
    behind an independent training branch."""
    order = list(states.values())
    pos = {st.node.fingerprint: i for i, st in enumerate(order)}
    run = [st for st in order if id(st) in todo]
    fps = {st.node.fingerprint for st in run}
    waiting = {st.node.fingerprint: {n.fingerprint for n in pipeline.inputs(st.node)} & fps
               for st in run}
    by_fp = {st.node.fingerprint: st for st in run}
    ready = [(st.node.cost, pos[fp], fp) for fp, st in by_fp.items() if not waiting[fp]]
    heapq.heapify(ready)
    out = []
    while ready:
        _, _, fp = heapq.heappop(ready)
        out.append(by_fp[fp])
        for other, ups in waiting.items():
            if fp in ups:
                ups.discard(fp)
                if not ups:
                    heapq.heappush(ready, (by_fp[other].node.cost, pos[other], other))
    return out


def run_plan(pipeline: Pipeline, store: Store, targets: list[str] | None = None,
             progress: bool | str = True, console=None, keep_going: bool = False,
             executor=None) -> RunReport:
    """``executor``: an ``exec.executors.Lazy`` (where per-utterance jobs run), default local.
    ``progress``: True: bars in a terminal, plain lines elsewhere; ``"lines"``: plain lines
    (``--no-progress``); False: nothing (``--quiet``)."""
    t_start = time.perf_counter()
    with store.lock(shared=True):
        states = make_plan(pipeline, store)
        by_fp = {st.node.fingerprint: st for st in states.values()}
        planned = {fp: copy.deepcopy(st.record) for fp, st in by_fp.items()}
        wanted = None
        targets = targets or pipeline.spec.default_targets
        if targets:
            wanted = pipeline.ancestors([pipeline.node(t) for t in targets])
        todo = {id(st) for st in states.values()
                if st.stale and (wanted is None or st.node.fingerprint in wanted)}
        with store.meta_lock():
            store.record_plan(pipeline.spec_name, [st.key for st in states.values()])
            _note_records(store, states.values())
        _name(store, pipeline, [st for st in states.values()
                                if id(st) not in todo and st.record is not None
                                and (wanted is None or st.node.fingerprint in wanted)])
        echo = _echo(console)
        bar = _progress(console, progress) if (progress and todo) else nullcontext(None)
        with bar as prog:
            ctx = None
            if todo:
                from .ops.base import RunContext  # ops (numpy) load only when there is work

                ctx = RunContext(store=store, states=by_fp, progress=prog, executor=executor)
                if executor is not None:  # a pool forks now, before any OpenMP use here
                    executor.prestart()
            done: dict[str, NodeRun] = {}
            for st in states.values():
                if id(st) not in todo:
                    done[st.name] = NodeRun(st.name, st.node.kind, st.status, reasons=st.notes,
                                            metrics=(st.record or {}).get("metrics", {}))
            broken: dict[str, str] = {}  # fingerprint -> name of the failed node it needs
            finished: set[str] = set()
            for st in schedule(pipeline, states, todo):
                st = by_fp[st.node.fingerprint]  # (replaced if another run changed the plan)
                needs = [broken[n.fingerprint] for n in pipeline.inputs(st.node)
                         if n.fingerprint in broken]
                if needs:
                    broken[st.node.fingerprint] = needs[0]
                    done[st.name] = NodeRun(st.name, st.node.kind, "skipped",
                                            reasons=[f"needs failed node {needs[0]}"])
                    continue
                started = time.perf_counter() - t_start
                try:
                    with store.node_lock(st.key, st.name, echo) as waiter:
                        st = _current(st, pipeline, store, by_fp, planned, finished)
                        if st.stale:
                            done[st.name] = _run_node(st, pipeline, ctx)
                            done[st.name].started = started
                        else:  # another run committed it while we waited: reuse it
                            by = "the run we waited for" if waiter.waited else "another run"
                            done[st.name] = NodeRun(
                                st.name, st.node.kind, "fresh", reasons=[f"computed by {by}"],
                                metrics=(st.record or {}).get("metrics", {}))
                    finished.add(st.node.fingerprint)
                except BaseException as exc:
                    if store.record(st.key) is not None:  # failed part-way: gc keeps its commits
                        with contextlib.suppress(OSError):  # (never masking the node's error)
                            _name(store, pipeline, [st])
                    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise StoreError(
                            f"store {store.url} is full ({exc.strerror}) while writing node "
                            f"{st.name!r}; free space and rerun (finished work is kept)") from None
                    if not keep_going or not isinstance(exc, Exception):
                        raise
                    broken[st.node.fingerprint] = st.name
                    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    done[st.name] = NodeRun(st.name, st.node.kind, "failed", reasons=[msg])
                    continue
                _name(store, pipeline, [st])
            report = [done[st.name] for st in states.values() if st.name in done]
    result = RunReport(nodes=report, seconds=time.perf_counter() - t_start)
    if result.failed:
        raise RunFailed(result)
    return result


def _note_records(store: Store, states) -> None:
    """A complete record found fresh the slow way (written before input digests existed) gets
    what the plan learnt (``NodeState.record_notes``), once: later no-op plans decide faster."""
    for st in states:
        rec = st.record
        if not st.stale and st.record_notes and rec and rec.get("status") == "complete" \
                and any(rec.get(k) != v for k, v in st.record_notes.items()):
            store.forget(st.key)  # another run may have rewritten it since we planned
            if store.record(st.key) == rec:
                store.write_record(st.key, {**rec, **st.record_notes})


def _name(store: Store, pipeline: Pipeline, states: list[NodeState]) -> None:
    if states:
        with store.meta_lock():  # another run may be adding to the same names file
            store.record_names(pipeline.spec_name,
                               {st.name: (st.node.kind, st.node.fingerprint) for st in states})


def _current(st: NodeState, pipeline: Pipeline, store: Store, by_fp: dict, planned: dict,
             finished: set[str]) -> NodeState:
    """The node's state now that its lock is held: as planned if its record is unchanged;
    otherwise (another run committed or advanced it) the plan is made again, and the states
    of every node this run has not handled yet are replaced by the new ones."""
    fp = st.node.fingerprint
    store.forget(st.key)
    if store.record(st.key) == planned[fp]:
        return st
    for other in by_fp.values():
        store.forget(other.key)
    fresh = {s.node.fingerprint: s for s in make_plan(pipeline, store).values()}
    for other_fp, new in fresh.items():
        if other_fp not in finished:
            by_fp[other_fp] = new
            planned[other_fp] = copy.deepcopy(new.record)
    return by_fp[fp]


def _echo(console):
    """Where the runner says it waits for another run: above the progress bars, or stderr."""
    if console is not None:
        return lambda msg: console.print(msg, markup=False, highlight=False)
    return lambda msg: sys.stderr.write(msg + "\n")


def _run_node(st: NodeState, pipeline: Pipeline, ctx) -> NodeRun:
    from .ops.base import get_op

    op = get_op(st.node.kind)
    t0 = time.perf_counter()
    # the result this run replaces under the same fingerprint (an annotation edit, a repair):
    # the honest "before" of its numbers, since the names history holds only other fingerprints
    replaced = st.record if (st.record or {}).get("status") == "complete" else None
    record = base_record(st, ctx.states, pipeline)
    n_utts = None
    if op.per_utterance:
        n_utts = _run_per_utterance(st, op, ctx, record, t0)
    else:
        old = st.record or {}
        # an interrupted run of the same inputs resumes from its checkpoint; anything else restarts
        resumable = old.get("status") == "partial" and old.get("input_version") == st.input_version
        st.record = {**(old if resumable else {}), **record, "status": "partial",
                     "input_version": st.input_version}
        ctx.store.write_record(st.key, st.record)
        updates = op.compute(st, ctx)
        ctx.store.write_record(st.key, {
            **st.record, **updates, "arrays": ctx.store.arrays_of(st.key, st.record),
            "status": "complete", "input_version": st.input_version,
            "data_version": st.data_version,
            "seconds": round(time.perf_counter() - t0, 3),
        })
    seconds = time.perf_counter() - t0
    ctx.forget(st.node)
    st.record = ctx.store.record(st.key)  # the record just committed (cached by write_record)
    metrics = st.record.get("metrics", {})
    return NodeRun(st.name, st.node.kind, "computed", seconds, st.reasons, n_utts, metrics,
                   previous_metrics(st, pipeline, ctx.store, replaced) if metrics else {},
                   warnings=list(st.record.get("warnings") or []))


def previous_metrics(st: NodeState, pipeline: Pipeline, store: Store,
                     replaced: dict | None = None) -> dict:
    """What the numbers were before, so a rerun can print ``0.199 → 0.239``: the result this
    run replaced under the same fingerprint, else the last other result under this name, else
    a stored relative under the same name (a copied spec's original) — each only when it is
    comparable (``graph/diff.py``: same kinds of inputs, same annotations), and only the
    metrics the node kind lets compare across their two specs. Otherwise no arrow."""
    from .graph.diff import comparable_metrics, nearest_relative, previous_record

    prev = replaced
    if prev is None:
        prev = previous_record(st.name, st.node, store, pipeline.spec_name)
    if prev is None:
        prev = nearest_relative(st.node, store, exclude=set(pipeline.nodes), name=st.name)
        if (prev or {}).get("name") != st.name:  # another name's numbers are no "before"
            return {}
    if (prev or {}).get("status") != "complete":
        return {}
    return comparable_metrics(prev, st.node, store)


def _progress(console, how: bool | str):
    from .progress import PlainProgress, make_progress

    if how == "lines":
        return PlainProgress(stream=console.file if console is not None else None)
    return make_progress(console)
