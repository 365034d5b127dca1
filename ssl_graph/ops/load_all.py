"""Importing this module registers every built-in op."""

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
    quality,
)
