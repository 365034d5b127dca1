"""Community file formats, in and out: one module per format, nothing else knows a format exists.

Readers turn a layout (a TSV, an alignment file, a corpus tree, ...) into plain rows keyed by
``file:line``, so the node that owns the data can validate it and name the line in every error.
In: ``tsv``/``annotation_tsv`` (manifests, annotation TSVs), ``kaldi``, ``fairseq``,
``librispeech``, ``timit``, ``lhotse`` (corpus layouts, dispatched by ``layouts``), ``textgrid``,
``ctm`` (alignments, word alignments; annotation readers dispatched by ``readers``). Out:
``fairseq_units``, ``ctm``/``annotation_tsv`` (segments). ``sources``: what a corpus entry points
at (a file, a range of one, a command's output) and a file's identity.
Models (transformers directories, ARPA language models) are ``ssl_graph.model_io``.
See docs/formats.md.
"""
