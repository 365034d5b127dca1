"""Importing this module registers every built-in op."""

from . import corpus, kmeans, labels, mfcc, pretrain, quality  # noqa: F401
