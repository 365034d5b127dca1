"""The bundled demo corpus, shared by the example specs (``from _corpus import corpus``)."""

from ssl_graph import Corpus

corpus = Corpus(
    root="../data/demo/wav",
    transcripts="../data/demo/transcripts.tsv",
    alignments="../data/demo/alignments.tsv",
)
