"""A variant of the demo: iteration 2 clusters layer features into k=50 instead of 100.

Everything up to the layer features is the demo's own nodes (imported), so their caches are
shared; only km2 and what follows it is computed for this variant:

    ssl-graph run specs/demo_k50.py
    ssl-graph compare specs/demo.py specs/demo_k50.py
    ssl-graph report specs/demo.py specs/demo_k50.py
"""

from demo import FT, PRE, corpus, feats2, it1, km, labels, mfcc, quality  # noqa: F401
from demo import km2 as _demo_km2  # a leading underscore: not a node of this spec

from ssl_graph import ASRScore, ClusterQuality, Labels
from ssl_graph.presets import finetune, hubert

km2 = _demo_km2.with_(k=50)
labels2 = Labels(kmeans=km2)
quality2 = ClusterQuality(labels=labels2)
it2 = hubert(corpus, targets=labels2, size="tiny", **PRE)
ft = finetune(it2, units="char", labeled_minutes=2.0, size="tiny", **FT)
score = ASRScore(model=ft)
