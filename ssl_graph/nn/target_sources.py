"""Target sources: what a forward's heads score against, one small module per target kind.

The seam between :class:`~ssl_graph.nn.model.SSLNet` and its objectives. ``SSLNet`` runs the
shared stages (encoder → [label trimming] → LayerNorm/[input quantization] → mask → context) and
then asks each of its target sources (``SSLNet.target_sources``, one per entry of
``SSLModel.targets``, built through ``nn/objectives.py``'s ``TARGET_SOURCES`` registry) for
the :class:`Targets` its losses read. A source sees the forward through a :class:`ForwardState`
and implements:

* ``forward(state) -> Targets``: the targets of this forward's rows. Everything a target is a
  function of must be per row (a row's own frames, or ``state.rand``, whose streams are keyed by
  the *global* row index), so a batch split into micro-batches or over ranks gets the same
  targets (``train/micro.py``).
* ``align(z, pad, labels)``: trim the encoder frames to the labels (HuBERT); default: no-op.
* ``kept_frames(n_frames, label_frames)``: the frames :meth:`align` keeps, from shapes only
  (``train/micro.py`` draws a whole crop group's masks from it); default: all.
* ``quantized_frames(mask, valid)``: the frames the model's quantizer scores when this source
  quantizes its targets (usage statistics, k-means loss); None when it does not quantize.
* ``set_num_updates(updates)``: before each update, the updates made so far (schedules, logs).
* ``after_update(student, updates)``: called once after each optimiser update (never per
  micro-batch), identically on every rank, e.g. an EMA teacher's step; default: nothing.
* ``reset(student)``: the student's weights were replaced (``Pretrain(init=...)``); default:
  nothing.

Any state a source holds (an EMA teacher's weights) must be registered tensors of the module,
so it is in the model's state dict and every checkpoint carries it (exact resume). Adding a
target kind = a module here (or in a file of its own) + an entry in ``TARGET_SOURCES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from ..specs.components import ClusterTargets, SSLModel
from .quantizers import QuantizerOutput
from .row_random import RowRandom
from .targets import align_targets, aligned_frames

#: the model's quantizer on (features, frames it scores), with this forward's noise
Quantize = Callable[[Tensor, Tensor], QuantizerOutput]


@dataclass
class ForwardState:
    """What a training forward has computed when its targets are formed."""

    z: Tensor  # (B, T, C) encoder output (label-trimmed), before the feature LayerNorm
    u: Tensor  # (B, T, D) unmasked copy: normed [quantized] features after dropout_features
    x: Tensor  # (B, T, Dc) context input before dropout_input and masking
    qres: QuantizerOutput | None  # the input quantization (quantize_input), else None
    labels: list[Tensor] | None  # per label set (B, T), aligned to the frames (ClusterTargets)
    mask: Tensor | None  # (B, T) masked frames
    valid: Tensor  # (B, T) non-padded frames
    pad: Tensor | None  # (B, T) padded frames, None when nothing pads
    rand: RowRandom  # per-row random streams keyed by the global row index
    quantize: Quantize | None  # None when the model has no quantizer
    wave: Tensor | None = None  # (B, S) the input samples (targets computed from the audio)
    sample_padding: Tensor | None = None  # (B, S) True at padded samples, or None


@dataclass
class Targets:
    """What a source gives its losses: continuous vectors, class ids per label set, or both."""

    features: Tensor | None = None  # (B, T, D)
    labels: list[Tensor] | None = None  # per set (B, T) long
    qres: QuantizerOutput | None = None  # the quantization that made them (statistics, logs)
    logs: dict[str, Tensor] | None = None  # detached scalars to log


class TargetSource(nn.Module):
    """Base: the defaults of the interface above."""

    #: the targets use only the quantizer's code ids, so its codebook gets no gradient (frozen,
    #: or DDP would wait for it)
    freezes_codebook = False

    def align(self, z: Tensor, pad: Tensor | None, labels: list[Tensor] | None):
        return z, pad, labels

    def kept_frames(self, n_frames: int, label_frames: list[int]) -> int:
        return n_frames

    def quantized_frames(self, mask: Tensor | None, valid: Tensor) -> Tensor | None:
        return None

    def set_num_updates(self, updates: int) -> None:  # noqa: B027 - optional
        """Called before each update with the updates made so far (schedules, logs)."""

    def after_update(self, student: nn.Module, updates: int) -> None:  # noqa: B027 - optional
        """Called once after each optimiser update."""

    def reset(self, student: nn.Module) -> None:  # noqa: B027 - optional
        """The student's weights were replaced."""

    def forward(self, state: ForwardState) -> Targets:
        raise NotImplementedError


class LatentTargets(TargetSource):
    """wav2vec 2.0 (``QuantizedLatents``) and wav2vec (``FutureFrames``): the unmasked features,
    quantized by the model's quantizer when it has one (unless the input already was)."""

    def __init__(self, masked_only: bool):
        super().__init__()
        #: the quantizer scores only the masked frames (wav2vec 2.0's targets)
        self.masked_only = masked_only

    def quantized_frames(self, mask: Tensor | None, valid: Tensor) -> Tensor:
        return mask & valid if self.masked_only else valid

    def forward(self, state: ForwardState) -> Targets:
        qres = state.qres
        if qres is None and state.quantize is not None:
            qres = state.quantize(state.u, self.quantized_frames(state.mask, state.valid))
        return Targets(features=state.u if qres is None else qres.x, qres=qres)


class CodeTargetSource(TargetSource):
    """``CodeTargets``: the noise-free argmax codes of the model's quantizer, one set a group."""

    freezes_codebook = True

    def quantized_frames(self, mask: Tensor | None, valid: Tensor) -> Tensor:
        return valid

    def forward(self, state: ForwardState) -> Targets:
        qres = state.qres
        if qres is None:
            qres = state.quantize(state.u, state.valid)
        return Targets(labels=list(qres.best.detach().unbind(-1)), qres=qres)


class ClusterTargetSource(TargetSource):
    """HuBERT ``ClusterTargets``: the loader's label sets, aligned to the model's frames."""

    def __init__(self, target: ClusterTargets, spec: SSLModel):
        super().__init__()
        self.n_sets = len(target.labels)
        self.ratio = spec.label_ratio(target.label_rate)

    def align(self, z: Tensor, pad: Tensor | None, labels: list[Tensor] | None):
        if labels is None or len(labels) != self.n_sets:
            got = "none" if labels is None else len(labels)
            raise ValueError(f"the model predicts {self.n_sets} label set(s); got {got} targets")
        n_lab = min(t.size(-1) for t in labels)
        aligned = [align_targets(t[..., :n_lab], z.size(1), self.ratio) for t in labels]
        kept = aligned[0][1]
        pad = None if pad is None else pad[:, :kept]
        return z[:, :kept], pad, [a[0].long() for a in aligned]

    def kept_frames(self, n_frames: int, label_frames: list[int]) -> int:
        return aligned_frames(min(label_frames), n_frames, self.ratio)

    def forward(self, state: ForwardState) -> Targets:
        return Targets(labels=state.labels, qres=state.qres)


def no_grad_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy (no RNG drawn, no gradient), e.g. a teacher's starting weights."""
    import copy

    twin = copy.deepcopy(module)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


__all__ = ["ClusterTargetSource", "CodeTargetSource", "ForwardState", "LatentTargets",
           "TargetSource", "Targets", "no_grad_copy"]
