"""Community file formats, in and out: one module per format, nothing else knows a format exists.

Readers turn a layout (a TSV, an alignment file, ...) into plain rows with their line numbers, so
the node that owns the data can validate it and name ``file:line`` in every error.
"""
