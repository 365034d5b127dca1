"""The ``ssl-graph`` command group: store option, help, and one-line errors for every command.

Every user error ends in one line naming the file/node/utterance and what to do, never a
traceback (set SSL_GRAPH_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys

import click

from ..store.store import ENV_VAR


def make_console(**options):
    """rich's console, printing what it is given as written: no highlighting, and no emoji codes
    (an utterance id ``spk:dog:02`` is not ``spk🐶02``; nor is rich's emoji table loaded)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich's own exits 1
            self.quiet = True
            _reader_gone()

    return _Console(**{"highlight": False, "emoji": False, **options})


def _reader_gone():
    """The reader of stdout went away (`query ... | head -1`): end quietly with the status a
    Unix tool killed by SIGPIPE has, with stdout on /dev/null so no flush fails at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(141)


def _store_first(args: list[str]) -> list[str]:
    """``--store X`` is the group's option; accept it after the subcommand too (``ssl-graph
    query ... --store X``), as users type it, by moving it in front."""
    moved, rest, i = [], [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i:])
            break
        if a == "--store" and i + 1 < len(args):
            moved += args[i:i + 2]
            i += 2
            continue
        if a.startswith("--store="):
            moved.append(a)
        else:
            rest.append(a)
        i += 1
    return moved + rest


class _Group(click.Group):
    def parse_args(self, ctx, args):
        return super().parse_args(ctx, _store_first(list(args)))

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as exc:  # train/signals.py's Stopped says which signal, once;
            if not getattr(exc, "said", False):  # one that carries a message says what it stopped
                what = str(exc) or "finished work is committed; rerun to resume"
                click.echo(f"interrupted: {what}", err=True)
            sys.exit(getattr(exc, "exit_status", 130))
        except Exception as exc:  # one clear line instead of a traceback
            if isinstance(exc, BrokenPipeError) and _stdout_closed():
                _reader_gone()
            if os.environ.get("SSL_GRAPH_DEBUG"):
                raise
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, KeyError):
                msg = str(exc.args[0]) if exc.args else msg
            click.echo(f"error: {msg}", err=True)
            sys.exit(1)


def _stdout_closed() -> bool:
    """Whether stdout is a pipe nobody reads any more (its write end reports an error); a
    broken pipe elsewhere (a worker's) is a real error and is reported as one."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLERR)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no fileno (captured), no poll (Windows)
        return False


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


def loading():
    """Around what a command imports and loads before it works: pydantic, the node classes, the
    spec's models and the command's modules are long-lived objects, no garbage, so the cyclic
    collector is paused meanwhile and, in the program, they are then frozen (``collector.py``)."""
    from ..collector import paused, program

    return paused(freeze=program())


def open_project(ctx, spec):
    """The project of ``spec``, its spec file loaded (:func:`loading`)."""
    with loading():
        from ..api import Project

        project = Project(spec, ctx.obj["store"])
        project.pipeline  # noqa: B018 - (loaded here; every command reads it next)
    return project


def split_ref(ref: str) -> tuple[str, str]:
    spec, sep, name = ref.rpartition(":")
    if not sep or not spec:
        raise click.BadParameter(f"expected SPEC:NODE (e.g. specs/demo.py:km), got {ref!r}")
    return spec, name


