"""``ssl-graph compare``: two spec files (or two nodes) side by side."""

from __future__ import annotations

import click

from .group import make_console, open_project, split_ref


@click.command()
@click.argument("a", metavar="SPEC_A[:NODE]")
@click.argument("b", metavar="SPEC_B[:NODE]")
@click.option("--all", "show_all", is_flag=True, help="also list the nodes both share")
@click.pass_context
def compare(ctx, a, b, show_all):
    """Field differences and headline metrics of two variants, from the store.

    \b
    ssl-graph compare specs/demo.py specs/demo_k200.py
    ssl-graph compare specs/demo.py:km2 specs/demo_k200.py:km2
    """
    from rich.table import Table

    from ..compare import compare as compare_rows
    from ..compare import format_metrics

    def ref(x):
        return split_ref(x) if x.rpartition(":")[0].endswith(".py") else (x, None)

    (sa, na), (sb, nb) = ref(a), ref(b)
    if (na is None) != (nb is None):
        raise click.UsageError("compare two spec files, or two SPEC:NODE references")
    pa, pb = open_project(ctx, sa), open_project(ctx, sb)
    rows = compare_rows(pa, pb, [na] if na else None, [nb] if nb else None)
    table = Table(title=f"A = {sa}   B = {sb}", title_justify="left")
    for col in ("node", "kind", "A vs B", "A", "B (Δ vs A)"):  # changes wrap, never cut short
        table.add_column(col, overflow="fold")
    shared = 0
    for r in rows:
        if r.status == "shared" and not show_all:
            shared += 1
            continue
        ma, mb = format_metrics(r.a, r.b)
        what = "\n".join(r.changes) if r.changes else r.status
        table.add_row(r.name, r.kind, what, ma or "-", mb or "-")
    make_console().print(table)
    if shared:
        click.echo(f"{shared} more node(s) are identical in both (one cache); --all lists them")


COMMANDS = [compare]
