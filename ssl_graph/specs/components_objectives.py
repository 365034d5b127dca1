"""Objective components: quantizers, mask policy, target sources and losses.

A model's objective is the combination (quantizer, mask, target, losses); the valid
combinations are checked by :class:`~ssl_graph.specs.components_model.SSLModel`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Component, later
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
    replace: Literal["embedding", "noise"] = later(
        "embedding", description="masked frames become the learned embedding, or noise")
    noise_std: float = later(0.1, gt=0.0, description="replace='noise': N(0, noise_std²)")


# ----------------------------------------------------------------------------- augmentation


class UtteranceMixing(Component):
    """WavLM's utterance mixing (Chen et al. 2022, §3.2: denoising masked speech modelling).

    Each crop of a step's global batch, with probability ``prob``, gets a segment of another
    crop of the same global batch added: length uniform in [1, ``max_overlap`` × its own
    length], at a uniform position in each, scaled so that the energy ratio (mean power of the
    primary crop over that of the segment) is uniform in ``energy_ratio`` dB. The targets stay
    the primary's. Draws are seeded by (seed, step, global row), so micro-batches and ranks
    mix alike. The paper also mixes DNS-challenge noise; only utterance mixing is modelled
    here. Validation batches are not mixed.
    """

    prob: float = Field(0.2, ge=0.0, le=1.0)
    max_overlap: float = Field(0.5, gt=0.0, le=1.0)
    energy_ratio: tuple[float, float] = (-5.0, 5.0)

    @model_validator(mode="after")
    def _range(self):
        lo, hi = self.energy_ratio
        if lo > hi:
            raise ValueError(f"UtteranceMixing.energy_ratio=({lo}, {hi}): low above high")
        return self


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


class TeacherTargets(Component):
    """data2vec: regression targets from an EMA teacher of the student's context network.

    The teacher is a copy of the student's transformer (data2vec audio ``ema_transformer_only``:
    the conv encoder, feature LayerNorm and projection are the student's own; fairseq and our
    code agree, HF ``Data2VecAudioModel`` has no pre-training objective). It reads the
    student's context input *before* masking and input dropout, with no gradient, in eval mode.
    After every optimiser update n it moves towards the student with τ(n) = ``ema_end_decay``
    − (``ema_end_decay`` − ``ema_decay``)·(1 − n/``ema_anneal_end_step``), τ = ``ema_end_decay``
    from then on; with ``ema_layers_only`` the positional conv is copied, not averaged (fairseq
    ``ema_layers_only``, default in data2vec audio). Targets: the outputs of the top
    ``top_k_layers`` blocks (``layer_output="ffn"``: the FFN output before the last residual
    and LayerNorm, data2vec's choice; ``"block"``: the block output), each instance-normalised
    over the utterance's valid frames (``instance_norm_target_layer``), averaged, then
    optionally instance-normalised again (``instance_norm_targets``).
    """

    ema_decay: float = Field(0.999, ge=0.0, le=1.0)
    ema_end_decay: float = Field(0.9999, ge=0.0, le=1.0)
    ema_anneal_end_step: int = Field(30_000, ge=0)
    ema_layers_only: bool = True
    top_k_layers: int = Field(8, ge=1)
    layer_output: Literal["ffn", "block"] = "ffn"
    instance_norm_target_layer: bool = True
    instance_norm_targets: bool = False

    def decay_at(self, updates: int) -> float:
        """τ after ``updates`` optimiser updates (fairseq ``get_annealed_rate``)."""
        if updates >= self.ema_anneal_end_step:
            return self.ema_end_decay
        left = 1.0 - updates / self.ema_anneal_end_step
        return self.ema_end_decay - (self.ema_end_decay - self.ema_decay) * left


Target = (FutureFrames | QuantizedLatents | ClusterTargets | CodeTargets | TeacherTargets
          | RandomProjectionTargets)

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
    logits: Literal["cosine", "linear"] = later(
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


class Regression(Component):
    """data2vec: regress the teacher's targets from the context at masked frames.

    A linear ``final_proj`` maps the context to the target width; per frame the loss is the
    sum over dimensions of smooth L1 with ``beta`` (``beta=0``: squared error, data2vec audio's
    ``loss_beta: 0``), summed over masked frames and scaled by ``loss_scale`` (None: 1/√dim,
    fairseq's default). One prediction per masked frame counts towards the sample size.
    """

    weight: float = Field(1.0, ge=0.0)
    beta: float = Field(0.0, ge=0.0, description="smooth L1 beta; 0 = L2")
    loss_scale: float | None = Field(None, gt=0.0, description="None = 1/sqrt(dim)")


Loss = (Contrastive | Diversity | FeaturePenalty | MaskedPrediction | StepPrediction
        | CommitmentLoss | Regression)
