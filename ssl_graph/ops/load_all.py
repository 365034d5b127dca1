"""Importing this module registers every built-in op."""

from . import annotations, corpus, finetune, kmeans, labels, layer_features, mfcc, pretrain, quality  # noqa: F401
