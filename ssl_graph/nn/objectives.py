"""The objective registries: which module a target kind or a loss kind builds.

``SSLNet`` (``nn/model.py``) has no branch per objective; it looks the spec's components up here:

* :data:`TARGET_SOURCES`: target component type → ``build(target, spec, net) -> TargetSource``
  (``nn/target_sources.py`` documents the interface). ``net`` is the model being built (its
  encoder, quantizer and context exist already), e.g. for a teacher that copies the context.
* :data:`LOSS_HEADS`: prediction-loss type → :class:`HeadEntry` (its module name under
  ``SSLNet.heads``, which names its weights in checkpoints, the target source types it reads,
  and ``build(loss, spec) -> head``; heads implement ``score`` / ``size``, see ``nn/heads.py``).
* :data:`AUX_TERMS`: auxiliary-loss type → (term name, ``term(aux) -> Tensor | None``): a
  batch mean × sample_size (or this forward's share of the global batch's, from
  ``aux.stats``), before the loss's weight; None when the forward has nothing to add. Terms are
  added in this registry's order.

A new objective is a module plus an entry here (and its spec component in ``specs/``, with its
plan-time checks in ``check_combination`` and the loss → target table ``_LOSS_TARGETS`` of
``specs/components_model.py``). :func:`register_target` / :func:`register_loss` add an entry from
elsewhere, but an entry in these dicts keeps every objective in one place.

Example (a target source and its loss)::

    TARGET_SOURCES[MyTargets] = lambda target, spec, net: MyTargetSource(target, spec)
    LOSS_HEADS[MyLoss] = HeadEntry("my_loss", (MyTargets,),
                                   lambda loss, spec: MyHead(loss, spec.context_dim))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from ..specs.components import (
    ClusterTargets,
    CodeTargets,
    CommitmentLoss,
    Contrastive,
    Diversity,
    FeaturePenalty,
    FutureFrames,
    MaskedPrediction,
    QuantizedLatents,
    RandomProjectionTargets,
    Regression,
    SSLModel,
    StepPrediction,
    TeacherTargets,
)
from . import losses as L
from .batch_stats import BatchStats
from .heads import ContrastiveHead, MaskedPredictionHead, RegressionHead, StepPredictionHead
from .quantizers import QuantizerOutput
from .random_projection import RandomProjectionQuantizer
from .target_sources import (
    ClusterTargetSource,
    CodeTargetSource,
    LatentTargets,
    TargetSource,
)
from .teacher import EmaTeacher


@dataclass(frozen=True)
class HeadEntry:
    name: str  # the head's key in SSLNet.heads (its weights' prefix)
    reads: tuple[type, ...]  # the target component types whose Targets it scores
    build: Callable[[object, SSLModel], nn.Module]


@dataclass
class AuxInputs:
    """What an auxiliary term may read after the heads ran."""

    z: Tensor  # encoder output (label-trimmed), before the feature LayerNorm
    qres: QuantizerOutput | None  # the forward's quantization, if any
    stats: BatchStats | None  # the global batch's counts when the batch is split, else None
    sample_size: int  # this forward's predictions
    frames: int  # this forward's frames (rows × T)


def _target_dim(spec: SSLModel) -> int:
    return spec.quantizer.dim if spec.quantized else spec.encoder.dim


TARGET_SOURCES: dict[type, Callable[[object, SSLModel, nn.Module], TargetSource]] = {
    QuantizedLatents: lambda t, spec, net: LatentTargets(masked_only=not spec.quantize_input),
    FutureFrames: lambda t, spec, net: LatentTargets(masked_only=False),
    ClusterTargets: lambda t, spec, net: ClusterTargetSource(t, spec),
    CodeTargets: lambda t, spec, net: CodeTargetSource(),
    RandomProjectionTargets: lambda t, spec, net: RandomProjectionQuantizer(t, spec.sample_rate),
    TeacherTargets: lambda t, spec, net: EmaTeacher(t, net),
}

LOSS_HEADS: dict[type, HeadEntry] = {
    Contrastive: HeadEntry("contrastive", (QuantizedLatents,), lambda loss, spec: ContrastiveHead(
        loss, spec.context_dim, _target_dim(spec), spec.head_dim)),
    MaskedPrediction: HeadEntry(
        "masked_prediction", (ClusterTargets, CodeTargets, RandomProjectionTargets),
        lambda loss, spec: MaskedPredictionHead(loss, spec.context_dim, spec.head_dim,
                                                spec.num_classes())),
    StepPrediction: HeadEntry("step_prediction", (FutureFrames,), lambda loss, spec: (
        StepPredictionHead(loss, spec.target_of(FutureFrames).steps, spec.step_offset(),
                           spec.context_dim, _target_dim(spec)))),
    Regression: HeadEntry("regression", (TeacherTargets,), lambda loss, spec: RegressionHead(
        loss, spec.context_dim, spec.context_dim)),
}


def _diversity(aux: AuxInputs) -> Tensor | None:
    q = aux.qres
    if q is None or q.prob_perplexity is None:
        return None
    if aux.stats is None:
        return L.diversity_loss(q.prob_perplexity, q.num_vars) * aux.sample_size
    return aux.stats.diversity_share(q.prob_sum, q.scored, aux.sample_size, q.num_vars)


def _feature_penalty(aux: AuxInputs) -> Tensor:
    penalty = L.feature_penalty(aux.z)
    if aux.stats is None:
        return penalty * aux.sample_size
    return aux.stats.mean_share(penalty, aux.frames, aux.stats.frames)


def _commitment(aux: AuxInputs) -> Tensor | None:
    q = aux.qres
    if q is None or q.loss is None:
        return None
    if aux.stats is None:
        return q.loss * aux.sample_size
    return aux.stats.mean_share(q.loss, q.scored, aux.stats.scored)


AUX_TERMS: dict[type, tuple[str, Callable[[AuxInputs], Tensor | None]]] = {
    Diversity: ("diversity", _diversity),
    FeaturePenalty: ("feature_penalty", _feature_penalty),
    CommitmentLoss: ("commitment", _commitment),
}


def register_target(kind: type, build: Callable[[object, SSLModel, nn.Module], TargetSource]):
    TARGET_SOURCES[kind] = build


def register_loss(kind: type, entry: HeadEntry) -> None:
    LOSS_HEADS[kind] = entry


def build_target_source(target, spec: SSLModel, net: nn.Module) -> TargetSource:
    try:
        build = TARGET_SOURCES[type(target)]
    except KeyError:
        raise ValueError(f"no target source is registered for {target.kind} "
                         "(nn/objectives.py TARGET_SOURCES)") from None
    return build(target, spec, net)
