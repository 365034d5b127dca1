"""Node computations, one module per node kind (see ``base.py`` for the contract).

The package fills the op registry: importing it (as any ``ssl_graph.ops.*`` import does) imports
every built-in op module, each of which registers itself with ``base.register``; lookups
(``base.get_op``) never import anything. Only runs import this package, never planning.
"""

from . import (  # noqa: F401
    annotations,
    corpus,
    finetune,
    kmeans,
    labels,
    layer_features,
    layer_sweep,
    mfcc,
    pretrain,
    pretrained,
    probe,
    quality,
)
