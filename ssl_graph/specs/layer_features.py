"""``LayerFeatures``: a trained model's layer output per utterance, the input of HuBERT's next
iteration (it2 clusters layer 6 of the it1 model)."""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import Node, SpecError, runtime
from .nodes import Corpus
from .pretrained import PretrainedModel
from .training import Pretrain


class LayerFeatures(Node):
    """Context-network layer ``layer`` (1-based, as fairseq's ``output_layer``; 0 = the context
    input) of a ``Pretrain`` (or ``PretrainedModel``) model over every utterance of ``corpus`` (default: the training
    corpus). Long audio is processed in chunks of ``chunk_seconds`` like fairseq's dump script.
    """

    per_utterance = True

    model: Pretrain | PretrainedModel
    layer: int = Field(ge=0)
    corpus: Corpus = Field(None, description="utterances to run over (default: model.corpus)")
    chunk_seconds: float = runtime(100.0, description="split longer audio into chunks")
    device: str = runtime("auto", description="'auto' (cuda if present), 'cpu', 'cuda:0'")

    @model_validator(mode="before")
    @classmethod
    def _default_corpus(cls, data):
        if isinstance(data, dict) and data.get("corpus") is None and data.get("model") is not None:
            model = data["model"]
            if isinstance(model, PretrainedModel):
                raise SpecError(f"LayerFeatures: PretrainedModel({model.path!r}) has no training "
                                "corpus; pass corpus= (the utterances to extract features of)")
            data = {**data, "corpus": model.corpus if isinstance(model, Pretrain) else None}
        return data

    @property
    def frame_rate(self) -> float:
        return self.model.model.frame_rate

    @property
    def frame_offset(self) -> float:
        """Centre of frame 0 (half the encoder's receptive field), to align with phone times."""
        enc = self.model.model.encoder
        return enc.receptive_field / 2 / self.model.model.sample_rate

    @property
    def dim(self) -> int:
        return self.model.model.context.dim

    def check(self, resolve_name) -> None:
        n = self.model.model.context.num_layers
        if self.layer > n:
            raise SpecError(
                f"{resolve_name(self)}: layer={self.layer} but model {resolve_name(self.model)} "
                f"has {n} context layers; pick 0..{n}"
            )
