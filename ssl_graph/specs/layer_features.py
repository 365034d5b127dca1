"""``LayerFeatures``: a trained model's layer output per utterance, the input of HuBERT's next
iteration (it2 clusters layer 6 of the it1 model). ``LayerSweep``: several layers from one
forward pass, so a layer sweep (HuBERT Fig. 2, PNMI vs layer) costs one pass, not one per layer.

The model is a ``Pretrain``, a ``PretrainedModel`` or a ``FineTune`` (its fine-tuned backbone,
without the CTC head).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import SpecError, later, runtime, threads_setting
from .components_model import SSLModel
from .finetune import FineTune
from .nodes import Corpus, Features
from .pretrained import PretrainedModel
from .training import Pretrain

#: default ``chunk_seconds`` (fairseq's dump script: 1.6M samples at 16 kHz)
CHUNK_SECONDS = 100.0

ModelNode = Pretrain | PretrainedModel | FineTune


def network_of(model: ModelNode) -> SSLModel:
    """The architecture whose layers a model node's features are: a fine-tune's backbone."""
    return model.architecture if isinstance(model, FineTune) else model.model


def _default_corpus(data, kind: str):
    if isinstance(data, dict) and data.get("corpus") is None and data.get("model") is not None:
        model = data["model"]
        if isinstance(model, PretrainedModel):
            raise SpecError(f"{kind}: PretrainedModel({model.path!r}) has no training corpus; "
                            "pass corpus= (the utterances to extract features of)")
        data = {**data, "corpus": model.corpus if isinstance(model, (Pretrain, FineTune)) else None}
    return data


def _check_layer(node, layer: int, resolve_name) -> None:
    n = node.network.context.num_layers
    if layer > n:
        raise SpecError(
            f"{resolve_name(node)}: layer={layer} but model {resolve_name(node.model)} "
            f"has {n} context layers; pick 0..{n}"
        )


class _ModelFeatures(Features):
    """Geometry shared by nodes that store a model's context-network outputs."""

    per_utterance = True
    cost = 3

    model: ModelNode
    corpus: Corpus = Field(None, description="utterances to run over (default: model.corpus)")
    # semantic: the model sees each chunk alone, so the frames of longer audio depend on it
    chunk_seconds: float = later(CHUNK_SECONDS, gt=0.0, description="split longer audio into chunks "
                                 "(each goes through the model alone, as fairseq's dump script)")
    device: str = runtime("auto", description="'auto' (cuda if present), 'cpu', 'cuda:0'")
    workers: int | None = runtime(
        None, ge=0, description="DataLoader processes decoding audio ahead of the model; "
        "None = 2 on CUDA, 0 on CPU")
    threads: int | None = threads_setting()

    @property
    def network(self) -> SSLModel:
        return network_of(self.model)

    @property
    def frame_rate(self) -> float:
        return self.network.frame_rate

    @property
    def frame_offset(self) -> float:
        """Centre of frame 0 (half the encoder's receptive field), to align with phone times."""
        enc = self.network.encoder
        return enc.receptive_field / 2 / self.network.sample_rate

    @property
    def min_samples(self) -> int:
        """Shortest audio with one frame (the encoder's receptive field); shorter utterances are
        refused before the model is loaded (see ``ops/base.py``)."""
        return self.network.encoder.receptive_field


class LayerSweep(_ModelFeatures):
    """Context layers ``layers`` of a model from one forward pass per utterance, stored side by
    side (frames × len(layers)·dim). Take one as its own feature node with :meth:`layer`.

    Utterances go through the transformer in batches of similar length (up to
    ``batch_seconds`` of padded audio) with key padding masks; the conv encoder runs on each
    utterance alone (GroupNorm over time would see the padding), so every frame equals what
    one-utterance-at-a-time inference gives.
    """

    layers: tuple[int, ...] = Field(min_length=1, description="1-based; 0 = the context input")
    batch_seconds: float = runtime(60.0, description="padded audio seconds per forward pass")

    @model_validator(mode="before")
    @classmethod
    def _corpus(cls, data):
        return _default_corpus(data, "LayerSweep")

    @model_validator(mode="after")
    def _sorted(self):
        if list(self.layers) != sorted(set(self.layers)) or min(self.layers) < 0:
            raise SpecError(f"LayerSweep.layers={list(self.layers)}: give distinct layers >= 0 in "
                            f"increasing order, e.g. {sorted(set(max(0, x) for x in self.layers))}")
        return self

    @property
    def dim(self) -> int:
        return self.network.context.dim * len(self.layers)

    def layer(self, layer: int) -> "LayerFeatures":
        """Layer ``layer`` of this sweep as a ``LayerFeatures`` node (a slice, no forward)."""
        return LayerFeatures(model=self.model, corpus=self.corpus, layer=layer, sweep=self)

    def check(self, resolve_name) -> None:
        _check_layer(self, max(self.layers), resolve_name)


class LayerFeatures(_ModelFeatures):
    """Context-network layer ``layer`` (1-based, as fairseq's ``output_layer``; 0 = the context
    input) of a ``Pretrain`` (or ``PretrainedModel``) model over every utterance of ``corpus``
    (default: the training corpus). Long audio is processed in chunks of ``chunk_seconds`` like
    fairseq's dump script. With ``sweep=`` the layer is sliced from a ``LayerSweep`` instead of
    running the model again.
    """

    layer: int = Field(ge=0)
    sweep: LayerSweep | None = later(None, description="slice the layer from this sweep")

    @model_validator(mode="before")
    @classmethod
    def _corpus(cls, data):
        if isinstance(data, dict) and isinstance(data.get("sweep"), LayerSweep):
            sweep = data["sweep"]
            data = {"model": sweep.model, "corpus": sweep.corpus, **data}
        return _default_corpus(data, "LayerFeatures")

    @property
    def dim(self) -> int:
        return self.network.context.dim

    def check(self, resolve_name) -> None:
        _check_layer(self, self.layer, resolve_name)
        sweep = self.sweep
        if sweep is None:
            return
        name = resolve_name(self)
        if self.layer not in sweep.layers:
            raise SpecError(f"{name}: layer={self.layer} is not among {resolve_name(sweep)}'s "
                            f"layers {list(sweep.layers)}; add it there")
        if sweep.model != self.model or sweep.corpus != self.corpus:
            raise SpecError(f"{name}: model/corpus differ from its sweep {resolve_name(sweep)}'s; "
                            "leave them unset (sweep.layer(n) fills them)")
