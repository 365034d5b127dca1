"""``Probe``: SUPERB's evaluation of a frozen upstream — a learnable softmax-weighted sum of its
layers and a small downstream head per task, with a recipe fixed per task so upstreams compare.

The upstream is a model (``Pretrain``, ``PretrainedModel``, a ``FineTune``'s backbone without
its CTC head) or any feature node (``MFCC`` as the
baseline, a ``LayerSweep``, a ``LayerFeatures``). A model's layers come from a ``LayerSweep``
over all of them (0 = the context input .. L), derived from the probe and read as an input: an
identical sweep declared anywhere else in the spec is the same node and one cache, so probing
never runs the model a second time. A feature node is its own single "layer".

Tasks (SUPERB, Yang et al. 2021, with the steps shortened for CPU):

* ``pr`` — phone recognition: weighted sum → linear (or 2-layer) head → CTC on phones; PER of
  greedy decoding on the held-apart test utterances. Phones are the alignments' labels folded by
  their ``PhoneMap``, silences dropped (CTC's blank covers pauses), as ``FineTune`` does.
* ``sid`` — speaker identification: weighted sum → mean over time → linear → cross-entropy;
  accuracy over held-apart utterances *of the training speakers* (split stratified by speaker).
* ``pc`` — frame phone classification: one linear classifier per layer (no weighted sum),
  accuracy per layer on the test frames; silence is one more class, as in ``ClusterQuality``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, model_validator

from .annotations import Alignments, corpus_alignments
from .base import Node, SpecError, later
from .finetune import FineTune, Split
from .layer_features import LayerFeatures, LayerSweep, network_of
from .nodes import Corpus, Features
from .pretrained import PretrainedModel
from .training import Adam, Pretrain, Schedule, TrainingNode

ProbeTask = Literal["pr", "sid", "pc"]

#: per task, the recipe's defaults (filled when the spec is built, so they are fingerprinted):
#: SUPERB's learning rates (PR 1e-2; SID 1e-4 over 200k steps, raised to 1e-3 for short runs)
RECIPES: dict[str, dict] = {
    "pr": {"optimizer": Adam(lr=1e-2, weight_decay=0.0), "steps": 600, "batch_utts": 8},
    "sid": {"optimizer": Adam(lr=1e-3, weight_decay=0.0), "steps": 600, "batch_utts": 8},
    "pc": {"optimizer": Adam(lr=1e-3, weight_decay=0.0), "steps": 400, "batch_utts": 8},
}

#: upstream kinds a probe reads, for the one-line refusal of anything else
UPSTREAMS = ("a Pretrain, PretrainedModel, FineTune (its backbone) or feature node (MFCC, "
             "LayerSweep, LayerFeatures)")
MODELS = (Pretrain, PretrainedModel, FineTune)


def sweep_of(model: Pretrain | PretrainedModel | FineTune, corpus: Corpus) -> LayerSweep:
    """Every layer of ``model`` (0 = context input .. L) over ``corpus``, one forward each."""
    n = network_of(model).context.num_layers
    return LayerSweep(model=model, corpus=corpus, layers=tuple(range(n + 1)))


class Probe(TrainingNode):
    """A small head trained on a frozen upstream's layers; see the module docstring.

    ``layers`` picks which of the upstream's layers enter the weighted sum (None = all; for a
    model these are 0..L, 0 being the context input). The learned softmax weights are stored
    in the record (``layer_weights``) and drawn by ``report``. Features are standardised per
    dimension with the training utterances' mean and variance before they are weighted. Batches
    of ``batch_utts`` training utterances are drawn by (seed, step), so a resumed run repeats
    the uninterrupted one and two runs of one spec give identical weights on CPU.
    """

    op_version = 1
    cost = 3

    upstream: Node = Field(description=f"what is probed: {UPSTREAMS}")
    task: ProbeTask
    corpus: Corpus = Field(None, description="utterances to probe (default: the upstream's)")
    layers: tuple[int, ...] | None = Field(None, description="layers in the weighted sum; None = all")
    alignments: Alignments | None = later(
        None, description="pr/pc: phone references (default: the corpus's alignments=)")
    split: Split = Field(Split(labeled_minutes=None), description="held-apart test utterances "
                         "(pr/pc: by utterance or speaker, dev apart, training within "
                         "labeled_minutes; sid: stratified by speaker, all the rest trains)")
    head: Literal["linear", "mlp"] = Field(
        "linear", description="pr/sid: linear, or a 2-layer MLP (hidden units, ReLU)")
    hidden: int = Field(256, ge=1, description="head='mlp': hidden units")
    steps: int = Field(600, ge=1)
    batch_utts: int = Field(8, ge=1, description="training utterances per update")
    optimizer: Adam = Adam(lr=1e-2, weight_decay=0.0)
    schedule: Schedule = Schedule(curve="constant", warmup=0.0)
    clip_norm: float = Field(0.0, ge=0.0, description="0 = no clipping")
    seed: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        up = data.get("upstream")
        if up is not None and not isinstance(up, (*MODELS, Features)):
            what = type(up).__name__
            raise SpecError(f"Probe.upstream: a {what} cannot be probed; give {UPSTREAMS}")
        for name, value in RECIPES.get(data.get("task"), {}).items():
            data.setdefault(name, value)
        if data.get("corpus") is None and up is not None:
            if isinstance(up, PretrainedModel):
                raise SpecError(f"Probe: PretrainedModel({up.path!r}) has no training corpus; "
                                "pass corpus= (the utterances to probe)")
            data["corpus"] = up.corpus
        corpus = data.get("corpus")
        if data.get("task") in ("pr", "pc") and data.get("alignments") is None \
                and isinstance(corpus, Corpus):
            data["alignments"] = corpus_alignments(corpus)
        return data

    @model_validator(mode="after")
    def _consistent(self):
        if self.task == "sid" and self.split.by == "speaker":
            raise SpecError("Probe(task='sid'): split.by='speaker' would test only unseen "
                            "speakers; speaker identification tests held-apart utterances of "
                            "the training speakers (leave split.by='utterance')")
        if self.task == "sid" and (self.split.labeled_minutes is not None
                                   or self.split.dev_fraction > 0):
            raise SpecError("Probe(task='sid'): trains on every utterance outside the "
                            "stratified test split; give Split(test_fraction=..., seed=..., "
                            "labeled_minutes=None) without dev_fraction")
        if self.layers is not None:
            available = self.available_layers
            bad = [x for x in self.layers if x not in available]
            if bad or list(self.layers) != sorted(set(self.layers)):
                raise SpecError(f"Probe.layers={list(self.layers)}: give distinct layers in "
                                f"increasing order among {list(available)}")
        return self

    def semantic(self) -> dict:
        out = super().semantic()
        if self.head == "linear":
            out.pop("hidden", None)
        return out

    # ---- what is read ---------------------------------------------------------------------
    @cached_property
    def features(self) -> Features:
        """The feature node read: a sweep of every layer of a model, or the upstream itself."""
        up = self.upstream
        if isinstance(up, MODELS):
            return sweep_of(up, self.corpus)
        return up

    @property
    def available_layers(self) -> tuple[int, ...]:
        """The upstream's layer numbers: the sweep's, a LayerFeatures' own, 0 for others."""
        feats = self.features
        if isinstance(feats, LayerSweep):
            return tuple(feats.layers)
        if isinstance(feats, LayerFeatures):
            return (feats.layer,)
        return (0,)

    @property
    def probed_layers(self) -> tuple[int, ...]:
        return self.layers if self.layers is not None else self.available_layers

    @property
    def layer_dim(self) -> int:
        feats = self.features
        return feats.dim // len(feats.layers) if isinstance(feats, LayerSweep) else feats.dim

    @property
    def reads_speakers(self) -> bool:
        """Whether the speaker map decides the result (its version then enters the plan)."""
        return self.task == "sid" or self.split.by == "speaker"

    def extra_inputs(self) -> list[tuple[str, Node]]:
        up = self.upstream
        return [("features", self.features)] if isinstance(up, MODELS) else []

    def check(self, resolve_name) -> None:
        name, feats = resolve_name(self), self.features
        if feats.corpus != self.corpus:
            raise SpecError(
                f"{name}: upstream {resolve_name(self.upstream)} holds features of corpus "
                f"{resolve_name(feats.corpus)}, not of {resolve_name(self.corpus)}; probe the "
                "corpus the features were computed on (or leave corpus unset)")
        if isinstance(feats, (LayerSweep, LayerFeatures)):
            feats.check(resolve_name)
        if self.task in ("pr", "pc"):
            if self.alignments is None:
                raise SpecError(
                    f"{name}: task={self.task!r} needs phone alignments but corpus "
                    f"{resolve_name(self.corpus)} has none; set Corpus(alignments=...) or "
                    "Probe(alignments=Alignments(corpus=..., path=...))")
            if self.alignments.corpus != self.corpus:
                raise SpecError(
                    f"{name}: alignments {resolve_name(self.alignments)} annotate corpus "
                    f"{resolve_name(self.alignments.corpus)}, not {resolve_name(self.corpus)}")
        if self.reads_speakers and self.corpus.layout == "files" and self.corpus.speakers is None:
            why = "task='sid'" if self.task == "sid" else "split.by='speaker'"
            raise SpecError(
                f"{name}: {why} needs speakers but corpus {resolve_name(self.corpus)} names "
                "none; set Corpus(speakers='speakers.tsv') (utt<TAB>speaker) or use a layout "
                "that has them (kaldi, librispeech, timit, lhotse)")
