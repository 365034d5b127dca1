"""Pipeline commands: ``plan``, ``run``, ``status``, ``explain``, ``show``, ``query``."""

from __future__ import annotations

import json

import click

from .group import loading, make_console, open_project, split_ref

_STATUS_STYLE = {"fresh": "green", "stale": "yellow", "computed": "cyan", "failed": "red",
                 "skipped": "dim"}


def _metric_summary(metrics: dict, previous: dict | None = None) -> str:
    """``pnmi=0.239``, or ``pnmi=0.199 → 0.239`` when the previous result is known."""
    keys = ("pnmi", "phone_purity", "inertia", "cer", "per", "wer", "accuracy", "loss")
    previous = previous or {}
    parts = []
    for k in keys:
        v = metrics.get(k)
        if not isinstance(v, (int, float)):
            continue
        old = previous.get(k)
        parts.append(f"{k}={old:.3f} → {v:.3f}" if isinstance(old, (int, float)) and old != v
                     else f"{k}={v:.3f}")
    return " ".join(parts)


@click.command()
@click.argument("spec")
@click.argument("nodes", nargs=-1)
@click.option("--set", "overrides", multiple=True, metavar="NODE.FIELD=VALUE",
              help="as `run --set` (also $SSL_GRAPH_SET): plan what that run would do")
@click.pass_context
def plan(ctx, spec, nodes, overrides):
    """Show every node as fresh or stale, with the reasons (nothing is computed).

    \b
    ssl-graph plan specs/demo.py
    ssl-graph plan specs/demo.py quality     # just `quality` and its inputs, as `run` would
    ssl-graph plan specs/demo.py --set it1.precision=bf16
    """
    with loading():
        from rich.table import Table

        from ..exec.overrides import apply_overrides, env_assignments

        project = open_project(ctx, spec)
    pipeline = project.pipeline
    apply_overrides(pipeline, env_assignments() + list(overrides))
    named = [pipeline.node(n) for n in nodes]  # an unknown name fails here, naming the known
    states = project.plan()
    if named:
        keep = pipeline.ancestors(named)
        states = {n: st for n, st in states.items() if st.node.fingerprint in keep}
    targets = pipeline.spec.default_targets
    wanted = pipeline.ancestors([pipeline.node(t) for t in targets]) if targets and not named \
        else None
    table = Table(title=f"plan: {spec}", title_justify="left")
    for col in ("node", "kind", "status", "why"):
        table.add_column(col)
    for st in states.values():
        why = "; ".join(st.reasons) if st.stale else "; ".join(st.notes)
        if wanted is not None and st.node.fingerprint not in wanted:
            why = f"[dim](not in __targets__: run it by name) {why}[/]"
        style = _STATUS_STYLE[st.status]
        table.add_row(st.name, st.node.kind, f"[{style}]{st.status}[/]", why)
    make_console().print(table)
    n = sum(st.stale for st in states.values())
    todo = sum(st.stale for st in states.values() if wanted is None or st.node.fingerprint in wanted)
    if named:
        click.echo(f"{n} of {len(states)} nodes stale; `run {' '.join(nodes)}` computes {n}")
    else:
        click.echo(f"{n} of {len(states)} nodes stale; `run` without node names computes {todo}")


@click.command()
@click.argument("spec")
@click.argument("nodes", nargs=-1)
@click.option("--no-progress", is_flag=True,
              help="no progress bars: plain progress lines instead (as in a log file)")
@click.option("-q", "--quiet", is_flag=True, help="no progress at all; print only the summary line")
@click.option("--keep-going", is_flag=True,
              help="a failing node stops only what needs it; report failures at the end")
@click.option("--set", "overrides", multiple=True, metavar="NODE.FIELD=VALUE",
              help="set a runtime field (device, max_batch_seconds, ...); also $SSL_GRAPH_SET")
@click.option("--launcher", type=click.Choice(["none", "torchrun"]), default="none",
              help="torchrun: train Pretrain/FineTune nodes under DDP")
@click.option("--nproc-per-node", type=int, default=1, help="torchrun: processes (GPUs) per node")
@click.option("--nnodes", default="1", help="torchrun: number of nodes (or MIN:MAX)")
@click.option("--node-rank", type=int, default=0, help="torchrun: this node's rank")
@click.option("--rdzv-endpoint", default=None, help="torchrun: HOST:PORT of the rendezvous")
@click.option("--executor", type=click.Choice(["local", "pool", "dask"]), default="local",
              help="where per-utterance work (MFCC, Labels) runs; results are identical")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="pool: processes (default: cores); dask without --scheduler: local workers")
@click.option("--scheduler", default=None, metavar="ADDR",
              help="dask: scheduler address (default: a LocalCluster on this machine)")
@click.option("--single-writer", is_flag=True, envvar="SSL_GRAPH_SINGLE_WRITER",
              help="an object store whose server ignores conditional writes: run anyway, as its "
              "only writer (another run or gc is refused, best effort)")
@click.pass_context
def run(ctx, spec, nodes, no_progress, quiet, keep_going, overrides, launcher, nproc_per_node,
        nnodes, node_rank, rdzv_endpoint, executor, workers, scheduler, single_writer):
    """Compute stale nodes (all, or only NODES and what they need).

    \b
    ssl-graph run specs/demo.py
    ssl-graph run specs/demo.py quality      # just `quality` and its inputs
    ssl-graph run specs/demo.py --keep-going # finish every branch that can finish
    ssl-graph run specs/demo.py --set it1.device=cuda:1 --set it1.max_batch_seconds=200
    ssl-graph run specs/demo.py it1 --launcher torchrun --nproc-per-node 4
    ssl-graph run specs/demo.py --executor dask --scheduler tcp://10.0.0.5:8786
    """
    with loading():
        from ..exec.overrides import apply_overrides, env_assignments
        from ..exec.torchrun import Torchrun, run_as_rank, under_torchrun
        from ..launcher import launching
        from ..runner import RunFailed

        project = open_project(ctx, spec)
    if single_writer:  # (only the runner locks the store: ranks and workers need no flag)
        project.store.single_writer = True
    sets = env_assignments() + list(overrides)
    apply_overrides(project.pipeline, sets)
    console = None if (quiet and no_progress) else make_console()
    ddp = None
    if launcher == "torchrun":
        ddp = Torchrun(spec, project.store.url, nproc_per_node, nnodes, node_rank, rdzv_endpoint,
                       sets)
        ddp.check(project.pipeline)

    def go():
        progress = False if quiet else "lines" if no_progress else True
        return project.run(targets=list(nodes) or None, progress=progress, console=console,
                           keep_going=keep_going, executor=executor, workers=workers,
                           scheduler=scheduler)

    failed = None
    try:
        if under_torchrun() and ddp is None:  # `torchrun -m ssl_graph run ...`
            report = run_as_rank(project, go)
            if report is None:
                return  # not rank 0: rank 0 reports
        else:
            with launching(ddp):
                report = go()
    except RunFailed as exc:
        report, failed = exc.report, exc
    if not quiet:
        from rich.table import Table

        table = Table(title=f"run: {spec}", title_justify="left")
        for col in ("node", "kind", "status", "time", "result"):
            table.add_column(col)
        for n in report.nodes:
            style = _STATUS_STYLE.get(n.status, "white")
            result = _metric_summary(n.metrics, n.previous)
            if n.utterances is not None:
                result = f"{n.utterances} utts " + result
            t = f"{n.seconds:.2f}s" if n.status == "computed" else ""
            table.add_row(n.name, n.kind, f"[{style}]{n.status}[/]", t, result)
        console.print(table)
    click.echo(f"computed {len(report.computed)} of {len(report.nodes)} nodes "
               f"in {report.seconds:.2f}s")
    for n in report.nodes:
        for w in n.warnings:
            click.echo(f"warning: {n.name}: {w}", err=True)
    if failed is not None:
        click.echo(f"error: {failed}", err=True)
        ctx.exit(1)


@click.command()
@click.argument("spec")
@click.pass_context
def status(ctx, spec):
    """What the store holds for each node: status, size, utterances, metrics.

    \b
    ssl-graph status specs/demo.py
    """
    from rich.table import Table

    project = open_project(ctx, spec)
    states = project.plan()
    table = Table(title=f"status: {spec}", title_justify="left")
    for col in ("node", "kind", "fingerprint", "status", "utts", "size", "updated", "metrics"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for st in states.values():
        rec = st.record or {}
        running = any(r.startswith("running") for r in st.reasons)
        shown = (f"[magenta]{st.reasons[0]}[/]" if running else
                 f"[{_STATUS_STYLE[st.status]}]{st.status}[/]")
        size = _size(project.store.backend.size(st.key)) if st.record else ""
        table.add_row(st.name, st.node.kind, st.node.fingerprint[:10], shown,
                      str(rec.get("n_utts", "")), size, rec.get("updated", "-"),
                      _metric_summary(rec.get("metrics", {})))
    make_console().print(table)


def _size(n: int) -> str:
    """Bytes as a short human figure (1.2 MB)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


@click.command()
@click.argument("ref", metavar="SPEC:NODE")
@click.pass_context
def explain(ctx, ref):
    """Why a node is stale: field-level diff against what the store holds for its name.

    \b
    ssl-graph explain specs/demo.py:km
    """
    from ..graph.diff import describe_changes, nearest_relative, previous_record, relative_label

    spec, name = split_ref(ref)
    project = open_project(ctx, spec)
    states = project.plan()
    node = project.pipeline.node(name)
    st = next(s for s in states.values() if s.node.fingerprint == node.fingerprint)
    click.echo(f"{st.name} ({node.kind} {node.fingerprint}): {st.status}")
    for r in st.reasons:
        click.echo(f"  - {r}")
    for r in st.notes:
        click.echo(f"  note: {r}")
    prev = previous_record(st.name, node, project.store, project.pipeline.spec_name)
    relative = None
    if prev is None and st.record is None:
        prev = relative = nearest_relative(node, project.store,
                                           exclude=set(project.pipeline.nodes), name=st.name)
    if prev is not None:
        names = {fp: s.name for fp, s in ((s.node.fingerprint, s) for s in states.values())}
        lines = describe_changes(prev["spec"], node.semantic(), prev.get("op_version"),
                                 node.op_version, lambda fp: names.get(fp, fp[:8]))
        what = f"its nearest stored relative {relative_label(relative)} ({prev['fingerprint']})" \
            if relative else prev["fingerprint"]
        click.echo(f"compared with {what} (stored {prev.get('updated', '?')}):")
        for line in lines or ["no field differs"]:
            click.echo(f"  {line}")
    elif st.record is not None:
        click.echo(f"the store holds this exact spec (updated {st.record.get('updated', '?')})")
    else:
        click.echo("the store has never held a node under this name")


@click.command()
@click.argument("ref", metavar="SPEC:NODE")
@click.pass_context
def show(ctx, ref):
    """Print a node's spec and stored record (metrics, timings, inputs) as JSON.

    \b
    ssl-graph show specs/demo.py:quality
    """
    spec, name = split_ref(ref)
    project = open_project(ctx, spec)
    node = project.pipeline.node(name)
    handle = project[name]
    rec = project.store.record(handle.key)
    out = {"name": name, "kind": node.kind, "fingerprint": node.fingerprint, "key": handle.key,
           "spec": node.semantic(), "record": rec}
    if rec is None:
        from ..graph.diff import previous_record

        prev = previous_record(name, node, project.store, project.pipeline.spec_name)
        out["note"] = ("the current spec has not been computed" +
                       ("; `stored` is the last result under this name" if prev else ""))
        out["stored"] = prev
    click.echo(json.dumps(out, indent=2, default=str))


@click.command()
@click.argument("what", type=click.Choice(["features", "labels", "segments", "utts"]))
@click.argument("ref", metavar="SPEC:NODE")
@click.option("--utt", help="utterance id")
@click.option("--all", "every", is_flag=True, help="every utterance: one UTT.npy each in --out DIR")
@click.option("--out", type=click.Path(), help="save the array as .npy (a directory with --all)")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def query(ctx, what, ref, utt, every, out, force, as_json):
    """Read cached features, labels or alignment segments of one utterance (or list
    utterances).

    \b
    ssl-graph query features specs/demo.py:mfcc --utt usf3-0009 --out x.npy
    ssl-graph query labels specs/demo.py:labels --utt usf3-0009 --json
    ssl-graph query features specs/demo.py:mfcc --all --out feats/
    ssl-graph query segments specs/demo.py:quality.alignments --utt usf3-0009 --json
    ssl-graph query utts specs/demo.py:mfcc
    """
    import numpy as np

    from .store import refuse_overwrite

    if out and not every:
        out = out if out.endswith(".npy") else f"{out}.npy"  # where np.save puts it
        refuse_overwrite(out, force)
    spec, name = split_ref(ref)
    handle = open_project(ctx, spec)[name]
    if what != "utts":  # never serve values of an input that changed since (plan says stale)
        handle.require_current(None if every or what == "segments" else [utt] if utt else [])
    if what == "segments":
        if not utt or every or out:
            raise click.UsageError("query segments takes --utt (for a file of every "
                                   "utterance: ssl-graph export segments)")
        rows = handle.segments(utt)
        click.echo(json.dumps({"node": name, "utt": utt, "segments": rows}) if as_json else
                   "\n".join(f"{s:.4f}\t{e:.4f}\t{lab}" for s, e, lab in rows))
        return
    if what == "utts":
        utts = handle.utterances()
        click.echo(json.dumps(utts) if as_json else "\n".join(utts))
        return
    if every:
        if not out:
            raise click.UsageError("--all needs --out DIR (one .npy per utterance)")
        from ..query_dump import dump_all

        n = dump_all(handle, what, out)
        click.echo(f"saved {n} utterances of {name} to {out}/")
        return
    if not utt:
        raise click.UsageError("--utt (or --all) is required for features/labels")
    arr = handle.features(utt) if what == "features" else handle.labels(utt)
    if out:
        np.save(out, arr)
        click.echo(f"saved {arr.shape} {arr.dtype} to {out}")
    elif as_json:
        click.echo(json.dumps({"node": name, "utt": utt, "shape": list(arr.shape),
                               "dtype": str(arr.dtype), "data": arr.tolist()}))
    else:
        np.set_printoptions(threshold=200, edgeitems=4, linewidth=120, precision=4)
        click.echo(f"{name} {utt}: shape {arr.shape} {arr.dtype}")
        click.echo(str(arr))




COMMANDS = [plan, run, status, explain, show, query]
