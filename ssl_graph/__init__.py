"""ssl_graph: declarative, incremental pipelines for self-supervised speech models.

Importing the package is cheap: specs are plain pydantic, torch is imported only by training
and model-feature ops, zarr only when arrays are touched.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .specs import LayerFeatures, LayerSweep  # noqa: E402
from .specs.annotations import Alignments, ClusterQuality, PhoneMap, Transcripts, WordAlignments  # noqa: E402
from .specs.base import Component, Node, Spec, SpecError, runtime  # noqa: E402
from .specs.decoding import BeamSearch, NGramLM  # noqa: E402
from .specs.finetune import ASRScore, FineTune, Split  # noqa: E402
from .specs.nodes import MFCC, Corpus, KMeans, Labels  # noqa: E402
from .specs.pretrained import PretrainedModel  # noqa: E402
from .specs.training import Adam, Pretrain, Schedule  # noqa: E402


def load(spec_path, store=None):
    """Bind a spec file to a store (default ``./store`` or $SSL_GRAPH_STORE)."""
    from .api import Project

    return Project(spec_path, store)


__all__ = [
    "Spec", "Component", "Node", "SpecError", "runtime",
    "Corpus", "Alignments", "WordAlignments", "Transcripts", "PhoneMap", "MFCC", "KMeans", "Labels", "ClusterQuality", "LayerFeatures", "LayerSweep", "Pretrain", "PretrainedModel",
    "Adam", "Schedule", "FineTune", "ASRScore", "Split", "BeamSearch", "NGramLM", "load",
]
