"""Importing this module registers every built-in op."""

from . import corpus, kmeans, labels, mfcc, quality  # noqa: F401
