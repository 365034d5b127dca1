"""What users write: spec bases (``base``), node definitions (``nodes``, ``annotations``,
``training``, ``layer_features``, ``finetune``, ``probe``), file loading (``loader``).

Each module imports only the ones below it: ``KMeans``/``Labels`` take any ``Features`` node, so
``LayerFeatures`` (which needs ``Pretrain``, which needs ``Labels``) is just one more subclass.
Nothing is imported here: a spec pays only for the node classes it uses.
"""


def __getattr__(name: str):
    if name in ("LayerFeatures", "LayerSweep"):
        from . import layer_features

        return getattr(layer_features, name)
    if name == "Probe":
        from . import probe

        return probe.Probe
    raise AttributeError(f"module 'ssl_graph.specs' has no attribute {name!r}")
