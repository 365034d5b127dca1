"""Annotation readers by format: every reader returns rows keyed by ``file:line``, so the
validation in ``audio/annotations.py`` is the same for every format and names the exact line.

An annotation's identity covers every file its reader reads (a tree format reads many; a
fairseq label file also depends on its manifest's order), so editing any of them restales it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..specs.base import SpecError

#: formats whose ``path`` is a directory of per-utterance files (or one such file)
TREE_FORMATS = {"librispeech", "timit_txt", "timit_phn", "timit_wrd", "textgrid"}

#: the TIMIT file suffix each TIMIT format reads
TIMIT_SUFFIX = {"timit_txt": ".txt", "timit_phn": ".phn", "timit_wrd": ".wrd"}


def transcript_rows(node) -> list[tuple[str, str, str]]:
    """(file:line, utt, text) of a ``Transcripts`` node's file(s)."""
    path, fmt = node.file(), node.format
    if fmt == "tsv":
        from .annotation_tsv import transcript_rows as tsv_rows

        return [(f"{path}:{ln}", u, t) for ln, u, t in tsv_rows(path, node.column)]
    if fmt == "kaldi_text":
        from .kaldi import text_rows

        return text_rows(path)
    if fmt in ("fairseq_wrd", "fairseq_ltr"):
        from .fairseq import label_rows

        return label_rows(path, _fairseq_manifest(node), fmt[-3:])
    if fmt == "librispeech":
        from .librispeech import transcript_rows as ls_rows

        return ls_rows(path)
    if fmt == "timit_txt":
        from .timit import text_rows

        return text_rows(path, _timit_names(node))
    if fmt == "lhotse":
        from .lhotse import transcript_rows as lh_rows

        return lh_rows(path)
    raise SpecError(f"{path}: unknown transcripts format {fmt!r}")


def alignment_rows(node) -> list[tuple[str, str, float, float, str]]:
    """(file:line, utt, start s, end s, label) of an ``Alignments``/``WordAlignments`` node's
    file(s); a CTM keyed by recording is re-based onto the corpus's Kaldi segments."""
    path, fmt = node.file(), node.format
    if fmt == "tsv":
        from .annotation_tsv import alignment_rows as tsv_rows

        return [(f"{path}:{ln}", u, s, e, lab) for ln, u, s, e, lab in tsv_rows(path)]
    if fmt == "textgrid":
        from .textgrid import alignment_rows as tg_rows

        return tg_rows(path, node.tier)
    if fmt == "ctm":
        from .ctm import alignment_rows as ctm_rows

        return ctm_rows(path, recording_segments(node.corpus),
                        skip_outside=node.unknown == "ignore")
    if fmt == "timit_phn":
        from .timit import phone_rows

        return phone_rows(path, _timit_names(node))
    if fmt == "timit_wrd":
        from .timit import word_rows

        return word_rows(path, _timit_names(node))
    raise SpecError(f"{path}: unknown alignments format {fmt!r}")


def _timit_names(node) -> str:
    """The corpus's sentence-name filter: annotations of sentences it drops are not read."""
    corpus = node.corpus
    return corpus.glob if corpus.layout == "timit" else "*.wav"


def _segments_file(corpus) -> Path | None:
    """The file that makes a corpus's utterances ranges of recordings (Kaldi ``segments``,
    Lhotse supervisions or cuts), if it has one."""
    if corpus.layout == "kaldi":
        path = corpus.path(corpus.manifest) / "segments"
        return path if path.is_file() else None
    if corpus.layout == "lhotse":
        if corpus.supervisions is not None:
            return corpus.path(corpus.supervisions)
        return corpus.path(corpus.manifest) if "cut" in Path(corpus.manifest).name else None
    return None


def recording_segments(corpus) -> dict | None:
    """recording → [(utt, start s, end s or None)] when the corpus's utterances are ranges of
    recordings (for re-basing a recording-keyed CTM); None when they are whole files."""
    path = _segments_file(corpus)
    if path is None:
        return None
    if corpus.layout == "kaldi":
        from .kaldi import segment_table
    else:
        from .lhotse import segment_table
    return segment_table(path)


def _fairseq_manifest(node) -> Path:
    corpus = node.corpus
    if corpus.layout != "fairseq":
        raise SpecError(f"{node.file()}: fairseq .wrd/.ltr lines follow a fairseq manifest; "
                        "use them with Corpus.fairseq(...)")
    return corpus.path(corpus.manifest)


def source_files(node) -> list[Path]:
    """Every file the node's reader reads."""
    path, fmt = node.file(), node.format
    if fmt in TREE_FORMATS and path.is_dir():
        if fmt == "librispeech":
            from .librispeech import transcript_files

            return transcript_files(path)
        if fmt == "textgrid":
            from .textgrid import files

            return files(path)
        from .timit import files_with

        return files_with(path, TIMIT_SUFFIX[fmt], _timit_names(node))
    if path.is_dir():
        raise SpecError(f"{path}: is a directory; format {fmt!r} reads one file")
    if fmt in ("fairseq_wrd", "fairseq_ltr"):
        return [path, _fairseq_manifest(node)]
    if fmt == "ctm" and _segments_file(node.corpus) is not None:
        return [path, _segments_file(node.corpus)]  # a recording-keyed CTM maps through it
    return [path]


def annotation_identity(node, mode: str) -> str:
    """One file's identity as is (so existing data versions hold); several files' digest."""
    from .sources import file_identity

    files = source_files(node)
    if len(files) == 1 and files[0] == node.file():
        return file_identity(files[0], mode)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f}\x00{file_identity(f, mode)}\x00".encode())
    return f"files:{len(files)}:{h.hexdigest()[:32]}"
