"""What users write: spec bases (``base``), node definitions (``nodes``, ``annotations``,
``training``, ``layer_features``, ``finetune``), file loading (``loader``).

Each module imports only the ones below it: ``KMeans``/``Labels`` take any ``Features`` node, so
``LayerFeatures`` (which needs ``Pretrain``, which needs ``Labels``) is just one more subclass.
"""

from . import annotations, nodes  # noqa: F401
from .layer_features import LayerFeatures, LayerSweep  # noqa: F401
