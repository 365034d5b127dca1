"""The data nodes of the clustering pipeline: corpus → features → k-means → labels → quality.

Only definitions live here (what users write in spec files); how each node is computed lives in
``ssl_graph/ops``. Paths are kept as written so a moved checkout keeps its fingerprints; they are
resolved against the directory of the spec file that declared them.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, PrivateAttr

from .base import Node, SpecError, later, runtime

#: set by the spec loader while it imports a spec file, so relative paths resolve against it
SPEC_DIR: contextvars.ContextVar[str | None] = contextvars.ContextVar("SPEC_DIR", default=None)


def resolve_path(base: str, rel: str) -> Path:
    """A path as written in a spec, resolved against the spec file's directory."""
    p = Path(os.path.expanduser(rel))
    return p if p.is_absolute() else Path(base) / p


#: Corpus fields that only name annotation files (versioned by their own nodes)
ANNOTATION_FIELDS = ("transcripts", "alignments", "transcripts_format", "alignments_format",
                     "speakers", "speakers_column")

Layout = Literal["files", "fairseq", "kaldi", "librispeech", "timit", "lhotse"]


class Corpus(Node):
    """16 kHz mono audio: a directory + glob, a TSV manifest (``utt<TAB>path``), or a community
    layout read by ``ssl_graph/formats`` (see the constructors ``Corpus.kaldi``, ``.fairseq``,
    ``.librispeech``, ``.timit``, ``.lhotse`` and ``docs/formats.md``).

    The fingerprint covers the definition; which utterances exist and their file identity
    (size + mtime, or a content hash with ``identity="hash"``) are scanned at plan time, so a
    grown corpus recomputes only its new utterances downstream. ``transcripts``/``alignments``
    are shorthands for ``Transcripts``/``Alignments`` nodes (``specs/annotations.py``) and not
    part of the fingerprint: annotations never invalidate audio-derived work.
    """

    per_utterance = True

    root: str | None = Field(
        None, description="directory holding the audio (relative to the spec file); optional "
        "when a manifest's paths are absolute")
    glob: str = Field("*.flac", description="files under root, e.g. '**/*.wav'")
    manifest: str | None = Field(
        None, description="TSV 'utt<TAB>path' instead of a glob; for a layout, its manifest "
        "(fairseq .tsv, Kaldi data dir, Lhotse recordings or cuts)")
    layout: Layout = later("files", description="how the corpus is laid out on disk")
    supervisions: str | None = later(None, description="Lhotse supervisions manifest")
    commands: Literal["refuse", "run"] = later(
        "refuse", description="Kaldi wav.scp commands other than plain decoders (flac, sox, "
        "ffmpeg, sph2pipe, read as their file): 'run' runs them with /bin/sh")
    transcripts: str | None = Field(None, description="TSV 'utt<TAB>text' (not fingerprinted)")
    alignments: str | None = Field(
        None, description="TSV 'utt<TAB>start<TAB>end<TAB>phone' (not fingerprinted)")
    transcripts_format: str = Field("tsv", description="format of transcripts= (Transcripts.format)")
    alignments_format: str = Field("tsv", description="format of alignments= (Alignments.format)")
    speakers: str | None = Field(None, description="TSV 'utt<TAB>speaker' (not fingerprinted)")
    speakers_column: int | str = Field(
        1, description="the speakers= TSV's speaker column: 0-based index or header name (e.g. "
        "'speaker' of a manifest 'utt<TAB>path<TAB>speaker')")
    sample_rate: int = Field(16000, ge=1)
    resample: bool = Field(False, description="resample other rates instead of refusing them")
    identity: Literal["stat", "hash"] = Field(
        "stat", description="'stat' = size+mtime (fast); 'hash' = content sha256 (robust)"
    )
    _base: str = PrivateAttr(default="")

    def model_post_init(self, __context) -> None:
        self._base = SPEC_DIR.get() or os.getcwd()

    def semantic(self) -> dict:
        out = super().semantic()
        for annotation in ANNOTATION_FIELDS:
            out.pop(annotation)
        return out

    # ---- community layouts (readers in ssl_graph/formats) -------------------------------
    @classmethod
    def kaldi(cls, data_dir: str, root: str | None = None, **fields) -> "Corpus":
        """A Kaldi data directory: ``wav.scp`` (files, and the standard decode pipes ``flac -c
        -d -s FILE |``, ``sox FILE -t wav - |``, lhotse's ``ffmpeg … -i FILE … pipe:1 |`` and
        ``sph2pipe -f wav FILE |``, read as FILE; other commands only with ``commands="run"``),
        optional ``segments`` (utterances as time ranges of long recordings), ``utt2spk``
        (speakers) and ``text`` (transcripts). Relative ``wav.scp`` paths resolve against
        ``root`` (default: the spec file's directory, like Kaldi's recipe directory)."""
        corpus = cls(layout="kaldi", manifest=data_dir, root=root, **fields)
        return corpus._with_found(transcripts=(f"{data_dir.rstrip('/')}/text", "kaldi_text"))

    @classmethod
    def fairseq(cls, tsv: str, root: str | None = None, **fields) -> "Corpus":
        """A fairseq wav2vec manifest (first line = root dir, then ``relpath<TAB>num_samples``);
        ``root`` overrides its first line. The ``.wrd`` (else ``.ltr``) file beside it, if any,
        becomes the transcripts. Utterance ids are the relative paths without extension."""
        corpus = cls(layout="fairseq", manifest=tsv, root=root, **fields)
        stem = tsv[:-4] if tsv.endswith(".tsv") else tsv
        wrd = f"{stem}.wrd"
        pick = (wrd, "fairseq_wrd") if corpus.path(wrd).is_file() else (f"{stem}.ltr", "fairseq_ltr")
        return corpus._with_found(transcripts=pick)

    @classmethod
    def librispeech(cls, root: str, **fields) -> "Corpus":
        """A LibriSpeech tree (``speaker/chapter/speaker-chapter-NNNN.flac`` and one
        ``speaker-chapter.trans.txt`` per chapter); ids are the file stems, speakers the
        ``speaker`` directories; the ``*.trans.txt`` files become the transcripts."""
        fields.setdefault("glob", "**/*.flac")
        corpus = cls(layout="librispeech", root=root, **fields)
        return corpus._with_found(transcripts=(root, "librispeech"))

    @classmethod
    def timit(cls, root: str, **fields) -> "Corpus":
        """A TIMIT tree (``DR*/SPEAKER/SENTENCE.WAV`` as NIST SPHERE, ``.PHN``, ``.TXT``; any
        case). Ids are ``speaker-sentence`` lower-cased (``fcjf0-sa1``), speakers the speaker
        directories; ``glob`` filters file names (``"s[ix]*.wav"`` drops SA sentences). The
        ``.TXT`` and ``.PHN`` files become the transcripts and the (61-phone) alignments."""
        fields.setdefault("glob", "*.wav")
        corpus = cls(layout="timit", root=root, **fields)
        return corpus._with_found(transcripts=(root, "timit_txt"), alignments=(root, "timit_phn"))

    @classmethod
    def lhotse(cls, manifest: str, supervisions: str | None = None, root: str | None = None,
               **fields) -> "Corpus":
        """Lhotse manifests (JSONL, gzipped or not): a cuts manifest (file name containing
        "cut"), or a recordings manifest with optional supervisions (each supervision becomes
        an utterance: a time range of its recording). Supervision texts become the transcripts
        (``Transcripts(format="lhotse")``), their speakers the speakers. Relative audio paths
        resolve against ``root`` (default: the spec file's directory)."""
        corpus = cls(layout="lhotse", manifest=manifest, supervisions=supervisions, root=root,
                     **fields)
        texts = supervisions if supervisions is not None else manifest
        if supervisions is None and "cut" not in Path(manifest).name:
            return corpus  # recordings alone carry no texts
        return corpus._with_found(transcripts=(texts, "lhotse"))

    def _with_found(self, **shorthands: tuple[str, str]) -> "Corpus":
        """Fill unset annotation shorthands with the layout's files that exist."""
        changes = {}
        for field, (rel, fmt) in shorthands.items():
            if getattr(self, field) is None and self.path(rel).exists():
                changes.update({field: rel, f"{field}_format": fmt})
        return self.with_(**changes) if changes else self

    def path(self, rel: str | None) -> Path | None:
        """Resolve a path field against the spec file's directory."""
        return None if rel is None else resolve_path(self._base, rel)

    @property
    def corpus(self) -> "Corpus":
        return self


class Features(Node):
    """A per-utterance node of frame vectors, what k-means fits and labels assign.

    The base class (rather than a union of the known kinds) lets ``KMeans``/``Labels`` accept any
    feature node, including ones defined downstream of them (``LayerFeatures`` needs ``Pretrain``,
    which needs ``Labels``), without forward references. Subclasses define ``corpus``,
    ``frame_rate``, ``frame_offset``, ``dim`` and ``min_samples``.
    """

    per_utterance = True


class MFCC(Features):
    """HuBERT iteration-1 features: Kaldi MFCC (13 ceps, 25 ms / 10 ms) + Δ + ΔΔ, 100 frames/s."""

    corpus: Corpus
    deltas: Literal[0, 1, 2] = Field(2, description="append Δ (1) or Δ and ΔΔ (2)")
    workers: int = runtime(1, ge=1, description="deprecated: `ssl-graph run --executor pool "
                           "--workers N`; N > 1 runs this node on a pool of N processes")

    @property
    def frame_rate(self) -> float:
        return 100.0

    @property
    def frame_offset(self) -> float:
        """Centre of frame 0 in seconds (window/2), to align frames with phone times."""
        return 200 / 16000

    @property
    def dim(self) -> int:
        return 13 * (1 + self.deltas)

    @property
    def window_samples(self) -> int:
        return 400

    @property
    def hop_samples(self) -> int:
        return 160

    @property
    def min_samples(self) -> int:
        """Shortest audio with one frame; shorter utterances are refused (see ``ops/base.py``)."""
        return self.window_samples


#: kept for specs that imported it: any feature node
FeatureNode = Features


class KMeans(Node):
    """Centroids fit on a seeded fraction of a feature node's frames.

    When the corpus grows, existing centroids are kept (refitting would silently relabel every
    utterance and invalidate every model trained on the labels); new utterances just get labels.
    If an utterance the fit used changes or disappears, the fit is stale. Set
    ``refit_on_growth=True`` to refit whenever utterances are added.
    """

    #: inertia is measured on each fit's own sample: not comparable across fit fractions
    metrics_measured_on: ClassVar[dict[str, tuple[str, ...]]] = {
        "inertia": ("fit_fraction", "features")}
    cost = 2
    features: FeatureNode
    k: int = Field(100, ge=2)
    fit_fraction: float = Field(0.1, gt=0.0, le=1.0, description="fraction of frames to fit on")
    seed: int = Field(0, ge=0)
    algorithm: Literal["lloyd", "lloyd_candidates", "minibatch"] = Field(
        "lloyd", description="lloyd: full-batch Lloyd; from 128-d up a frame first checks the "
        "centroids its bounds cannot rule out and skips the full GEMM when they prove its "
        "nearest (the labels a full pass gives); lloyd_candidates: the same (its name from when "
        "that was opt-in); minibatch: sklearn-style mini-batches")
    max_iter: int = Field(100, ge=1)
    n_init: int = Field(1, ge=1)
    tol: float = Field(1e-4, ge=0.0)
    batch_size: int = Field(10000, ge=1, description="mini-batch size (minibatch only)")
    refit_on_growth: bool = runtime(False, description="refit when utterances are added")

    @property
    def corpus(self) -> Corpus:
        return self.features.corpus


class Labels(Node):
    """Per-frame nearest-centroid ids for every utterance of a feature node."""

    per_utterance = True
    kmeans: KMeans
    features: FeatureNode | None = Field(
        None, description="features to label (default: the ones k-means was fit on)"
    )
    batch_frames: int = runtime(65536, description="frames per assignment batch", ge=1)

    def extra_inputs(self) -> list[tuple[str, Node]]:
        return [("kmeans.features", self.kmeans.features)] if self.features is None else []

    @property
    def source(self) -> FeatureNode:
        return self.features if self.features is not None else self.kmeans.features

    @property
    def corpus(self) -> Corpus:
        return self.source.corpus

    @property
    def frame_rate(self) -> float:
        return self.source.frame_rate

    @property
    def frame_offset(self) -> float:
        return self.source.frame_offset

    def check(self, resolve_name) -> None:
        src, fit = self.source, self.kmeans.features
        if src.dim != fit.dim:
            raise SpecError(
                f"{resolve_name(self)}: features have {src.dim} dims but k-means "
                f"{resolve_name(self.kmeans)} was fit on {fit.dim}-dim features"
            )
