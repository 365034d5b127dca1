"""ssl_graph: declarative, incremental pipelines for self-supervised speech models.

Importing the package is cheap: specs are plain pydantic, torch is imported only by training
and model-feature ops, zarr only when arrays are touched.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: public name -> the module defining it; imported on first use (PEP 562), so a spec using
#: only MFCC and k-means never builds the training, fine-tuning and model-component classes
_EXPORTS = {
    **dict.fromkeys(("Component", "Node", "Spec", "SpecError", "runtime"), "specs.base"),
    **dict.fromkeys(("Corpus", "MFCC", "KMeans", "Labels"), "specs.nodes"),
    **dict.fromkeys(("Alignments", "WordAlignments", "Transcripts", "PhoneMap",
                     "ClusterQuality"), "specs.annotations"),
    **dict.fromkeys(("LayerFeatures", "LayerSweep"), "specs.layer_features"),
    **dict.fromkeys(("Pretrain", "Adam", "Schedule"), "specs.training"),
    **dict.fromkeys(("FineTune", "ASRScore", "Split"), "specs.finetune"),
    **dict.fromkeys(("BeamSearch", "NGramLM"), "specs.decoding"),
    "PretrainedModel": "specs.pretrained",
    "Probe": "specs.probe",
    "Project": "api",
}
#: submodules reachable as attributes without an import of their own (``ssl_graph.datasets``)
_SUBMODULES = ("datasets", "presets", "export")


def __getattr__(name: str):
    from importlib import import_module

    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ssl_graph' has no attribute {name!r}")

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def load(spec_path, store=None):
    """Bind a spec file to a store (default ``./store`` or $SSL_GRAPH_STORE)."""
    from .api import Project

    return Project(spec_path, store)


__all__ = [
    "Spec", "Component", "Node", "SpecError", "runtime",
    "Corpus", "Alignments", "WordAlignments", "Transcripts", "PhoneMap", "MFCC", "KMeans", "Labels", "ClusterQuality", "LayerFeatures", "LayerSweep", "Pretrain", "PretrainedModel",
    "Adam", "Schedule", "FineTune", "ASRScore", "Split", "BeamSearch", "NGramLM", "Probe", "load",
    "Project",
]
