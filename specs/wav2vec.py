"""wav2vec (2019): a causal conv context predicts 12 future encoder frames (BCE, 10 negatives).

ssl-graph run specs/wav2vec.py   (trains `tiny`; name `base` to train the paper model)
"""

from _corpus import corpus

from ssl_graph.presets import wav2vec

base = wav2vec(corpus, size="base")
tiny = wav2vec(corpus, size="tiny")

__targets__ = ["tiny"]
