"""BEST-RQ (Chiu et al. 2022): masked prediction of the codes a frozen random-projection quantizer
gives 4 stacked, normalised log-mel frames — no k-means step, no learned quantizer, so the
pipeline is one node (compare specs/hubert.py's labels → k-means → model).

`base` is the paper's recipe with our Transformer in place of its Conformer (see
`ssl_graph.specs.components_presets.best_rq_model`; needs GPUs and time). `tiny` trains on the
demo corpus on a CPU in minutes. Change the targets' `seed`, `stack` or codebook and rerun: only
the model retrains (a `stack` that does not match the encoder's 40 ms frames is refused at plan
time).

ssl-graph run specs/best_rq.py            (the tiny model)
ssl-graph run specs/best_rq.py base       (the paper recipe)
"""

from _corpus import corpus

from ssl_graph.presets import best_rq

base = best_rq(corpus, size="base")
tiny = best_rq(corpus, size="tiny")

# two codebooks (the paper's multi-softmax): two label sets, one softmax each
_targets = tiny.model.target.with_(codebooks=2)
tiny_2books = tiny.with_(model=tiny.model.with_(target=_targets))

__targets__ = ["tiny"]
