"""wav2vec 2.0: contrastive prediction of Gumbel-quantized latents at masked frames.

`base` is the paper's BASE recipe (400k updates on 64 GPUs — not for this laptop); `tiny` is its
twin that trains on the demo corpus on a CPU in minutes. `run` builds only `__targets__` unless
you name nodes:  ssl-graph run specs/wav2vec2.py   /   ssl-graph run specs/wav2vec2.py base
"""

from _corpus import corpus

from ssl_graph.presets import wav2vec2

base = wav2vec2(corpus, size="base")
tiny = wav2vec2(corpus, size="tiny")

__targets__ = ["tiny"]
