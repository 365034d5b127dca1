"""vq-wav2vec: wav2vec's objective on quantized features, Gumbel or online k-means codebooks.

ssl-graph run specs/vq_wav2vec.py   (trains both tiny variants)
"""

from _corpus import corpus

from ssl_graph.presets import vq_wav2vec

base = vq_wav2vec(corpus, size="base", quantizer="gumbel")
base_kmeans = vq_wav2vec(corpus, size="base", quantizer="kmeans")
tiny = vq_wav2vec(corpus, size="tiny", quantizer="gumbel")
tiny_kmeans = vq_wav2vec(corpus, size="tiny", quantizer="kmeans")

__targets__ = ["tiny", "tiny_kmeans"]
