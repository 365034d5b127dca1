"""All model components in one import: networks, objectives, ``SSLModel`` and the presets.

The definitions live in ``components_networks`` (encoders, context networks),
``components_objectives`` (quantizers, mask, targets, losses), ``components_model``
(``SSLModel`` and its checks) and ``components_presets`` (paper models and their tiny twins).
"""

from .components_model import SSLModel, check_combination, check_label_alignment
from .components_networks import (
    Context,
    ConvContext,
    ConvFeatureEncoder,
    Encoder,
    FilterbankEncoder,
    LogMel,
    Transformer,
    Wav2VecEncoder,
)
from .components_objectives import (
    ClusterTargets,
    CodeTargets,
    CommitmentLoss,
    Contrastive,
    Diversity,
    FeaturePenalty,
    FutureFrames,
    GumbelQuantizer,
    KMeansQuantizer,
    Loss,
    MaskedPrediction,
    NoQuantizer,
    QuantizedLatents,
    Quantizer,
    SpanMask,
    StepPrediction,
    Target,
)
from .components_presets import (
    best_rq_model,
    hubert_model,
    vq_wav2vec_model,
    wav2vec2_model,
    wav2vec_model,
)
from .components_random_projection import RandomProjectionTargets

__all__ = [
    "best_rq_model",
    "ClusterTargets",
    "CodeTargets",
    "CommitmentLoss",
    "Context",
    "Contrastive",
    "ConvContext",
    "ConvFeatureEncoder",
    "Diversity",
    "Encoder",
    "FeaturePenalty",
    "FilterbankEncoder",
    "FutureFrames",
    "GumbelQuantizer",
    "KMeansQuantizer",
    "LogMel",
    "Loss",
    "MaskedPrediction",
    "NoQuantizer",
    "QuantizedLatents",
    "Quantizer",
    "RandomProjectionTargets",
    "SSLModel",
    "SpanMask",
    "StepPrediction",
    "Target",
    "Transformer",
    "Wav2VecEncoder",
    "check_combination",
    "check_label_alignment",
    "hubert_model",
    "vq_wav2vec_model",
    "wav2vec2_model",
    "wav2vec_model",
]
