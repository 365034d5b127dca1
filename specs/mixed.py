"""Variants no paper trains — each is a spec change, not new code.

* `hubert_gumbel`: HuBERT's masked prediction, but the targets are the codes of a Gumbel
  quantizer trained alongside (with the diversity loss), instead of offline k-means labels.
* `w2v2_kmeans_vq`: wav2vec 2.0's contrastive task over latents quantized by vq-wav2vec's online
  k-means codebook (with its commitment loss) instead of the Gumbel-softmax quantizer.
* `w2v2_random_projection`: wav2vec 2.0's waveform encoder, transformer and masks, trained on
  BEST-RQ's targets (a frozen random projection of log-mel frames, 2 × 10 ms stacked per 20 ms
  frame) with BEST-RQ's linear softmax head, instead of contrastive prediction of its own
  Gumbel codes: no quantizer to learn, no k-means to run.
* `hubert_teacher`: HuBERT's masked prediction of k-means labels *and* data2vec's regression of
  an EMA teacher's averaged top layers, from one student (two target sources, two losses).

ssl-graph run specs/mixed.py
"""

from _corpus import corpus

from ssl_graph import MFCC, KMeans, Labels
from ssl_graph.presets import hubert, wav2vec2
from ssl_graph.specs.components import (
    CodeTargets,
    CommitmentLoss,
    Contrastive,
    Diversity,
    FeaturePenalty,
    GumbelQuantizer,
    KMeansQuantizer,
    MaskedPrediction,
    NoQuantizer,
    RandomProjectionTargets,
    Regression,
    TeacherTargets,
)

labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=100, fit_fraction=0.5))
_hubert = hubert(corpus, targets=labels, size="tiny")

hubert_gumbel = _hubert.with_(
    model=_hubert.model.with_(
        quantizer=GumbelQuantizer(groups=2, entries=32, dim=64),
        target=CodeTargets(),
        losses=(MaskedPrediction(), Diversity(weight=0.1), FeaturePenalty(weight=10.0)),
    )
)

_w2v2 = wav2vec2(corpus, size="tiny")
w2v2_kmeans_vq = _w2v2.with_(
    model=_w2v2.model.with_(
        quantizer=KMeansQuantizer(groups=2, entries=32, dim=64),
        losses=(Contrastive(), CommitmentLoss(weight=1.0), FeaturePenalty(weight=10.0)),
    )
)

w2v2_random_projection = _w2v2.with_(
    model=_w2v2.model.with_(
        quantizer=NoQuantizer(),
        target=RandomProjectionTargets(stack=2, codebook_size=512, codebook_dim=16),
        losses=(MaskedPrediction(logits="linear"), FeaturePenalty(weight=10.0)),
        final_dim=0,
    )
)

hubert_teacher = _hubert.with_(
    model=_hubert.model.with_(
        target=(_hubert.model.target, TeacherTargets(ema_decay=0.99, ema_end_decay=0.999,
                                                     ema_anneal_end_step=300, top_k_layers=2)),
        losses=(MaskedPrediction(), Regression(), FeaturePenalty(weight=10.0)),
    )
)

__targets__ = ["hubert_gumbel", "w2v2_kmeans_vq", "w2v2_random_projection", "hubert_teacher"]
