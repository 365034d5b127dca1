"""WavLM: HuBERT's masked prediction of cluster labels with gated relative position bias and
utterance mixing (Chen et al. 2022).

The paper trains WavLM Base on HuBERT-style k-means labels of a HuBERT layer; here the tiny twin
reads k-means (k=100) of MFCC frames, like HuBERT's first iteration, so it trains on the demo
corpus on a CPU in minutes. `base` is the paper's recipe (400k updates on 32 GPUs).

ssl-graph run specs/wavlm.py             (the tiny model)
ssl-graph run specs/wavlm.py base        (the paper recipe; needs GPUs and time)
"""

from _corpus import corpus

from ssl_graph import MFCC, KMeans, Labels
from ssl_graph.presets import wavlm

labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=100, fit_fraction=0.5))

base = wavlm(corpus, targets=labels, size="base")
tiny = wavlm(corpus, targets=labels, size="tiny")

__targets__ = ["tiny"]
