"""``SSLModel``: one spec from which one torch model is built (``ssl_graph.nn.build_model``).

The four paper models are points in this space (see ``components_presets``); so are mixes no
paper trains (HuBERT masked prediction of Gumbel codes, wav2vec 2.0 with cluster targets ...).
Combinations that cannot work are refused here, with the field to change.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from pydantic import Field, model_validator

from .base import Component, SpecError, later
from .components_networks import Context, ConvContext, Encoder
from .components_objectives import (
    ClusterTargets,
    CodeTargets,
    CommitmentLoss,
    Contrastive,
    Diversity,
    FutureFrames,
    GumbelQuantizer,
    KMeansQuantizer,
    Loss,
    MaskedPrediction,
    NoQuantizer,
    QuantizedLatents,
    Quantizer,
    RandomProjectionTargets,
    Regression,
    SpanMask,
    StepPrediction,
    Target,
    TeacherTargets,
    UtteranceMixing,
)

#: which target each prediction loss needs
_LOSS_TARGETS: dict[type, tuple[type, ...]] = {
    Contrastive: (QuantizedLatents,),
    MaskedPrediction: (ClusterTargets, CodeTargets, RandomProjectionTargets),
    StepPrediction: (FutureFrames,),
    Regression: (TeacherTargets,),
}


class SSLModel(Component):
    """Encoder → [quantizer] → mask → context → heads/losses, as one declarative value.

    Data flow (fairseq order): ``z = encoder(wave)`` (feature penalty on z, gradient scaled by
    ``feature_grad_mult``) → LayerNorm (``feature_layer_norm``) → unmasked copy for targets
    (``dropout_features``) → Linear to the context width if it differs → ``dropout_input`` →
    span mask → context network → ``dropout_context`` → loss heads. With ``quantize_input``
    (vq-wav2vec) the quantizer replaces z before all of this, so the context reads codes.

    ``target`` is one target source or several (HuBERT's labels and a data2vec teacher); each
    prediction loss reads the source of the kind it needs. ``augmentation`` changes the training
    crops before the forward (WavLM's utterance mixing), never the targets.
    """

    encoder: Encoder
    context: Context
    quantizer: Quantizer = NoQuantizer()
    quantize_input: bool = Field(False, description="context reads quantized features")
    mask: SpanMask | None = None
    target: Target | tuple[Target, ...] = Field(
        description="the target source, or several (each prediction loss reads the one it needs)")
    losses: tuple[Loss, ...] = Field(min_length=1)
    augmentation: UtteranceMixing | None = later(
        None, description="WavLM's utterance mixing of the training crops")
    final_dim: int = Field(256, ge=0, description="prediction-head width (0 = context width)")
    feature_grad_mult: float = Field(1.0, ge=0.0, description="0 = encoder under no_grad")
    feature_layer_norm: bool = True
    dropout_input: float = Field(0.0, ge=0.0, lt=1.0)
    dropout_features: float = Field(0.0, ge=0.0, lt=1.0)
    dropout_context: float = Field(0.0, ge=0.0, lt=1.0)
    sample_rate: int = Field(16000, ge=1)

    @model_validator(mode="after")
    def _consistent(self):
        check_combination(self)
        return self

    # ---- targets
    @property
    def targets(self) -> tuple[Target, ...]:
        """The target sources, as a tuple (``target`` may be one or several)."""
        return self.target if isinstance(self.target, tuple) else (self.target,)

    def target_of(self, kind: type | tuple[type, ...]) -> Any:
        """The first target source of ``kind``, or None."""
        return next((t for t in self.targets if isinstance(t, kind)), None)

    @property
    def target_kind(self) -> str:
        """The target kind(s) for display, e.g. ``ClusterTargets+TeacherTargets``."""
        return "+".join(t.kind for t in self.targets)

    # ---- geometry (pure Python, usable at plan time)
    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.encoder.stride

    @property
    def context_dim(self) -> int:
        return self.context.dim

    @property
    def head_dim(self) -> int:
        return self.final_dim or self.context.dim

    @property
    def quantized(self) -> bool:
        return not isinstance(self.quantizer, NoQuantizer)

    @property
    def cross_sample(self) -> bool:
        """Whether distractors come from other utterances (``cross_sample_negatives``): drawn
        from the frames of one forward, so the micro-batch split is part of the result."""
        return any(getattr(loss, "cross_sample_negatives", 0) > 0 for loss in self.losses)

    def step_offset(self) -> int:
        """Frames between a context frame and its first predicted future frame."""
        target = self.target_of(FutureFrames)
        assert target is not None
        if target.offset == "auto":
            return math.ceil(self.encoder.receptive_field / self.encoder.stride)
        return target.offset

    def label_ratio(self, label_rate: float) -> float:
        """Labels per model frame: label_rate × encoder stride / sample rate (HuBERT 100 Hz: 2)."""
        return label_rate * self.encoder.stride / self.sample_rate

    def num_classes(self) -> tuple[int, ...]:
        """Classes per label set for masked prediction."""
        clusters = self.target_of(ClusterTargets)
        if clusters is not None:
            return clusters.num_classes
        if self.target_of(CodeTargets) is not None:
            return (self.quantizer.entries,) * self.quantizer.groups
        projection = self.target_of(RandomProjectionTargets)
        if projection is not None:
            return projection.num_classes
        return ()

    def check_labels(self, name: str = "model") -> None:
        """Plan-time check that cluster labels align with the model's frames (see below)."""
        clusters = self.target_of(ClusterTargets)
        if clusters is not None:
            rates = {lab.frame_rate for lab in clusters.labels}
            if len(rates) > 1:
                raise SpecError(
                    f"{name}: ClusterTargets mixes label rates {sorted(rates)} Hz; every label "
                    "set of one model must share a frame rate (use features with one hop size)"
                )
            check_label_alignment(self, rates.pop(), name=name)


def check_label_alignment(model: SSLModel, label_rate: float, name: str = "model") -> float:
    """Return the label/frame ratio, or raise ``SpecError`` if labels cannot align to frames.

    Frame t reads label floor(t · ratio); that is a regular alignment only when the ratio is an
    integer (labels subsampled) or 1/integer (labels repeated).
    """
    ratio = model.label_ratio(label_rate)
    frac = Fraction(ratio).limit_denominator(1000)
    aligned = abs(float(frac) - ratio) < 1e-9 and (frac.numerator == 1 or frac.denominator == 1)
    if ratio <= 0 or not aligned:
        stride = model.encoder.stride
        raise SpecError(
            f"{name}: labels at {label_rate:g} Hz cannot align with model frames at "
            f"{model.frame_rate:g} Hz (encoder stride {stride} samples at {model.sample_rate} "
            f"Hz): ratio {ratio:g} is not an integer or 1/integer. Use an encoder whose stride "
            f"product is a multiple or divisor of {model.sample_rate / label_rate:g} samples "
            f"(e.g. 160 or 320 for 100 Hz labels), or labels from features at "
            f"{model.frame_rate:g}·n Hz"
        )
    return ratio


def check_combination(m: Any) -> None:
    """Refuse objective combinations that cannot be built; messages name the field to change."""
    has = {type(loss) for loss in m.losses}
    if len(has) != len(m.losses):
        raise SpecError("SSLModel.losses lists a loss kind twice; give each kind once")
    primary = [t for t in has if t in _LOSS_TARGETS]
    if not primary:
        raise SpecError(
            "SSLModel.losses has no prediction loss; add Contrastive, MaskedPrediction or "
            "StepPrediction"
        )
    targets = m.targets
    kinds = [type(t) for t in targets]
    if len(set(kinds)) != len(kinds):
        raise SpecError("SSLModel.target lists a target kind twice; give each kind once")
    for loss_t in primary:
        if not any(isinstance(t, _LOSS_TARGETS[loss_t]) for t in targets):
            need = " or ".join(t.__name__ for t in _LOSS_TARGETS[loss_t])
            got = "+".join(t.kind for t in targets)
            raise SpecError(f"{loss_t.__name__} needs target={need}, got {got}")
    for t in targets:
        if not any(isinstance(t, _LOSS_TARGETS[loss_t]) for loss_t in primary):
            raise SpecError(f"SSLModel.target {t.kind} is read by no loss; add its loss or "
                            "drop it from target")
    if len(targets) > 1 and any(isinstance(t, (FutureFrames, QuantizedLatents, CodeTargets))
                                for t in targets):
        raise SpecError("SSLModel.target: only ClusterTargets and TeacherTargets combine; use "
                        "one target source with FutureFrames, QuantizedLatents or CodeTargets")
    if m.target_of(RandomProjectionTargets) is not None and m.target_of(ClusterTargets):
        raise SpecError("SSLModel.target: ClusterTargets and RandomProjectionTargets are both "
                        "read by MaskedPrediction; keep one")
    if Diversity in has and not isinstance(m.quantizer, GumbelQuantizer):
        raise SpecError("Diversity needs quantizer=GumbelQuantizer(...)")
    if CommitmentLoss in has and not isinstance(m.quantizer, KMeansQuantizer):
        raise SpecError("CommitmentLoss needs quantizer=KMeansQuantizer(...)")
    if isinstance(m.quantizer, KMeansQuantizer) and CommitmentLoss not in has:
        raise SpecError("KMeansQuantizer is only trained by CommitmentLoss; add it to losses")
    if m.target_of(CodeTargets) is not None and isinstance(m.quantizer, NoQuantizer):
        raise SpecError("CodeTargets needs a quantizer (GumbelQuantizer or KMeansQuantizer)")
    if m.quantize_input and isinstance(m.quantizer, NoQuantizer):
        raise SpecError("quantize_input=True needs a quantizer")
    projection = m.target_of(RandomProjectionTargets)
    if projection is not None:
        check_random_projection_rate(projection, m.encoder)
    masked = m.target_of((QuantizedLatents, ClusterTargets, CodeTargets, TeacherTargets,
                          RandomProjectionTargets))
    if masked is not None and m.mask is None:
        raise SpecError(f"target={masked.kind} predicts masked frames; set mask=SpanMask(...)")
    if m.target_of(FutureFrames) is not None and not isinstance(m.context, ConvContext):
        raise SpecError(
            "FutureFrames needs a causal context (context=ConvContext(...)); a Transformer "
            "sees the future frames it would predict"
        )
    teacher = m.target_of(TeacherTargets)
    if teacher is not None:
        if isinstance(m.context, ConvContext):
            raise SpecError("TeacherTargets averages transformer blocks; set context="
                            "Transformer(...)")
        if teacher.top_k_layers > m.context.layers:
            raise SpecError(f"TeacherTargets.top_k_layers={teacher.top_k_layers} exceeds the "
                            f"context's {m.context.layers} layers; lower top_k_layers")
        if m.quantize_input:
            raise SpecError("TeacherTargets reads the unquantized context input; set "
                            "quantize_input=False")


def check_random_projection_rate(target: RandomProjectionTargets, encoder: Any) -> None:
    """A random-projection target frame must span exactly one encoder frame (plan time)."""
    hop, stack, stride = target.features.hop, target.stack, encoder.stride
    if hop * stack == stride:
        return
    fix = (f"set target.stack={stride // hop}" if stride % hop == 0
           else f"use target.features.hop dividing the encoder stride {stride}")
    raise SpecError(
        f"SSLModel.target: RandomProjectionTargets frames every features.hop × stack = {hop} × "
        f"{stack} = {hop * stack} samples but the encoder ({encoder.kind}) strides {stride}; "
        f"{fix} so targets and model frames share a rate")
