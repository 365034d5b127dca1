"""Run a plan: compute stale nodes in topological order, commit each atomically, record names.

The plan is made under the store lock, so what it decided cannot be changed by another writer
before the ops run. An op that fails leaves every earlier commit intact (per-utterance nodes
commit what they finished, so the next run resumes there).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

from .graph.pipeline import Pipeline
from .graph.plan import NodeState, make_plan
from .store.store import Store


@dataclass
class NodeRun:
    name: str
    kind: str
    status: str  # "fresh" | "computed"
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)
    utterances: int | None = None
    metrics: dict = field(default_factory=dict)


@dataclass
class RunReport:
    nodes: list[NodeRun]
    seconds: float

    @property
    def computed(self) -> list[str]:
        return [n.name for n in self.nodes if n.status == "computed"]


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
    }


def _run_per_utterance(st: NodeState, op, ctx, record: dict, t0: float) -> int:
    from .ops.base import check_finite
    from .store.ragged import RaggedWriter

    old = st.record or {}
    index = ctx.store.index(st.key, old) if old else {}
    keep = {**old, **record, "status": "partial"}
    writer = RaggedWriter(ctx.store, st.key, keep, index)
    writer.drop(st.removed + st.todo)
    op.setup(st, ctx)
    task = ctx.task(f"{st.name}", total=len(st.todo))
    try:
        for i in range(0, len(st.todo), op.batch_utts):
            batch = st.todo[i:i + op.batch_utts]
            outs = op.compute(batch, st, ctx)
            check_finite(st, batch, outs, ctx)  # input-reliability: never commit NaN/Inf
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
    updates = op.finish(st, ctx)
    writer.commit(final=True, data_version=st.data_version,
                  seconds=round(time.perf_counter() - t0, 3), **updates)
    return len(st.todo)


def run_plan(pipeline: Pipeline, store: Store, targets: list[str] | None = None,
             progress: bool = True, console=None) -> RunReport:
    t_start = time.perf_counter()
    with store.lock():
        states = make_plan(pipeline, store)
        by_fp = {st.node.fingerprint: st for st in states.values()}
        wanted = None
        targets = targets or pipeline.spec.default_targets
        if targets:
            wanted = pipeline.ancestors([pipeline.node(t) for t in targets])
        todo = {id(st) for st in states.values()
                if st.stale and (wanted is None or st.node.fingerprint in wanted)}
        report: list[NodeRun] = []
        bar = _progress(console) if (progress and todo) else nullcontext(None)
        with bar as prog:
            ctx = None
            if todo:
                from .ops.base import RunContext  # ops (numpy) load only when there is work

                ctx = RunContext(store=store, states=by_fp, progress=prog)
            for st in states.values():
                if id(st) not in todo:
                    report.append(NodeRun(st.name, st.node.kind, st.status, reasons=st.notes,
                                          metrics=(st.record or {}).get("metrics", {})))
                    continue
                report.append(_run_node(st, pipeline, ctx))
        store.record_names(
            pipeline.spec_name,
            {st.name: (st.node.kind, st.node.fingerprint) for st in states.values()
             if wanted is None or st.node.fingerprint in wanted},
        )
    return RunReport(nodes=report, seconds=time.perf_counter() - t_start)


def _run_node(st: NodeState, pipeline: Pipeline, ctx) -> NodeRun:
    from .ops.base import get_op

    op = get_op(st.node.kind)
    t0 = time.perf_counter()
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
            **st.record, **updates, "status": "complete", "input_version": st.input_version,
            "data_version": st.data_version,
            "seconds": round(time.perf_counter() - t0, 3),
        })
    seconds = time.perf_counter() - t0
    ctx.forget(st.node)
    st.record = ctx.store.record(st.key)  # the record just committed (cached by write_record)
    return NodeRun(st.name, st.node.kind, "computed", seconds, st.reasons, n_utts,
                   st.record.get("metrics", {}))


def _progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)
