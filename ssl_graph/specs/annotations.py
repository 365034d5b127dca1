"""Annotations as inputs of their own: ``Alignments``, ``Transcripts``, ``PhoneMap``, and the
node that scores labels against alignments (``ClusterQuality``).

Audio identity and annotation identity are versioned separately: an annotation node's data
version is the content hash of its file, so editing or re-pointing alignments restales exactly
the nodes that read them (quality, phone fine-tuning, PER) and never the audio-derived chain
(corpus, features, k-means, labels, pre-training). ``Corpus(transcripts=..., alignments=...)``
stays as a shorthand: those fields are not part of the corpus's fingerprint, and the nodes that
need annotations build the matching ``Transcripts``/``Alignments`` from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, PrivateAttr, model_validator

from .base import Component, Node, SpecError, later
from .nodes import SPEC_DIR, Corpus, Labels, resolve_path

#: readers in ssl_graph/formats (dispatched by audio/annotations.py)
TranscriptFormat = Literal["tsv", "kaldi_text", "fairseq_wrd", "fairseq_ltr", "librispeech",
                           "timit_txt", "lhotse"]
AlignmentFormat = Literal["tsv", "textgrid", "ctm", "timit_phn"]
WordFormat = Literal["tsv", "textgrid", "ctm", "timit_wrd"]

#: word-alignment labels that mark pauses, not words (MFA's empty intervals, Kaldi's <eps>,
#: TIMIT's h#/pau should a .WRD hold them): dropped, so a pause is a gap between words
DEFAULT_PAUSES = ("", "<eps>", "<sil>", "sil", "sp", "h#", "pau")

#: alignment labels that mark pauses, not phones (Kaldi/MFA silence, spoken noise, empty)
DEFAULT_SILENCE = ("sil", "sp", "spn", "")

#: TIMIT's standard 61 → 39 folding (Lee & Hon, 1989; as in Kaldi's timit recipe): closures,
#: ``h#``, ``pau`` and ``epi`` become silence, the glottal stop ``q`` is deleted ("")
TIMIT_61_TO_39 = {
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l",
    "em": "m", "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
    "pcl": "sil", "tcl": "sil", "kcl": "sil", "bcl": "sil", "dcl": "sil", "gcl": "sil",
    "h#": "sil", "pau": "sil", "epi": "sil", "q": "",
}


class PhoneMap(Component):
    """Folds alignment labels into a phone set and names its silences.

    ``mapping`` sends a label to another ("" deletes the segment, its frames then count as
    unaligned); labels not in it are kept. ``silence`` lists the labels (after folding) that are
    pauses: phone vocabularies and PER drop them (CTC's blank covers pauses), cluster quality
    keeps them as one more class, as HuBERT's PNMI does.
    """

    mapping: dict[str, str] = Field(default_factory=dict)
    silence: tuple[str, ...] = DEFAULT_SILENCE

    @classmethod
    def timit_39(cls) -> "PhoneMap":
        """The standard TIMIT 61 → 39 folding."""
        return cls(mapping=TIMIT_61_TO_39, silence=DEFAULT_SILENCE)

    def fold(self, label: str) -> str | None:
        """The label after folding; None when the segment is deleted."""
        out = self.mapping.get(label, label)
        return None if out == "" and label != "" else out

    def is_silence(self, label: str) -> bool:
        return label in self.silence


class Annotation(Node):
    """A per-utterance annotation file (or tree of files) of a corpus; fresh while its content
    is unchanged."""

    cost = 0

    corpus: Corpus
    path: str = Field(description="the file, or the tree for per-utterance formats (relative "
                      "to the spec file)")
    unknown: Literal["error", "ignore"] = Field(
        "error", description="rows naming utterances the corpus does not hold: refuse or skip")
    _base: str = PrivateAttr(default="")

    def model_post_init(self, __context) -> None:
        self._base = SPEC_DIR.get() or self.corpus._base

    def file(self) -> Path:
        return resolve_path(self._base, self.path)


class Alignments(Annotation):
    """Time-aligned phone segments: ``utt<TAB>start<TAB>end<TAB>phone`` in seconds.

    Checked whenever the file (or the corpus) changes, at plan time, with ``file:line`` errors:
    unknown utterances, negative, empty, unsorted or overlapping segments; segments may end at
    most ``end_tolerance`` seconds after their audio does (checked once the audio's length is
    known: at plan time for scanned audio, otherwise before anything reads the alignments).
    """

    format: AlignmentFormat = Field("tsv", description="see docs/formats.md")
    tier: str | None = later(
        None, description="TextGrid interval tier (default: the only one, else 'phones')")
    phones: PhoneMap = PhoneMap()
    end_tolerance: float = Field(0.05, ge=0.0, description="seconds a segment may overrun the audio")

    #: phones tile the time axis: a segment starting before the previous one ends is refused
    allows_overlap: ClassVar[bool] = False

    def label(self, raw: str) -> str | None:
        """The stored label of a row; None drops the row (``phones`` deletes it)."""
        return self.phones.fold(raw)


class WordAlignments(Annotation):
    """Time-aligned words (TIMIT ``.WRD``, a TextGrid ``words`` tier, a word CTM, or a TSV
    ``utt<TAB>start<TAB>end<TAB>word`` in seconds), for word-segmentation work.

    Words are not phones: they may overlap (TIMIT gives a phone shared by two words run
    together to both, so their sample ranges overlap) and leave gaps (pauses belong to no
    word), so only unknown utterances, negative or empty segments, rows not sorted by start,
    and segments past the audio's end are refused. Being a kind of their own, word alignments
    cannot be scored as phones by mistake (``ClusterQuality``/phone ``FineTune`` take
    ``Alignments``).
    """

    format: WordFormat = Field("tsv", description="see docs/formats.md")
    tier: str = Field("words", description="TextGrid interval tier holding the words")
    pauses: tuple[str, ...] = Field(DEFAULT_PAUSES, description="labels that are pauses, not "
                                    "words: dropped")
    end_tolerance: float = Field(0.05, ge=0.0, description="seconds a segment may overrun the audio")

    allows_overlap: ClassVar[bool] = True

    @classmethod
    def timit(cls, corpus: Corpus, **fields) -> "WordAlignments":
        """The ``.WRD`` files of a ``Corpus.timit`` tree (as its ``.PHN`` are its alignments)."""
        if corpus.layout != "timit":
            raise SpecError(f"WordAlignments.timit: the corpus is a {corpus.layout!r} corpus; "
                            "it takes a Corpus.timit(...) (else give path= and format=)")
        return cls(corpus=corpus, path=corpus.root, format="timit_wrd", **fields)

    def label(self, raw: str) -> str | None:
        return None if raw in self.pauses else raw


class Transcripts(Annotation):
    """Utterance texts: ``utt<TAB>text`` (``column`` picks another column of a wider TSV), or
    a layout's transcripts (``format``: Kaldi ``text``, fairseq ``.wrd``/``.ltr``, LibriSpeech
    ``*.trans.txt``, TIMIT ``.TXT``, Lhotse supervisions; see docs/formats.md)."""

    format: TranscriptFormat = later("tsv", description="see docs/formats.md")
    column: int | str = Field(1, description="0-based column index, or the header's name for it")


def corpus_alignments(corpus: Corpus) -> Alignments | None:
    """The ``Alignments`` a corpus's ``alignments=`` shorthand stands for."""
    if corpus.alignments is None:
        return None
    return Alignments(corpus=corpus, path=corpus.alignments, format=corpus.alignments_format)


def corpus_transcripts(corpus: Corpus) -> Transcripts | None:
    if corpus.transcripts is None:
        return None
    return Transcripts(corpus=corpus, path=corpus.transcripts, format=corpus.transcripts_format)


class ClusterQuality(Node):
    """Phone purity, cluster purity and PNMI of labels against phone alignments.

    ``alignments`` defaults to the labels' corpus's ``alignments=`` file; pass several
    ``Alignments`` (e.g. TIMIT's 61 phones and their 39-phone folding) to score one labels cache
    against each without recomputing it.
    """

    cost = 0
    labels: Labels
    alignments: Alignments | None = Field(None, description="default: the corpus's alignments=")

    @model_validator(mode="before")
    @classmethod
    def _default_alignments(cls, data):
        if isinstance(data, dict) and isinstance(data.get("alignments"), WordAlignments):
            raise ValueError("alignments: word alignments are not phones; ClusterQuality scores "
                             "labels against phone Alignments(...)")
        if isinstance(data, dict) and data.get("alignments") is None:
            labels = data.get("labels")
            if isinstance(labels, Labels):
                data = {**data, "alignments": corpus_alignments(labels.corpus)}
        return data

    @property
    def corpus(self) -> Corpus:
        return self.labels.corpus

    def check(self, resolve_name) -> None:
        if self.alignments is None:
            raise SpecError(
                f"{resolve_name(self)}: corpus {resolve_name(self.corpus)} has no phone "
                "alignments; set Corpus(alignments='path/to/alignments.tsv') or "
                "ClusterQuality(alignments=Alignments(corpus=..., path=...))"
            )
        if self.alignments.corpus != self.labels.corpus:
            raise SpecError(
                f"{resolve_name(self)}: alignments {resolve_name(self.alignments)} belong to "
                f"corpus {resolve_name(self.alignments.corpus)}, the labels to "
                f"{resolve_name(self.labels.corpus)}; use alignments of the labelled corpus"
            )
