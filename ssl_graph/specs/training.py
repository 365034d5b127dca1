"""Training nodes: ``Pretrain`` (any ``SSLModel`` on a corpus) and its optimiser components.

Device, precision, checkpoint and logging cadence are runtime fields: moving a run from CPU to a
GPU, or checkpointing more often, must not invalidate a trained model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Component, Node, SpecError, later, runtime, threads_setting
from .components_model import SSLModel
from .components_objectives import ClusterTargets
from .nodes import Corpus
from .pretrained import PretrainedModel


class Adam(Component):
    """Adam(W) as in fairseq: decoupled weight decay, (0.9, 0.98), eps 1e-6."""

    lr: float = Field(5e-4, gt=0.0)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = Field(1e-6, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)


class Schedule(Component):
    """Learning-rate schedule over ``Pretrain.steps`` updates.

    ``linear``: warmup then linear decay to 0 (wav2vec 2.0 / HuBERT). ``cosine``: warmup then
    cosine to ``final_lr_scale`` (wav2vec). ``tri_stage``: warmup from ``init_lr_scale``, hold,
    then *exponential* decay to ``final_lr_scale`` (fairseq's tri-stage; the paper says linear).
    """

    curve: Literal["linear", "cosine", "tri_stage", "constant"] = "linear"
    warmup: float = Field(0.08, ge=0.0, le=1.0, description="fraction of steps warming up")
    hold: float = Field(0.0, ge=0.0, le=1.0, description="tri_stage: fraction held at peak")
    init_lr_scale: float = Field(0.0, ge=0.0)
    final_lr_scale: float = Field(0.0, ge=0.0)

    def factor(self, step: int, total: int) -> float:
        """LR multiplier at ``step`` (0-based) of ``total``; pure, so resuming is exact."""
        import math

        warm = int(round(self.warmup * total))
        if step < warm:
            return self.init_lr_scale + (1 - self.init_lr_scale) * (step + 1) / warm
        if self.curve == "constant":
            return 1.0
        hold = int(round(self.hold * total)) if self.curve == "tri_stage" else 0
        if step < warm + hold:
            return 1.0
        span = max(1, total - warm - hold)
        t = min(1.0, (step - warm - hold) / span)
        if self.curve == "linear":
            return 1.0 - t * (1.0 - self.final_lr_scale)
        if self.curve == "cosine":
            return self.final_lr_scale + (1 - self.final_lr_scale) * 0.5 * (1 + math.cos(math.pi * t))
        return math.exp(math.log(max(self.final_lr_scale, 1e-12)) * t)  # tri_stage decay


class TrainingNode(Node):
    """Runtime fields shared by ``Pretrain`` and ``FineTune``: how a training runs, never what.

    ``batch_seconds`` (a semantic field of each node) is the *global* batch of one update, as
    fairseq's GPUs × max_tokens × update_freq; ``max_batch_seconds`` only splits it into
    micro-batches whose gradients are accumulated, so it bounds memory without changing the
    update. Thread counts are set when a training starts so its numerics do not depend on what
    ran before in the process (k-means' Numba pool, a caller's torch settings).
    """

    device: str = runtime("auto", description="'auto' (cuda if present), 'cpu', 'cuda:0', ...")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = runtime(
        "auto", description="auto: bf16 on CUDA where supported, else fp16 + GradScaler; fp32 "
        "on CPU")
    fp16_init_scale: float = runtime(128.0, gt=0.0, description="fp16: first loss scale "
                                     "(fairseq's fp16_init_scale)")
    fp16_scale_window: int | None = runtime(
        None, ge=1, description="fp16: updates without overflow before the loss scale doubles; "
        "None = fairseq's 2**14 / forwards per update (crop groups x micro-batches)")
    min_loss_scale: float = runtime(1e-4, gt=0.0, description="fp16: a loss scale that falls "
                                    "this low stops the training (the loss is diverging)")
    checkpoint_every: int = runtime(100, ge=1, description="steps between checkpoints")
    log_every: int = runtime(1, ge=1, description="steps between logged metric rows")
    max_batch_seconds: float | None = runtime(
        None, gt=0.0, description="audio seconds per forward (micro-batch); None = the whole "
        "batch_seconds in one forward")
    threads: int | None = threads_setting()
    workers: int | None = runtime(
        None, ge=0, description="DataLoader worker processes; None = 2 on CUDA, 0 on CPU")
    print_seconds: float = runtime(
        30.0, ge=0.0, description="seconds between plain progress lines when stdout is not a "
        "terminal (0 = every step)")


class Pretrain(TrainingNode):
    """Self-supervised pre-training of an ``SSLModel`` on a corpus.

    Batches are built as fairseq builds them (``train/batching.py``): utterances of at least
    ``min_seconds`` (``min_sample_size``) sorted by length capped at ``crop_seconds``
    (``max_sample_size``), equal lengths shuffled per epoch, cut into groups of
    ``group_seconds`` (fairseq's ``max_tokens``: rows × longest), each cropped to its shortest row
    from a random start; the groups are shuffled per epoch and a step takes
    ``batch_seconds // group_seconds`` of them (the global batch of one update, fairseq's GPUs ×
    ``update_freq``; see ``TrainingNode.max_batch_seconds`` to split it).
    Everything random is derived from ``seed`` and the step number, so a resumed run reproduces
    the uninterrupted loss curve.

    ``valid`` (a held-out fraction or another corpus) adds ``valid_loss`` / ``valid_accuracy``
    every ``valid_every`` steps, the same objective in eval mode on fixed batches
    (``train/validation.py``); which utterances are held out is semantic, the interval is not.

    Micro-batches (``max_batch_seconds``) and ranks give the update of the unsplit batch
    (``train/micro.py``), except with cross-sample distractors: they come from the frames of one
    forward, so there ``max_batch_seconds`` is part of the fingerprint and one process trains.
    """

    #: 2: length-sorted batches (``train/batching.py``) replaced one random draw per step, and
    #: distractors, Gumbel noise, channel masks and auxiliary losses became the step's (split-
    #: invariant): every pre-training model trained before retrains once
    op_version = 2
    cost = 4

    corpus: Corpus
    model: SSLModel
    steps: int = Field(400_000, ge=1)
    optimizer: Adam = Adam()
    schedule: Schedule = Schedule()
    clip_norm: float = Field(10.0, ge=0.0, description="0 = no clipping")
    batch_seconds: float = Field(87.5, gt=0.0, description="audio seconds per update")
    group_seconds: float | None = Field(
        None, gt=0.0, description="audio seconds of one group of similar-length crops (fairseq's "
        "max_tokens of one GPU): a batch is batch_seconds // group_seconds groups from random "
        "places in the length order; None = one group of batch_seconds")
    crop_seconds: float = Field(15.625, gt=0.0, description="longest crop (250k samples)")
    min_seconds: float = Field(2.0, ge=0.0, description="skip shorter utterances")
    seed: int = Field(0, ge=0)
    init: Pretrain | PretrainedModel | None = later(
        None, description="start from this model's backbone (continued pre-training)")
    valid: float | Corpus | None = later(
        None, description="held-out validation: a fraction of the corpus (utterances whose "
        "seeded hash falls below it; they never train) or another Corpus; None = none")
    valid_seed: int = Field(0, ge=0, description="seed of the held-out fraction's hash, apart "
                            "from seed so reseeding a training keeps its valid set")
    valid_every: int = runtime(
        100, ge=1, description="steps between validations (and at the last step); evaluation "
        "changes no weight, so the trained model is the same whatever the interval")

    @model_validator(mode="after")
    def _valid_fraction(self):
        if isinstance(self.valid, float) and not 0.0 < self.valid < 1.0:
            raise SpecError(f"Pretrain.valid={self.valid:g} must be a fraction in (0, 1) (e.g. "
                            "0.05) or a Corpus; None = no validation")
        return self

    @model_validator(mode="after")
    def _crop_fits(self):
        if self.crop_seconds > self.batch_seconds:
            raise SpecError(
                f"Pretrain.crop_seconds ({self.crop_seconds}) exceeds batch_seconds "
                f"({self.batch_seconds}); a batch must hold at least one crop"
            )
        group = self.group_seconds
        if group is not None and not self.crop_seconds <= group <= self.batch_seconds:
            raise SpecError(
                f"Pretrain.group_seconds ({group}) must lie between crop_seconds "
                f"({self.crop_seconds}) and batch_seconds ({self.batch_seconds}): a group holds "
                "at least one crop and a batch at least one group")
        return self

    def semantic(self) -> dict:
        out = super().semantic()
        if not isinstance(out.get("valid"), float):  # valid_seed only draws a fraction
            out.pop("valid_seed", None)
        if self.model.cross_sample:  # its distractors' pool is one forward: the split is semantic
            out["max_batch_seconds"] = self.max_batch_seconds
        return out

    @property
    def frame_rate(self) -> float:
        return self.model.frame_rate

    def check(self, resolve_name) -> None:
        name = resolve_name(self)
        rf = self.model.encoder.receptive_field
        if self.min_seconds * self.corpus.sample_rate < rf:
            # a crop is as long as the shortest utterance of its batch; it must hold one frame
            raise SpecError(
                f"{name}: min_seconds={self.min_seconds} is shorter than the encoder's receptive "
                f"field ({rf} samples = {rf / self.corpus.sample_rate:g} s); training would crop "
                f"utterances to no frame; set min_seconds >= {rf / self.corpus.sample_rate:g}"
            )
        self.model.check_labels(name)
        if isinstance(self.valid, Corpus):
            vname = resolve_name(self.valid)
            if self.valid.sample_rate != self.corpus.sample_rate:
                raise SpecError(
                    f"{name}: valid corpus {vname} is {self.valid.sample_rate} Hz but the training "
                    f"corpus is {self.corpus.sample_rate} Hz; resample it (Corpus(resample=True))")
            if self.model.target_of(ClusterTargets) is not None:
                raise SpecError(
                    f"{name}: valid={vname} has no cluster labels (the targets label the training "
                    "corpus only); hold out a fraction instead (e.g. valid=0.05)")
        if self.init is not None:
            diff = backbone_difference(self.init.model, self.model)
            if diff:
                raise SpecError(
                    f"{name}: init={resolve_name(self.init)} has a different backbone ({diff}); "
                    f"continued pre-training needs the same encoder and context (e.g. "
                    f"model={resolve_name(self.init)}.model.with_(target=..., losses=...))")
        clusters = self.model.target_of(ClusterTargets)
        if clusters is not None:
            for lab in clusters.labels:
                if lab.corpus != self.corpus:
                    raise SpecError(
                        f"{name}: target labels {resolve_name(lab)} were computed on corpus "
                        f"{resolve_name(lab.corpus)}, not on the training corpus "
                        f"{resolve_name(self.corpus)}; label the training corpus"
                    )


def backbone_difference(a: SSLModel, b: SSLModel) -> str:
    """'' when ``a``'s backbone weights fit ``b``; else the first field that differs."""
    def shape(m: SSLModel) -> dict:
        ctx = m.context
        out = {"encoder": m.encoder.with_(dropout=0.0), "feature_layer_norm": m.feature_layer_norm,
               "quantize_input": m.quantize_input, "context.kind": ctx.kind}
        if hasattr(ctx, "ffn_dim"):
            out.update({f"context.{k}": getattr(ctx, k) for k in (
                "layers", "dim", "ffn_dim", "heads", "layer_norm_first", "pos_conv_kernel",
                "pos_conv_groups", "pos_conv_layers", "activation")})
            bias = ctx.relative_position  # its table and gates (max_distance shapes no weight)
            out["context.relative_position"] = bias and (bias.num_buckets, bias.gated)
        else:
            out["context"] = ctx.with_(dropout=0.0)
        return out

    sa, sb = shape(a), shape(b)
    for key in sa:
        if sa[key] != sb[key]:
            return f"{key}: {sa[key]} vs {sb[key]}"
    return ""
