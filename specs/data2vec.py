"""data2vec audio: regress an EMA teacher's averaged, instance-normalised top layers at masked
frames (Baevski et al. 2022; fairseq examples/data2vec).

`base` is the paper's BASE recipe (400k updates on 16 GPUs — not for this laptop); `tiny` is its
twin that trains on the demo corpus on a CPU in minutes (2 layers, both averaged, a teacher that
moves within its 300 updates). The teacher is part of the node's weights and checkpoints.

ssl-graph run specs/data2vec.py          (the tiny model)
ssl-graph run specs/data2vec.py base     (the paper recipe; needs GPUs and time)
"""

from _corpus import corpus

from ssl_graph.presets import data2vec

base = data2vec(corpus, size="base")
tiny = data2vec(corpus, size="tiny")

__targets__ = ["tiny"]
