"""HuBERT, two iterations, as in the paper (HB §IV-B/C; fairseq iter1/iter2 configs):

* iteration 1: k-means (k=100) of 39-d MFCC frames at 100 Hz → labels at label rate 100 → the
  model reads every second label (model frames are 50 Hz, ratio 2);
* iteration 2: k-means (k=500) of the iteration-1 model's layer-6 output at 50 Hz → labels at
  label rate 50 (ratio 1).

`base_*` are the paper models (250k / 400k updates on 32 GPUs — not for a laptop). `tiny_*` are
their twins on the demo corpus: the tiny transformer has 2 layers, so iteration 2 clusters its
layer 1. Change `tiny_km2`'s k or `tiny_feats2`'s layer and rerun: only the nodes after it rerun.

ssl-graph run specs/hubert.py            (the tiny pipeline)
ssl-graph run specs/hubert.py base_it2   (the paper pipeline; needs GPUs and time)
"""

from _corpus import corpus

from ssl_graph import MFCC, ClusterQuality, KMeans, Labels, LayerFeatures
from ssl_graph.presets import hubert

mfcc = MFCC(corpus=corpus)
km1 = KMeans(features=mfcc, k=100, fit_fraction=0.5)
labels1 = Labels(kmeans=km1)
quality1 = ClusterQuality(labels=labels1)

# ---- paper models
base_it1 = hubert(corpus, targets=labels1, size="base", steps=250_000)
base_feats2 = LayerFeatures(model=base_it1, layer=6)
base_km2 = KMeans(features=base_feats2, k=500, fit_fraction=0.1)
base_labels2 = Labels(kmeans=base_km2)
base_it2 = hubert(corpus, targets=base_labels2, size="base", steps=400_000)

# ---- tiny twins (CPU, minutes)
tiny_it1 = hubert(corpus, targets=labels1, size="tiny")
tiny_feats2 = LayerFeatures(model=tiny_it1, layer=1)
tiny_km2 = KMeans(features=tiny_feats2, k=500, fit_fraction=1.0)
tiny_labels2 = Labels(kmeans=tiny_km2)
tiny_quality2 = ClusterQuality(labels=tiny_labels2)
tiny_it2 = hubert(corpus, targets=tiny_labels2, size="tiny")

__targets__ = ["quality1", "tiny_quality2", "tiny_it2"]
