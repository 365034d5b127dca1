"""Which module lists a corpus of each ``Corpus(layout=...)``: (utterance, audio source) pairs
in corpus order plus the speakers the layout names. Only plan-time file reading, no decoding."""

from __future__ import annotations

from pathlib import Path

from ..specs.base import SpecError


def read_layout(corpus, name: str) -> tuple[list[tuple[str, object]], dict[str, str]]:
    layout = corpus.layout
    root = corpus.path(corpus.root)
    if layout in ("librispeech", "timit"):
        if root is None or not root.is_dir():
            raise SpecError(f"{name}: {layout} tree {corpus.root!r} is not a directory "
                            f"(looked at {root}); fix Corpus.{layout}(root)")
        if layout == "librispeech":
            from .librispeech import list_tree
        else:
            from .timit import list_tree
        pairs, speakers = list_tree(root, corpus.glob)
        if not pairs:
            raise SpecError(f"{name}: no {layout} audio matches {corpus.glob!r} under {root}")
        return pairs, speakers
    if corpus.manifest is None:
        raise SpecError(f"{name}: layout {layout!r} needs manifest=...; use Corpus.{layout}(...)")
    where = corpus.path(corpus.manifest)
    if not where.exists():
        raise SpecError(f"{name}: {layout} input {corpus.manifest!r} not found (looked at {where})")
    if layout == "kaldi":
        from .kaldi import list_data_dir

        if not where.is_dir():
            raise SpecError(f"{name}: {where} is not a Kaldi data directory")
        return list_data_dir(where, root if root is not None else corpus.path("."))
    if layout == "fairseq":
        from .fairseq import read_manifest

        return [(utt, p) for _, utt, p, _ in read_manifest(where, root)], {}
    if layout == "lhotse":
        from .lhotse import list_manifests

        sup = corpus.path(corpus.supervisions) if corpus.supervisions else None
        return list_manifests(where, sup, root if root is not None else corpus.path("."))
    raise SpecError(f"{name}: unknown layout {layout!r}")


def declared_frames(corpus) -> dict[str, tuple[str, int]]:
    """utt → (file:line, samples) where the layout states each file's length (a fairseq
    manifest's ``num_samples``), for the corpus node to compare with the file it measures."""
    if corpus.layout != "fairseq":
        return {}
    from .fairseq import read_manifest

    root = corpus.path(corpus.root)
    return {utt: (where, n) for where, utt, _, n in read_manifest(corpus.path(corpus.manifest), root)}


def read_speakers(path: Path) -> dict[str, str]:
    """A ``utt<TAB>speaker`` TSV (header row detected)."""
    from .tsv import read_rows

    return {c[0]: c[1].strip() for _, c in read_rows(path, "speakers", 2)[1]}
