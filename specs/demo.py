"""The demo pipeline on the bundled corpus: MFCC → k-means (k=100) → labels → cluster quality.

Copy this file to start your own; every module-level node is named by its variable.
Run:  ssl-graph run specs/demo.py      Inspect:  ssl-graph plan specs/demo.py
"""

from ssl_graph import MFCC, ClusterQuality, Corpus, KMeans, Labels

corpus = Corpus(
    root="../data/demo/wav",  # relative to this file
    glob="*.flac",
    transcripts="../data/demo/transcripts.tsv",
    alignments="../data/demo/alignments.tsv",
)
mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k=100, fit_fraction=0.5, seed=0)
labels = Labels(kmeans=km)
quality = ClusterQuality(labels=labels)
