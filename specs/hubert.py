"""HuBERT iteration 1: masked prediction of k-means clusters of MFCC frames (k=100, 100 Hz
labels on 50 Hz model frames: every second label, as in fairseq).

ssl-graph run specs/hubert.py   (MFCC → k-means → labels → tiny HuBERT)
"""

from _corpus import corpus

from ssl_graph import MFCC, KMeans, Labels
from ssl_graph.presets import hubert

mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k=100, fit_fraction=0.5)
labels = Labels(kmeans=km)

base = hubert(corpus, targets=labels, size="base", steps=250_000)  # iteration 1: 250k steps
tiny = hubert(corpus, targets=labels, size="tiny")

__targets__ = ["tiny"]
