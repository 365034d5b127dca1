"""The whole loop on the bundled corpus, with tiny models on the CPU:

MFCC → k-means (k=100) → labels → HuBERT iteration 1 → layer features → k-means → labels →
HuBERT iteration 2 → CTC fine-tuning on 2 minutes of labels, and the same fine-tuning from
scratch as the baseline; cluster quality (PNMI) and error rates (CER/WER) land in the store.
SUPERB-style probes of the frozen upstreams (MFCC, it1, it2): phone recognition (PER) and
speaker identification (accuracy), each a weighted sum of the layers and a linear head.

    ssl-graph run specs/demo.py        # computes what is stale (everything, the first time)
    ssl-graph report specs/demo.py     # the numbers and the pictures

Copy this file to start your own; every module-level node is named by its variable.
SSL_GRAPH_DEMO_QUICK=1 shrinks every training to a few steps (the test suite runs it that way).
"""

import os

from ssl_graph import (
    MFCC,
    Adam,
    ASRScore,
    ClusterQuality,
    Corpus,
    KMeans,
    Labels,
    LayerFeatures,
    Probe,
)
from ssl_graph.presets import finetune, finetune_from_scratch, hubert
from ssl_graph.specs.components import wav2vec2_model

QUICK = os.environ.get("SSL_GRAPH_DEMO_QUICK") == "1"
DATA = os.environ.get("SSL_GRAPH_DEMO_DATA", "../data/demo")  # relative to this file
# tiny HuBERT: 1500 updates of 12 s at lr 2e-3 (about 3 minutes each on 2 cores)
PRE = (dict(steps=6, batch_seconds=4.0, crop_seconds=1.0) if QUICK
       else dict(steps=1500, optimizer=Adam(lr=2e-3)))
FT = dict(steps=6, batch_seconds=8.0) if QUICK else dict(steps=600)
PROBE = dict(steps=6) if QUICK else dict(steps=300)

corpus = Corpus(
    root=f"{DATA}/wav",
    transcripts=f"{DATA}/transcripts.tsv",
    alignments=f"{DATA}/alignments.tsv",
    speakers=f"{DATA}/speakers.tsv",
)

# iteration 1 targets: k-means of MFCC frames (HuBERT §IV-B)
mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k=100, fit_fraction=0.5, seed=0)
labels = Labels(kmeans=km)
quality = ClusterQuality(labels=labels)

it1 = hubert(corpus, targets=labels, size="tiny", **PRE)

# iteration 2 targets: k-means of a layer of the iteration-1 model (the tiny model has 2 layers)
feats2 = LayerFeatures(model=it1, layer=1)
km2 = KMeans(features=feats2, k=100, fit_fraction=1.0, seed=0)
labels2 = Labels(kmeans=km2)
quality2 = ClusterQuality(labels=labels2)

it2 = hubert(corpus, targets=labels2, size="tiny", **PRE)

# fine-tuning: the same 2 minutes of labels, with and without pre-training
ft = finetune(it2, units="char", labeled_minutes=2.0, size="tiny", **FT)
score = ASRScore(model=ft)
# from scratch: the same encoder + transformer (the tiny HuBERT and wav2vec 2.0 backbones are
# identical), untrained; taking it from wav2vec2_model keeps it independent of HuBERT's labels
scratch = finetune_from_scratch(wav2vec2_model("tiny"), corpus, units="char",
                                labeled_minutes=2.0, size="tiny", **FT)
scratch_score = ASRScore(model=scratch)

# SUPERB probes: frozen upstream, softmax-weighted sum of all its layers (one LayerSweep pass,
# cached), a linear head; the recipe is fixed per task so the three upstreams compare
pr_mfcc = Probe(upstream=mfcc, task="pr", **PROBE)
sid_mfcc = Probe(upstream=mfcc, task="sid", **PROBE)
pr_it1 = Probe(upstream=it1, task="pr", **PROBE)
sid_it1 = Probe(upstream=it1, task="sid", **PROBE)
pr_it2 = Probe(upstream=it2, task="pr", **PROBE)
sid_it2 = Probe(upstream=it2, task="sid", **PROBE)
