"""The data nodes of the clustering pipeline: corpus → features → k-means → labels → quality.

Only definitions live here (what users write in spec files); how each node is computed lives in
``ssl_graph/ops``. Paths are kept as written so a moved checkout keeps its fingerprints; they are
resolved against the directory of the spec file that declared them.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

from pydantic import Field, PrivateAttr

from .base import Node, SpecError, runtime

#: set by the spec loader while it imports a spec file, so relative paths resolve against it
SPEC_DIR: contextvars.ContextVar[str | None] = contextvars.ContextVar("SPEC_DIR", default=None)


def resolve_path(base: str, rel: str) -> Path:
    """A path as written in a spec, resolved against the spec file's directory."""
    p = Path(os.path.expanduser(rel))
    return p if p.is_absolute() else Path(base) / p


#: Corpus fields that only name annotation files (versioned by their own nodes)
ANNOTATION_FIELDS = ("transcripts", "alignments")


class Corpus(Node):
    """16 kHz mono audio: a directory + glob, or a TSV manifest (``utt<TAB>path``).

    The fingerprint covers the definition; which utterances exist and their file identity
    (size + mtime, or a content hash with ``identity="hash"``) are scanned at plan time, so a
    grown corpus recomputes only its new utterances downstream. ``transcripts``/``alignments``
    are shorthands for ``Transcripts``/``Alignments`` nodes (``specs/annotations.py``) and not
    part of the fingerprint: annotations never invalidate audio-derived work.
    """

    per_utterance = True

    root: str = Field(description="directory holding the audio (relative to the spec file)")
    glob: str = Field("*.flac", description="files under root, e.g. '**/*.wav'")
    manifest: str | None = Field(None, description="TSV 'utt<TAB>path' instead of a glob")
    transcripts: str | None = Field(None, description="TSV 'utt<TAB>text' (not fingerprinted)")
    alignments: str | None = Field(
        None, description="TSV 'utt<TAB>start<TAB>end<TAB>phone' (not fingerprinted)")
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

    def path(self, rel: str | None) -> Path | None:
        """Resolve a path field against the spec file's directory."""
        return None if rel is None else resolve_path(self._base, rel)

    @property
    def corpus(self) -> "Corpus":
        return self


class MFCC(Node):
    """HuBERT iteration-1 features: Kaldi MFCC (13 ceps, 25 ms / 10 ms) + Δ + ΔΔ, 100 frames/s."""

    per_utterance = True
    corpus: Corpus
    deltas: Literal[0, 1, 2] = Field(2, description="append Δ (1) or Δ and ΔΔ (2)")
    workers: int = runtime(1, description="parallel worker processes", ge=1)

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


if TYPE_CHECKING:
    from .layer_features import LayerFeatures

#: resolved in ``specs/__init__.py`` once LayerFeatures exists (it depends on these nodes)
FeatureNode = Union[MFCC, "LayerFeatures"]


class KMeans(Node):
    """Centroids fit on a seeded fraction of a feature node's frames.

    When the corpus grows, existing centroids are kept (refitting would silently relabel every
    utterance and invalidate every model trained on the labels); new utterances just get labels.
    If an utterance the fit used changes or disappears, the fit is stale. Set
    ``refit_on_growth=True`` to refit whenever utterances are added.
    """

    features: FeatureNode
    k: int = Field(100, ge=2)
    fit_fraction: float = Field(0.1, gt=0.0, le=1.0, description="fraction of frames to fit on")
    seed: int = Field(0, ge=0)
    algorithm: Literal["lloyd", "minibatch"] = "lloyd"
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
