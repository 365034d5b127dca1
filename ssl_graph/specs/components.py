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
    GatedRelativePositionBias,
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
    Regression,
    SpanMask,
    StepPrediction,
    Target,
    TeacherTargets,
    UtteranceMixing,
)
from .components_presets import hubert_model, vq_wav2vec_model, wav2vec2_model, wav2vec_model

__all__ = [
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
    "FutureFrames",
    "GatedRelativePositionBias",
    "GumbelQuantizer",
    "KMeansQuantizer",
    "Loss",
    "MaskedPrediction",
    "NoQuantizer",
    "QuantizedLatents",
    "Quantizer",
    "Regression",
    "SSLModel",
    "SpanMask",
    "StepPrediction",
    "Target",
    "TeacherTargets",
    "Transformer",
    "UtteranceMixing",
    "Wav2VecEncoder",
    "check_combination",
    "check_label_alignment",
    "hubert_model",
    "vq_wav2vec_model",
    "wav2vec2_model",
    "wav2vec_model",
]
