"""Pictures: the pipeline graph, curves and cluster-quality heat maps (matplotlib, lazy)."""
