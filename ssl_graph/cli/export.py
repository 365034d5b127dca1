"""``ssl-graph export``: cached nodes out, in the layouts other tools read."""

from __future__ import annotations

import click

from .group import open_project, split_ref


class _ExportGroup(click.Group):
    """``ssl-graph export SPEC:NODE DIR`` (no subcommand) means ``export model``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["model", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ExportGroup)
def export():
    """Write cached results for other tools (fairseq / torchaudio HuBERT recipes, transformers).

    \b
    ssl-graph export labels specs/demo.py:labels out/units --format fairseq
    ssl-graph export features specs/demo.py:mfcc out/feats --valid-percent 5
    ssl-graph export model specs/demo.py:ft out/ft --format hf
    ssl-graph export specs/demo.py:it2 out/it2 --format hf     (same as export model)
    ssl-graph export segments specs/demo.py:quality.alignments out/phones.ctm
    """


def _common(fn):
    fn = click.option("--force", is_flag=True, help="write into a non-empty directory")(fn)
    fn = click.option("--seed", default=0, show_default=True, help="seed of the valid split")(fn)
    fn = click.option("--valid-percent", default=0.0, show_default=True,
                      help="hold this percentage of utterances out as a 'valid' split")(fn)
    fn = click.option("--split", default="train", show_default=True, help="split (file) name")(fn)
    fn = click.option("--format", "fmt", type=click.Choice(["fairseq"]), default="fairseq",
                      show_default=True)(fn)
    fn = click.argument("out", type=click.Path(file_okay=False))(fn)
    return click.argument("ref", metavar="SPEC:NODE")(fn)


def _export(ctx, what, ref, out, split, valid_percent, seed, force, manifests=()):
    from ..export import export_fairseq
    from ..specs.nodes import Labels

    spec, name = split_ref(ref)
    project = open_project(ctx, spec)
    node = project[name].node
    if (what == "labels") != isinstance(node, Labels):
        other = "features" if what == "labels" else "labels"
        raise click.UsageError(f"{name} is a {node.kind} node: use `ssl-graph export {other}`")
    files = export_fairseq(project, name, out, split=split, valid_percent=valid_percent,
                           seed=seed, force=force, manifests=list(manifests) or None)
    click.echo(f"wrote {len(files)} files to {out}: " + ", ".join(f.name for f in files))


@export.command()
@_common
@click.option("--manifest", "manifests", multiple=True, type=click.Path(dir_okay=False),
              help="your fairseq train.tsv/valid.tsv: one .km each, in its order (repeatable)")
@click.pass_context
def labels(ctx, ref, out, fmt, split, valid_percent, seed, force, manifests):
    """Frame labels of a Labels node: {split}.tsv, {split}.km, dict.km.txt.

    \b
    ssl-graph export labels specs/demo.py:labels out/units
    ssl-graph export labels specs/demo.py:labels out/units --valid-percent 5
    ssl-graph export labels specs/demo.py:labels out/units \\
        --manifest data/train.tsv --manifest data/valid.tsv   (train.km, valid.km in their order)
    """
    _export(ctx, "labels", ref, out, split, valid_percent, seed, force, manifests)


@export.command()
@_common
@click.pass_context
def features(ctx, ref, out, fmt, split, valid_percent, seed, force):
    """Features of a feature node: {split}.tsv, {split}_0_1.npy, {split}_0_1.len.

    \b
    ssl-graph export features specs/demo.py:mfcc out/feats
    ssl-graph export features specs/demo.py:mfcc out/feats --valid-percent 5 --seed 1
    """
    _export(ctx, "features", ref, out, split, valid_percent, seed, force)


@export.command()
@click.argument("ref", metavar="SPEC:NODE")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["hf"]), default="hf", show_default=True)
@click.option("--force", is_flag=True, help="write into a non-empty directory")
@click.pass_context
def model(ctx, ref, out, fmt, force):
    """A Pretrain / FineTune node as a transformers directory (AutoModel / AutoModelForCTC).

    \b
    ssl-graph export model specs/demo.py:it2 out/it2 --format hf
    ssl-graph export model specs/demo.py:ft out/ft
    """
    from ..export import export_model

    spec, name = split_ref(ref)
    files = export_model(open_project(ctx, spec), name, out, fmt=fmt, force=force)
    click.echo(f"wrote {len(files)} files to {out}: " + ", ".join(f.name for f in files))


@export.command()
@click.argument("ref", metavar="SPEC:NODE")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["ctm", "tsv"]), default=None,
              help="default: tsv for a .tsv file, else ctm")
@click.option("--force", is_flag=True, help="overwrite OUT if it exists")
@click.pass_context
def segments(ctx, ref, out, fmt, force):
    """The checked segments of an Alignments / WordAlignments node as a CTM or TSV file.

    \b
    ssl-graph export segments specs/demo.py:quality.alignments phones.ctm
    ssl-graph export segments specs/demo.py:quality.alignments phones.tsv
    """
    from ..export import export_segments

    spec, name = split_ref(ref)
    path = export_segments(open_project(ctx, spec), name, out, fmt=fmt, force=force)
    click.echo(f"wrote {path}")


COMMANDS = [export]
