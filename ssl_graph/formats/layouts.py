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
        return list_data_dir(where, root if root is not None else corpus.path("."),
                             corpus.commands, corpus.sample_rate)
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


#: a speaker "name" ending so is a file: the column picked holds the audio paths
_AUDIO_SUFFIXES = (".wav", ".flac", ".sph", ".mp3", ".ogg", ".opus", ".m4a")


def read_speakers(path: Path, column: int | str = 1) -> dict[str, str]:
    """Utterance -> speaker from a TSV: column 0 the utterance, ``column`` (index, or the
    header's name for it) the speaker. A column of paths is refused: it would turn a speaker
    split into an utterance split without a word."""
    from .tsv import read_rows

    header, rows = read_rows(path, "speakers", 2)
    if isinstance(column, str):
        if header is None or column not in header:
            raise SpecError(f"{path}: speakers_column={column!r} names no column of its header "
                            f"({header or 'none'}); give a header name or a 0-based index")
        column = header.index(column)
    out = {}
    for lineno, cols in rows:
        if column >= len(cols):
            raise SpecError(f"{path}:{lineno}: speakers: no column {column} (the row has "
                            f"{len(cols)}); set Corpus(speakers_column=...)")
        out[cols[0]] = cols[column].strip()
    looks_like_paths = [s for s in out.values() if "/" in s or s.lower().endswith(_AUDIO_SUFFIXES)]
    if looks_like_paths and len(looks_like_paths) * 2 >= len(out):
        raise SpecError(f"{path}: speakers column {column} holds file paths (e.g. "
                        f"{looks_like_paths[0]!r}), not speakers; pick the speaker column with "
                        "Corpus(speakers_column=<index or header name>)")
    return out
