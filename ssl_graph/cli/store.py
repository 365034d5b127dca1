"""Store-level commands: ``ls``, ``gc``, ``verify``, ``graph``, ``report``."""

from __future__ import annotations

import click

from .group import make_console, open_project


@click.command(name="ls")
@click.argument("spec_name", required=False)
@click.pass_context
def ls_(ctx, spec_name):
    """List named nodes in the store (all spec files, or one by its stem).

    \b
    ssl-graph ls
    ssl-graph ls demo
    """
    from rich.table import Table

    from ..store.store import Store, node_key

    store = Store(ctx.obj["store"])
    table = Table(title=f"store: {store.url}", title_justify="left")
    for col in ("spec:name", "kind", "fingerprint", "status", "utts", "versions", "updated"):
        table.add_column(col)
    specs = [spec_name] if spec_name else store.spec_names()
    for spec in specs:
        for name, history in store.names(spec).items():
            last = history[-1]
            key = node_key(last["kind"], last["fingerprint"])
            rec = store.record(key) or {}
            status = rec.get("status") or ("damaged" if key in store.damaged else "missing")
            table.add_row(f"{spec}:{name}", last["kind"], last["fingerprint"][:10],
                          status, str(rec.get("n_utts", "")),
                          str(len(history)), rec.get("updated", ""))
    make_console().print(table)


@click.command()
@click.option("--keep", default=1, show_default=True, type=click.IntRange(min=1),
              help="recent fingerprints to keep per name (more = cheap switching back)")
@click.option("--dry-run", is_flag=True, help="only list what would be removed")
@click.pass_context
def gc(ctx, keep, dry_run):
    """Delete stored results no name points to any more, and superseded parts.

    \b
    ssl-graph gc --dry-run
    ssl-graph gc --keep 3
    """
    from ..store.gc import collect
    from ..store.store import Store

    report = collect(Store(ctx.obj["store"]), keep=keep, dry_run=dry_run)
    for key, size in report.removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {key} ({size / 1e6:.2f} MB): "
                   f"{report.owners.get(key, '?')}")
    for key, problem in report.skipped:
        click.echo(f"skipped {key}: {problem}")
    verb = "would free" if dry_run else "freed"
    click.echo(f"{verb} {report.bytes / 1e6:.2f} MB in {len(report.removed)} items")


@click.command()
@click.argument("spec", required=False)
@click.option("--repair", is_flag=True,
              help="drop damaged parts/records so the next run recomputes just those")
@click.pass_context
def verify(ctx, spec, repair):
    """Check every record, index, part (checksums, shapes, offsets) and checkpoint, per node.

    Exits 1 when something is damaged (0 after --repair). Without SPEC, the whole store.

    \b
    ssl-graph verify
    ssl-graph verify specs/demo.py --repair
    """
    from contextlib import nullcontext

    from ..store import verify as v
    from ..store.store import Store, node_key

    if spec:
        project = open_project(ctx, spec)
        store = project.store
        keys = [k for k in (node_key(n.kind, n.fingerprint) for n in project.pipeline.nodes.values())
                if store.backend.exists(k)]
        specs = [project.pipeline.spec_name]
    else:
        store = Store(ctx.obj["store"])
        keys, specs = store.node_keys(), store.spec_names()
    damaged = 0
    names = v.names_by_key(store)
    with store.lock() if repair else nullcontext():
        for key in sorted(keys):
            c = v.verify_node(store, key, names.get(key, "?"))
            if c.ok:
                click.echo(f"ok       {c.name} ({key}): {c.summary}")
                continue
            damaged += 1
            click.echo(f"DAMAGED  {c.name} ({key}): {'; '.join(c.problems[:3])}"
                       + (f" (+{len(c.problems) - 3} more)" if len(c.problems) > 3 else ""))
            if repair:
                click.echo(f"  repaired: {v.repair(store, c)}")
        for spec_name in specs:
            store.names(spec_name)
            problem = store.damaged.get(f"names/{spec_name}.json")
            if problem:
                damaged += 1
                click.echo(f"DAMAGED  names/{spec_name}.json: {problem.split(';')[0]}")
                if repair:
                    v.repair_names(store, spec_name)
                    click.echo("  repaired: rebuilt from the node records")
        for spec_name in [s for s in store.plan_specs() if s in specs or not spec]:
            keys = store.plan_keys(spec_name)
            problem = store.damaged.get(f"plans/{spec_name}.json")
            if problem:
                damaged += 1
                click.echo(f"DAMAGED  plans/{spec_name}.json: {problem}")
                if repair:
                    store.record_plan(spec_name, sorted(keys))
                    click.echo("  repaired: kept the node keys that are inside the store")
    click.echo(f"{len(keys)} nodes checked, {damaged} damaged"
               + ("; repaired, run the spec to recompute" if repair and damaged else ""))
    if damaged and not repair:
        raise SystemExit(1)


def refuse_overwrite(path: str, force: bool) -> None:
    """``--out`` never replaces an existing file silently."""
    from pathlib import Path

    if Path(path).exists() and not force:
        raise click.ClickException(f"{path} already exists; pass --force to overwrite it")


@click.command()
@click.argument("spec")
@click.option("--out", type=click.Path(dir_okay=False), default="graph.png", show_default=True,
              help="PNG/SVG/PDF path")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
@click.pass_context
def graph(ctx, spec, out, force):
    """Draw the pipeline graph, nodes coloured fresh (green) / stale (orange).

    \b
    ssl-graph graph specs/demo.py --out demo-graph.png
    """
    from ..viz.graph_plot import draw_plan

    refuse_overwrite(out, force)
    project = open_project(ctx, spec)
    draw_plan(project.pipeline, project.plan(), out)
    click.echo(f"wrote {out}")


@click.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC [SPEC...]")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="folder for report.html and the PNGs (default reports/<first spec name>)")
@click.option("--format", "fmt_", type=click.Choice(["table", "md", "csv"]), default="table",
              show_default=True, help="how the table prints (md/csv also land in --out)")
@click.pass_context
def report(ctx, specs, out, fmt_):
    """Scores of every scoring node (PNMI, purities, CER/PER/WER, training time) + pictures.

    With several spec files (variants), one table with the variants as rows, PNMI vs k/layer
    and error rate vs labeled minutes, the worst utterances, and a reproducibility block.

    \b
    ssl-graph report specs/demo.py                 # table + reports/demo/report.html
    ssl-graph report specs/hubert.py --out /tmp/r
    ssl-graph report specs/demo.py specs/demo_k50.py
    ssl-graph report specs/demo.py --format md      # Markdown table (also report.md)
    ssl-graph report specs/demo.py --format csv     # CSV (also report.csv)
    """
    from pathlib import Path

    from rich.table import Table

    from ..report import COLUMNS, fmt, write_report

    out = out or str(Path("reports") / Path(specs[0]).stem)
    if len(specs) > 1:
        from ..report_variants import VARIANT_COLUMNS, write_variant_report

        rows, columns = write_variant_report([open_project(ctx, s) for s in specs], out), VARIANT_COLUMNS
        images = len([p for p in Path(out).glob("*.png")])
    else:
        rep = write_report(open_project(ctx, specs[0]), out)
        rows, columns, images = rep.rows, COLUMNS, len(rep.images)
    from ..report_seeds import SEED_COLUMNS, seed_table
    from ..report_tables import as_csv, as_markdown, table_columns

    cols = table_columns(rows, columns)
    seeds = seed_table(rows)  # variants run with several seeds: mean ± sd, one row each
    if fmt_ != "table":
        text = as_markdown(rows, cols, fmt) if fmt_ == "md" else as_csv(rows, cols)
        if seeds:
            scols = table_columns(seeds, SEED_COLUMNS)
            text += "\n" + (as_markdown(seeds, scols, fmt) if fmt_ == "md" else as_csv(seeds, scols))
        (Path(out) / f"report.{fmt_}").write_text(text)
        click.echo(text, nl=False)
        return
    table = Table(title=f"report: {' vs '.join(specs)}", title_justify="left")
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*(fmt(r.get(c), c) for c in cols))
    make_console(width=max(make_console().width, 150)).print(table)
    if seeds:
        over = Table(title="over seeds: mean ± sd", title_justify="left")
        scols = table_columns(seeds, SEED_COLUMNS)
        for c in scols:
            over.add_column(c)
        for r in seeds:
            over.add_row(*(fmt(r.get(c), c) for c in scols))
        make_console(width=max(make_console().width, 150)).print(over)
    click.echo(f"wrote {Path(out) / 'report.html'} ({images} pictures)")


COMMANDS = [ls_, gc, verify, graph, report]
