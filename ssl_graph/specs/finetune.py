"""Fine-tuning nodes: ``FineTune`` (CTC on a labeled subset) and ``ASRScore`` (held-apart test).

The split is part of the spec, not of the run: which utterances are tested and which are labeled
is a pure function of the utterance ids, their durations and ``Split``, so two fine-tunes of
different models (or budgets) score on the very same test utterances, and growing the corpus never
moves an existing utterance between test and train. Recipe defaults follow fairseq's
``base_10m`` / ``base_1h`` configs (reference/ssl_models.md §4).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .annotations import Alignments, Transcripts, corpus_alignments, corpus_transcripts
from .base import Component, Node, SpecError, later, runtime, threads_setting
from .components_model import SSLModel
from .components_networks import Transformer
from .components_objectives import SpanMask
from .decoding import BeamSearch
from .nodes import Corpus
from .pretrained import PretrainedModel
from .training import Adam, Pretrain, Schedule, TrainingNode

#: units="char": one fixed alphabet for every character fine-tune (CTC blank, ``|`` between
#: words as fairseq and transformers write it, apostrophe, a-z), so heads and hypotheses of any
#: labeled subset compare; ``train/vocab.py`` encodes with it, ``model_io/hf_export.py`` writes it
BLANK = "<blank>"
WORD_SEP = "|"
CHARS = (BLANK, WORD_SEP, "'", *"abcdefghijklmnopqrstuvwxyz")

#: fairseq base_10m/1h fine-tuning masks: time 0.65 × 10 frames, channel 0.25 × 64 of 768 dims
FT_MASK = SpanMask(prob=0.65, length=10, channel_prob=0.25, channel_length=64)
_REFERENCE_WIDTH = 768


def finetune_mask(model: SSLModel, base: SpanMask = FT_MASK) -> SpanMask:
    """The reference fine-tuning mask with the channel span scaled to the model's width.

    Channel spans are 64 of BASE's 768 dims (1/12); a 128-wide tiny model gets spans of 11, so
    the masked fraction and its granularity match instead of masking half the channels at once.
    """
    width = mask_width(model)
    length = max(1, round(base.channel_length * width / _REFERENCE_WIDTH))
    return base.with_(channel_length=min(length, width))


def mask_width(model: SSLModel) -> int:
    """Channels the fine-tuning masks act on: the context input (after the feature projection)."""
    if isinstance(model.context, Transformer):
        return model.context.dim
    return model.quantizer.dim if model.quantize_input else model.encoder.dim


class Split(Component):
    """Held-apart test (and dev) utterances and a labeled training subset, by seeded hashes.

    An utterance is a test utterance when hash(seed, id) < ``test_fraction`` and a dev one when
    it falls in the next ``dev_fraction``: a property of the id alone, so adding utterances never
    moves existing ones. With ``by="speaker"`` the id hashed is the utterance's speaker (from the
    corpus layout or ``Corpus(speakers=...)``), so test, dev and training speakers are disjoint.
    The labeled subset walks the training utterances in hash(seed, id) order and takes each one
    that still fits ``labeled_minutes`` (None = all of them). ``seed`` is separate from the
    training seed, so reseeding a fine-tune keeps its test set.
    """

    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    dev_fraction: float = later(0.0, ge=0.0, lt=1.0, description="held apart beside test")
    by: Literal["utterance", "speaker"] = later(
        "utterance", description="hash utterance ids, or speaker ids (speaker-disjoint sets)")
    labeled_minutes: float | None = Field(10.0, gt=0.0, description="None = all non-test")
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _fractions(self):
        if self.test_fraction + self.dev_fraction >= 1.0:
            raise SpecError(f"Split: test_fraction + dev_fraction = "
                            f"{self.test_fraction + self.dev_fraction:g} leaves nothing to train "
                            "on; keep their sum below 1")
        return self


class FineTune(TrainingNode):
    """CTC fine-tuning of a pretrained ``SSLModel`` (or, with ``pretrained=None``, from scratch).

    The pretraining heads are dropped; the context output goes through ``final_dropout`` and a
    Xavier-initialised ``Linear(d, V)`` (blank = 0). For the first ``freeze_steps`` updates the
    whole backbone runs under ``no_grad`` and only that head trains; ``feature_grad_mult=0``
    keeps the conv encoder frozen throughout. Batches are whole labeled utterances, padded, up to
    ``batch_seconds`` of padded audio in groups of ``group_seconds`` (each padded to its longest),
    length-sorted as fairseq's (``train/batching.py``) and shuffled per epoch by (seed, epoch),
    so a resumed run repeats the uninterrupted one. The CTC loss is summed over frames and divided by the
    number of utterances in the batch (fairseq's ``sentence_avg``).

    With ``split.dev_fraction > 0`` the dev utterances are decoded greedily every
    ``dev_every`` steps and the node's model is the checkpoint with the lowest dev error
    (``dev_metric``); the last checkpoint still serves resuming.

    Defaults that depend on the model are filled in when the spec is built (and so appear in its
    fingerprint): ``mask`` is the reference mask with its channel span scaled to the model width;
    from scratch, ``freeze_steps`` is 0 and ``feature_grad_mult`` the architecture's own.
    """

    #: 2: length-sorted batches (``train/batching.py``) replaced random draws, and padding
    #: no longer enters the conv encoder's group norm
    op_version = 2
    cost = 4

    pretrained: Pretrain | PretrainedModel | None = Field(
        None, description="None = train the architecture from scratch")
    model: SSLModel | None = Field(None, description="architecture (default: pretrained.model)")
    corpus: Corpus
    units: Literal["char", "phone"] = Field("char", description="char: transcripts; phone: alignments")
    transcripts: Transcripts | None = Field(
        None, description="references for units='char' (default: the corpus's transcripts=)")
    alignments: Alignments | None = Field(
        None, description="references for units='phone' (default: the corpus's alignments=)")
    split: Split = Split()
    steps: int = Field(13_000, ge=1)
    optimizer: Adam = Adam(lr=5e-5, eps=1e-8, weight_decay=0.0)
    schedule: Schedule = Schedule(curve="tri_stage", warmup=0.1, hold=0.4, init_lr_scale=0.01,
                                  final_lr_scale=0.05)
    freeze_steps: int = Field(10_000, ge=0, description="updates that train only the CTC head")
    feature_grad_mult: float = Field(0.0, ge=0.0, description="0 = conv encoder frozen throughout")
    mask: SpanMask | None = FT_MASK
    final_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    layerdrop: float = Field(0.1, ge=0.0, lt=1.0, description="Transformer contexts only")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Transformer dropout (fairseq FT: 0)")
    attention_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    activation_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    clip_norm: float = Field(0.0, ge=0.0, description="0 = no clipping (fairseq FT default)")
    batch_seconds: float = Field(1600.0, gt=0.0, description="padded audio seconds per update")
    group_seconds: float | None = Field(
        None, gt=0.0, description="padded audio seconds of one group of similar-length "
        "utterances (fairseq's max_tokens of one GPU): a batch is batch_seconds // group_seconds "
        "groups from random places in the length order; None = one group of batch_seconds")
    seed: int = Field(0, ge=0)
    dev_every: int = Field(
        100, ge=1, description="with split.dev_fraction > 0: steps between dev evaluations "
        "(greedy CER, PER for phones); the node's model is the best one by dev error, so which "
        "steps are evaluated decides the output and this field is semantic")
    checkpoint_every: int = runtime(500, ge=1, description="steps between checkpoints")

    def semantic(self) -> dict:
        out = super().semantic()
        if self.split.dev_fraction == 0:  # no dev split: no selection, fingerprints as before
            out.pop("dev_every", None)
        return out

    @property
    def dev_metric(self) -> str:
        """The error the best checkpoint is chosen by: CER for characters, PER for phones."""
        return "cer" if self.units == "char" else "per"

    @model_validator(mode="before")
    @classmethod
    def _model_defaults(cls, data):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        pre, arch = data.get("pretrained"), data.get("model")
        if arch is None and isinstance(pre, (Pretrain, PretrainedModel)):
            arch = pre.model
        if pre is None:
            data.setdefault("freeze_steps", 0)
            if isinstance(arch, SSLModel):
                data.setdefault("feature_grad_mult", arch.feature_grad_mult)
        if "mask" not in data and isinstance(arch, SSLModel):
            data["mask"] = finetune_mask(arch)
        corpus, units = data.get("corpus"), data.get("units", "char")
        if isinstance(corpus, Corpus):  # only the annotation the units read is an input
            if units == "char" and data.get("transcripts") is None:
                data["transcripts"] = corpus_transcripts(corpus)
            if units == "phone" and data.get("alignments") is None:
                data["alignments"] = corpus_alignments(corpus)
        return data

    @model_validator(mode="after")
    def _architecture(self):
        if self.pretrained is None and self.model is None:
            raise SpecError(
                "FineTune: pretrained=None trains from scratch and needs model=SSLModel(...) "
                "(e.g. wav2vec2_model('tiny'))"
            )
        if self.pretrained is not None and self.model is not None and self.model != self.pretrained.model:
            raise SpecError(
                "FineTune.model differs from pretrained.model; leave model unset to fine-tune "
                "the pretrained architecture"
            )
        if self.group_seconds is not None and self.group_seconds > self.batch_seconds:
            raise SpecError(
                f"FineTune.group_seconds ({self.group_seconds}) exceeds batch_seconds "
                f"({self.batch_seconds}); a batch holds at least one group")
        return self

    @property
    def architecture(self) -> SSLModel:
        """The backbone spec: ``model`` or the pretrained node's model."""
        return self.model if self.model is not None else self.pretrained.model

    @property
    def frame_rate(self) -> float:
        return self.architecture.frame_rate

    @property
    def references(self) -> Transcripts | Alignments:
        """The annotation node the units are read from."""
        return self.transcripts if self.units == "char" else self.alignments

    def check(self, resolve_name) -> None:
        name, cname = resolve_name(self), resolve_name(self.corpus)
        if self.units == "char" and self.transcripts is None:
            raise SpecError(
                f"{name}: units='char' needs transcripts but corpus {cname} has none; set "
                "Corpus(transcripts='transcripts.tsv') or use units='phone'"
            )
        if self.units == "phone" and self.alignments is None:
            raise SpecError(
                f"{name}: units='phone' needs phone alignments but corpus {cname} has none; set "
                "Corpus(alignments='alignments.tsv') or use units='char'"
            )
        refs = self.references
        if refs.corpus != self.corpus:
            raise SpecError(
                f"{name}: {resolve_name(refs)} annotates corpus {resolve_name(refs.corpus)}, "
                f"not the fine-tuning corpus {cname}"
            )
        sr = self.corpus.sample_rate
        if self.architecture.sample_rate != sr:
            raise SpecError(
                f"{name}: the model expects {self.architecture.sample_rate} Hz audio but corpus "
                f"{cname} is {sr} Hz; use a corpus at the model's rate"
            )
        if isinstance(self.pretrained, Pretrain) and self.pretrained.corpus.sample_rate != sr:
            pname = resolve_name(self.pretrained.corpus)
            raise SpecError(
                f"{name}: pretrained on {pname} at {self.pretrained.corpus.sample_rate} Hz but "
                f"fine-tuning corpus {cname} is {sr} Hz; resample one of them (Corpus(resample=True))"
            )
        width = mask_width(self.architecture)
        if self.mask is not None and self.mask.channel_prob > 0 and self.mask.channel_length > width:
            raise SpecError(
                f"{name}: mask.channel_length={self.mask.channel_length} exceeds the model's "
                f"{width} channels; lower it (finetune_mask(model) scales it to the width)"
            )


Metric = Literal["cer", "wer", "per"]
_UNIT_METRICS = {"char": ("cer", "wer"), "phone": ("per",)}


class ASRScore(Node):
    """CTC decoding of a ``FineTune``'s held-apart test utterances, scored by edit distance.

    ``decoder=None`` decodes greedily (best path); ``BeamSearch(...)`` runs a prefix beam
    search, with ``lm=NGramLM(...)`` a word LM trained on the fine-tune's labeled transcripts.
    CER counts characters including word spaces, WER words (char units); PER phones (phone
    units). Rates are corpus-level: total edits / total reference length.
    """

    op_version = 2
    cost = 0

    model: FineTune
    metrics: tuple[Metric, ...] | None = Field(None, description="None = every metric the units allow")
    decoder: BeamSearch | None = later(None, description="None = greedy")
    batch_seconds: float = runtime(60.0, description="padded audio seconds per decoding batch")
    device: str = runtime("auto", description="'auto' (cuda if present), 'cpu', 'cuda:0', ...")
    threads: int | None = threads_setting()

    @property
    def corpus(self) -> Corpus:
        return self.model.corpus

    @property
    def metric_names(self) -> tuple[str, ...]:
        return self.metrics if self.metrics is not None else _UNIT_METRICS[self.model.units]

    @property
    def decoder_name(self) -> str:
        return "greedy" if self.decoder is None else self.decoder.describe()

    def check(self, resolve_name) -> None:
        if self.decoder is not None and self.decoder.lm is not None and self.model.units != "char":
            raise SpecError(
                f"{resolve_name(self)}: a word LM needs char units; {resolve_name(self.model)} "
                f"outputs {self.model.units}s (drop decoder.lm)")
        allowed = _UNIT_METRICS[self.model.units]
        bad = [m for m in self.metric_names if m not in allowed]
        if bad:
            raise SpecError(
                f"{resolve_name(self)}: metric(s) {bad} do not apply to {self.model.units!r} units "
                f"of {resolve_name(self.model)}; use {list(allowed)}"
            )
