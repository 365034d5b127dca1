"""Objective components: quantizers, mask policy, target sources and losses.

A model's objective is the combination (quantizer, mask, target, losses); the valid
combinations are checked by :class:`~ssl_graph.specs.components_model.SSLModel`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Component
from .components_random_projection import RandomProjectionTargets
from .nodes import Labels

# ----------------------------------------------------------------------------- quantizers


class GumbelQuantizer(Component):
    """Product quantizer with straight-through hard Gumbel-softmax (vq-wav2vec, wav2vec 2.0).

    ``dim`` is the concatenated code width (``dim // groups`` per entry). The assignment
    logits come from one Linear (wav2vec 2.0, ``depth=1``) or an MLP of ``depth`` layers with
    ``hidden_factor`` × input width hidden units (vq-wav2vec: depth 2, factor 2 = 1024).
    Temperature per update: ``max(start · decay**step, end)``.
    """

    groups: int = Field(2, ge=1)
    entries: int = Field(320, ge=2)
    dim: int = Field(256, ge=1, description="vq_dim: code vector width over all groups")
    temperature: tuple[float, float, float] = (2.0, 0.5, 0.999995)  # (start, end, decay)
    combine_groups: bool = Field(False, description="one codebook shared by all groups")
    depth: int = Field(1, ge=1)
    hidden_factor: int = Field(2, ge=1)
    activation: Literal["gelu", "relu"] = "gelu"

    @model_validator(mode="after")
    def _check(self):
        if self.dim % self.groups:
            raise ValueError(f"GumbelQuantizer.dim={self.dim} not divisible by groups")
        start, end, decay = self.temperature
        if not (start > 0 and end > 0 and 0 < decay <= 1):
            raise ValueError("GumbelQuantizer.temperature=(start>0, end>0, 0<decay<=1)")
        return self

    def temperature_at(self, step: int) -> float:
        start, end, decay = self.temperature
        return max(start * decay**step, end)


class KMeansQuantizer(Component):
    """vq-wav2vec online k-means VQ: grouped 1×1 conv + GroupNorm(G), nearest code per group.

    Trained with :class:`CommitmentLoss`: MSE(ẑ, sg z) + ``gamma`` · MSE(z, sg ẑ).
    """

    groups: int = Field(2, ge=1)
    entries: int = Field(320, ge=2)
    dim: int = Field(512, ge=1, description="code vector width over all groups")
    gamma: float = Field(0.25, ge=0.0)
    combine_groups: bool = False

    @model_validator(mode="after")
    def _check(self):
        if self.dim % self.groups:
            raise ValueError(f"KMeansQuantizer.dim={self.dim} not divisible by groups")
        return self


class NoQuantizer(Component):
    """No quantization (wav2vec; HuBERT; the wav2vec 2.0 continuous-target ablation)."""


Quantizer = GumbelQuantizer | KMeansQuantizer | NoQuantizer

# ----------------------------------------------------------------------------- masking


class SpanMask(Component):
    """Span masking with fairseq ``compute_mask_indices`` semantics (reference §2a).

    ``prob`` is the span-start probability × ``length`` (0.65 ⇒ p=6.5%, ≈49% masked). Time
    spans are replaced by a learned embedding (``replace="embedding"``, wav2vec 2.0 / HuBERT)
    or by Gaussian noise N(0, ``noise_std``²) (``replace="noise"``, BEST-RQ: 0.1), drawn per
    utterance from its own stream (``nn/row_random.py``) so a split batch draws the same; channel
    spans (``channel_prob``) are zeroed over all frames after the time mask.

    Both replace frames at the context network's input (after the encoder, its LayerNorm and
    projection), as wav2vec 2.0 does. BEST-RQ masks the normalised log-mel frames before its
    conv subsampling instead; we mask the subsampled frames because the mask, the labels and the
    loss are all defined on model frames (the same spans for every encoder, waveform or log-mel),
    and a subsampling conv (7 mel frames wide at 4×) would otherwise let a masked frame's
    neighbours leak its content into it.
    """

    prob: float = Field(0.65, ge=0.0, lt=1.0)
    length: int = Field(10, ge=1)
    mask_type: Literal["static", "uniform", "normal", "poisson"] = "static"
    mask_other: float = Field(0.0, ge=0.0, description="uniform: min length; normal: std")
    min_masks: int = Field(2, ge=0, description="fairseq wav2vec 2.0 / HuBERT pass 2")
    no_overlap: bool = False
    min_space: int = Field(0, ge=0)
    require_same_masks: bool = True
    mask_dropout: float = Field(0.0, ge=0.0, le=1.0)
    add_masks: bool = False
    channel_prob: float = Field(0.0, ge=0.0, le=1.0)
    channel_length: int = Field(10, ge=1)
    channel_type: Literal["static", "uniform", "normal", "poisson"] = "static"
    channel_other: float = Field(0.0, ge=0.0)
    channel_no_overlap: bool = False
    channel_min_space: int = Field(1, ge=0)
    replace: Literal["embedding", "noise"] = Field(
        "embedding", description="masked frames become the learned embedding, or noise")
    noise_std: float = Field(0.1, gt=0.0, description="replace='noise': N(0, noise_std²)")


# ----------------------------------------------------------------------------- targets


class FutureFrames(Component):
    """wav2vec: predict the encoder (or quantized) features ``offset + k`` frames ahead.

    ``offset="auto"`` = ceil(encoder receptive field / stride), 3 for the paper encoder, so a
    context frame never predicts a feature it has seen.
    """

    steps: int = Field(12, ge=1)
    offset: int | Literal["auto"] = "auto"


class QuantizedLatents(Component):
    """wav2vec 2.0: quantized unmasked encoder features at masked frames, with distractors.

    With :class:`NoQuantizer` the targets are the continuous features (paper ablation).
    """


class ClusterTargets(Component):
    """HuBERT: per-frame cluster ids from one or more ``Labels`` nodes (a cluster ensemble)."""

    labels: tuple[Labels, ...] = Field(min_length=1)

    @property
    def num_classes(self) -> tuple[int, ...]:
        return tuple(lab.kmeans.k for lab in self.labels)

    @property
    def label_rate(self) -> float:
        return self.labels[0].frame_rate


class CodeTargets(Component):
    """Classification targets from the model's own quantizer: one label set per code group.

    Combined with :class:`MaskedPrediction` this is HuBERT-style masked prediction of a
    (Gumbel or k-means) quantizer's codes of the unmasked features, a mix no paper trains.
    Targets are the noise-free argmax codes; the quantizer learns only from its own auxiliary
    loss (:class:`Diversity` or :class:`CommitmentLoss`), the targets carry no gradient.
    """


Target = FutureFrames | QuantizedLatents | ClusterTargets | CodeTargets | RandomProjectionTargets

# ----------------------------------------------------------------------------- losses


class Contrastive(Component):
    """wav2vec 2.0 InfoNCE over cosine similarity with same-utterance masked-frame distractors."""

    weight: float = Field(1.0, ge=0.0)
    temperature: float = Field(0.1, gt=0.0)
    negatives: int = Field(100, ge=0)
    cross_sample_negatives: int = Field(0, ge=0)
    similarity: Literal["cosine"] = "cosine"

    @model_validator(mode="after")
    def _some(self):
        if self.negatives + self.cross_sample_negatives == 0:
            raise ValueError("Contrastive needs negatives or cross_sample_negatives > 0")
        return self


class Diversity(Component):
    """Codebook diversity: (GV − Σ_g exp H(p̄_g)) / GV, scaled by weight × sample_size."""

    weight: float = Field(0.1, ge=0.0)


class FeaturePenalty(Component):
    """L2 penalty mean(z²) on the encoder output, scaled by weight × sample_size."""

    weight: float = Field(10.0, ge=0.0)


class MaskedPrediction(Component):
    """HuBERT: softmax_c cos(A·o_t, e_c)/τ over each label set's embeddings; CE summed.

    Loss = ``masked_weight`` · L_m + ``unmasked_weight`` · L_u. ``untie_final_proj`` gives
    each label set its own slice of the final projection. ``logits="linear"`` (BEST-RQ): each
    label set's logits are a Linear of the context output (softmax over the codebook's
    entries), with no projection, embeddings or temperature.
    """

    masked_weight: float = Field(1.0, ge=0.0)
    unmasked_weight: float = Field(0.0, ge=0.0)
    temperature: float = Field(0.1, gt=0.0)
    untie_final_proj: bool = True
    logits: Literal["cosine", "linear"] = Field(
        "cosine", description="cosine vs label embeddings (HuBERT) or a Linear per set (BEST-RQ)")

    @model_validator(mode="after")
    def _some(self):
        if self.masked_weight == 0 and self.unmasked_weight == 0:
            raise ValueError("MaskedPrediction needs masked_weight or unmasked_weight > 0")
        return self


class StepPrediction(Component):
    """wav2vec: one affine per future step, dot-product scores against the true future frame
    and ``negatives`` same-utterance distractors; BCE (default) or InfoNCE.

    The number of steps and the offset come from :class:`FutureFrames`.
    """

    weight: float = Field(1.0, ge=0.0)
    negatives: int = Field(10, ge=1)
    cross_sample_negatives: int = Field(0, ge=0)
    infonce: bool = False
    balanced_classes: bool = Field(False, description="BCE: weight negatives by 1/negatives")


class CommitmentLoss(Component):
    """k-means VQ loss (MSE(ẑ, sg z) + γ·MSE(z, sg ẑ)), scaled by weight × sample_size."""

    weight: float = Field(1.0, ge=0.0)


Loss = Contrastive | Diversity | FeaturePenalty | MaskedPrediction | StepPrediction | CommitmentLoss
