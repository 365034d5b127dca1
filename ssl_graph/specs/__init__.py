"""What users write: spec bases (``base``), node definitions (``nodes``), file loading (``loader``).

Import order matters once: ``LayerFeatures`` needs ``Pretrain``, which needs the model
components, which need ``Labels``. The package initialiser (which runs before any submodule
import) loads the nodes first, then ``LayerFeatures``, and lets pydantic resolve the forward
reference ``FeatureNode = MFCC | "LayerFeatures"`` of KMeans/Labels.
"""

from . import annotations, nodes  # noqa: F401 - annotations after nodes (it imports them)
from .layer_features import LayerFeatures, LayerSweep  # noqa: F401

for _cls in (nodes.KMeans, nodes.Labels, annotations.ClusterQuality):
    _cls.model_rebuild(_types_namespace={"LayerFeatures": LayerFeatures})
