"""The ``ssl-graph`` command group: store option, help, and one-line errors for every command.

Every user error ends in one line naming the file/node/utterance and what to do, never a
traceback (set SSL_GRAPH_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys

import click

from ..store.store import ENV_VAR


def make_console():
    from rich.console import Console

    return Console(highlight=False)


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as exc:  # train/signals.py's Stopped says which signal
            if not getattr(exc, "said", False):
                click.echo("interrupted: finished work is committed; rerun to resume", err=True)
            sys.exit(getattr(exc, "exit_status", 130))
        except Exception as exc:  # one clear line instead of a traceback
            if os.environ.get("SSL_GRAPH_DEBUG"):
                raise
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, KeyError):
                msg = str(exc.args[0]) if exc.args else msg
            click.echo(f"error: {msg}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store", envvar=ENV_VAR, default=None, metavar="PATH|URL",
              help=f"store location (default ./store, or ${ENV_VAR}); any fsspec URL works")
@click.version_option(package_name="ssl_graph")
@click.pass_context
def main(ctx, store):
    """Declarative, incremental pipelines for self-supervised speech models.

    \b
    ssl-graph plan specs/demo.py          what would run, and why
    ssl-graph run specs/demo.py           compute only stale nodes
    ssl-graph query labels specs/demo.py:labels --utt usf3-0009
    ssl-graph verify --repair             check every stored file; drop damaged parts
    """
    ctx.obj = {"store": store}


def open_project(ctx, spec):
    from ..api import Project

    return Project(spec, ctx.obj["store"])


def split_ref(ref: str) -> tuple[str, str]:
    spec, sep, name = ref.rpartition(":")
    if not sep or not spec:
        raise click.BadParameter(f"expected SPEC:NODE (e.g. specs/demo.py:km), got {ref!r}")
    return spec, name


