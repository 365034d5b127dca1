"""The demo's two claims across seeds (issue 21; results in docs/results.md):

(a) targets from a trained model's layer beat MFCC targets — PNMI of k-means (k=100) of every
    layer of an iteration-1 HuBERT vs of MFCC, and frame phone-classification probes (``pc``);
(b) pre-training helps when labels are few — CTC character error of fine-tuning the pretrained
    model vs the same architecture from scratch, at two labeled budgets.

Both are measured for two iteration-1 recipes: the demo's (1500 updates, ``it1_s<seed>``) and
four times as many updates (6000, ``it1_long4_s<seed>``: about 15 minutes of training on one
core, the demo's CPU budget), whose layers cluster better than MFCC.

(c) the README's variant: iteration-2 targets from k=50 vs k=100 clusters of it1's layer 1
    (``km2_k50_s<seed>``, ...), each trained into an it2 and fine-tuned on the demo's 2 minutes
    of labels (``score2_k50_s<seed>`` vs ``score2_k100_s<seed>``).

Each side runs with seeds 0, 1, 2 (the model's training seed, its k-means seed, the probe's and
fine-tune's seed; the MFCC side reseeds its k-means and probe). Node names end in ``_s<seed>``,
so ``ssl-graph report specs/study.py`` groups them into one point with an error bar per variant.

    ssl-graph run specs/study.py --store /tmp/study_store            # everything (~2 h on 2 cores)
    ssl-graph run specs/study.py --store /tmp/study_store q_it1_L1_s0  # one node and its inputs
    ssl-graph report specs/study.py --store /tmp/study_store --format md

``SSL_GRAPH_STUDY_SEEDS=0`` runs one seed (a quick look); the incremental engine reuses every
shared upstream node (MFCC, its labels, each model) across the variants.
"""

import os

from demo import PRE, corpus, labels, mfcc  # noqa: F401  (the demo's own nodes: one cache)

from ssl_graph import (
    ASRScore,
    ClusterQuality,
    KMeans,
    Labels,
    LayerFeatures,
    LayerSweep,
    Probe,
)
from ssl_graph.presets import finetune, finetune_from_scratch, hubert
from ssl_graph.specs.components import wav2vec2_model

SEEDS = tuple(int(s) for s in os.environ.get("SSL_GRAPH_STUDY_SEEDS", "0,1,2").split(","))
QUICK = os.environ.get("SSL_GRAPH_DEMO_QUICK") == "1"
FT = dict(steps=6, batch_seconds=8.0) if QUICK else dict(steps=600)
PC = dict(steps=6) if QUICK else dict(steps=400)
#: labeled budgets of claim (b), minutes (the corpus has 6.4 min outside the test split)
BUDGETS = (1.0, 4.0)
LAYERS = (0, 1, 2)  # the tiny model: context input and its two transformer layers
#: iteration-1 recipes (name suffix -> changes to the demo's): the demo's, and 4x the updates
RECIPES = {"": {}, "_long4": dict(steps=4 * PRE.get("steps", 6))}
#: iteration-2 cluster counts of claim (c)
K2 = (50, 100)

_nodes: dict = {}


def _add(name, node):
    _nodes[name] = node
    return node


for s in SEEDS:
    # (a) the MFCC side: k-means reseeded, the same recipe as the demo's `km`
    _km = _add(f"km_mfcc_s{s}", KMeans(features=mfcc, k=100, fit_fraction=0.5, seed=s))
    _add(f"q_mfcc_s{s}", ClusterQuality(labels=_add(f"labels_mfcc_s{s}", Labels(kmeans=_km))))
    _add(f"pc_mfcc_s{s}", Probe(upstream=mfcc, task="pc", seed=s, **PC))
    # (a) the model side: iteration 1 on the demo's MFCC labels, every layer clustered
    for recipe, steps in RECIPES.items():  # (a) and (b) for each iteration-1 recipe
        _it1 = _add(f"it1{recipe}_s{s}", hubert(corpus, targets=labels, size="tiny",
                                                **{**PRE, "seed": s, **steps}))
        _sweep = _add(f"sweep_it1{recipe}_s{s}", LayerSweep(model=_it1, layers=LAYERS))
        for layer in LAYERS:
            _kl = _add(f"km_it1{recipe}_L{layer}_s{s}", KMeans(features=_sweep.layer(layer),
                                                               k=100, fit_fraction=1.0, seed=s))
            _add(f"q_it1{recipe}_L{layer}_s{s}", ClusterQuality(
                labels=_add(f"labels_it1{recipe}_L{layer}_s{s}", Labels(kmeans=_kl))))
        _add(f"pc_it1{recipe}_s{s}", Probe(upstream=_it1, task="pc", seed=s, **PC))
        # (b) fine-tuning the pretrained model vs the same architecture from scratch
        for minutes in BUDGETS:
            m = f"{minutes:g}m"
            _ft = _add(f"ft{recipe}_{m}_s{s}", finetune(
                _it1, units="char", labeled_minutes=minutes, size="tiny", seed=s, **FT))
            _add(f"score{recipe}_{m}_s{s}", ASRScore(model=_ft))
    for minutes in BUDGETS:
        m = f"{minutes:g}m"
        _sc = _add(f"scratch_{m}_s{s}", finetune_from_scratch(
            wav2vec2_model("tiny"), corpus, units="char", labeled_minutes=minutes, size="tiny",
            seed=s, **FT))
        _add(f"scratch_score_{m}_s{s}", ASRScore(model=_sc))
    # (c) iteration 2 on k=50 vs k=100 clusters of the demo recipe's it1, layer 1 (the demo's)
    _feats2 = _add(f"feats2_s{s}", LayerFeatures(model=_nodes[f"it1_s{s}"], layer=1))
    for k in K2:
        _km2 = _add(f"km2_k{k}_s{s}", KMeans(features=_feats2, k=k, fit_fraction=1.0, seed=s))
        _l2 = _add(f"labels2_k{k}_s{s}", Labels(kmeans=_km2))
        _add(f"quality2_k{k}_s{s}", ClusterQuality(labels=_l2))
        _it2 = _add(f"it2_k{k}_s{s}", hubert(corpus, targets=_l2, size="tiny",
                                             **{**PRE, "seed": s}))
        _ft2 = _add(f"ft2_k{k}_s{s}", finetune(_it2, units="char", labeled_minutes=2.0,
                                               size="tiny", seed=s, **FT))
        _add(f"score2_k{k}_s{s}", ASRScore(model=_ft2))


# why iteration 1 clusters worse than MFCC: one knob at a time against the demo recipe, seed 0
# (`SSL_GRAPH_STUDY_VARIANT_SEEDS=0,1,2` for more); every layer of each is clustered
_tiny = hubert(corpus, targets=labels, size="tiny", **PRE).model
_ctx = _tiny.context
VARIANTS = {
    "init": dict(steps=1),  # (nearly) untrained: how far 1500 updates moved the features
    "long": dict(steps=2 * PRE.get("steps", 6)),  # twice the updates (HuBERT Table VII)
    "lr5e4": dict(optimizer=PRE["optimizer"].with_(lr=5e-4)) if "optimizer" in PRE else {},
    "mask50": dict(model=_tiny.with_(mask=_tiny.mask.with_(prob=0.5))),
    "deep4": dict(model=_tiny.with_(context=_ctx.with_(layers=4))),  # 4 layers, same width
    "wide": dict(model=_tiny.with_(context=_ctx.with_(layers=4, dim=256, ffn_dim=1024),
                                   final_dim=128)),
}
VARIANT_SEEDS = tuple(int(s) for s in
                      os.environ.get("SSL_GRAPH_STUDY_VARIANT_SEEDS", "0").split(","))
for name, change in VARIANTS.items():
    for s in VARIANT_SEEDS:
        _it = _add(f"it1_{name}_s{s}", hubert(corpus, targets=labels, size="tiny",
                                              **{**PRE, "seed": s}).with_(**change))
        _layers = tuple(range(_it.model.context.layers + 1))
        _sw = _add(f"sweep_it1_{name}_s{s}", LayerSweep(model=_it, layers=_layers))
        for layer in _layers:
            _kl = _add(f"km_it1_{name}_L{layer}_s{s}", KMeans(
                features=_sw.layer(layer), k=100, fit_fraction=1.0, seed=s))
            _add(f"q_it1_{name}_L{layer}_s{s}", ClusterQuality(
                labels=_add(f"labels_it1_{name}_L{layer}_s{s}", Labels(kmeans=_kl))))

globals().update(_nodes)
