"""``PretrainedModel``: a released checkpoint (a local transformers directory) as a node.

It stands wherever a ``Pretrain`` node does — ``LayerFeatures`` (units from any layer of a
released HuBERT), ``FineTune(pretrained=...)`` and ``Pretrain(init=...)`` — because its op stores
the weights under our names, in the same place a ``Pretrain`` node stores its own.

Like an annotation file it is an *input*: its data version is the content hash of config and
weights, so replacing the checkpoint reruns what read it, and touching it reruns nothing. The
architecture is read from ``config.json`` when the spec is built and is part of the fingerprint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from .base import Node, SpecError
from .components_model import SSLModel
from .nodes import SPEC_DIR, resolve_path

_FAIRSEQ_REFUSED = (
    "format='fairseq' is refused: fairseq checkpoints are pickled (torch.save), and unpickling "
    "one can run arbitrary code. Convert it where you trust it (transformers' "
    "convert_*_original_pytorch_checkpoint_to_pytorch script, then save_pretrained with "
    "safe_serialization=True) and use format='hf'")


class PretrainedModel(Node):
    """Weights of a local transformers ``Wav2Vec2Model`` / ``HubertModel`` directory.

    Only the backbone (conv encoder, feature projection, transformer, mask embedding) is read;
    ``model`` is filled from ``config.json`` (leave it unset). ``model_type`` records which HF
    family it came from, so exporting a fine-tune of it writes the same family back.
    """

    path: str = Field(description="a directory written by save_pretrained (relative to the spec)")
    format: Literal["hf", "fairseq"] = "hf"
    model: SSLModel | None = Field(None, description="filled from config.json")
    model_type: str = Field("", description="filled from config.json")
    _base: str = PrivateAttr(default="")

    @model_validator(mode="before")
    @classmethod
    def _read_config(cls, data):
        if not isinstance(data, dict) or "path" not in data:
            return data
        from .hf_config import read_config, read_preprocessor, ssl_model

        what = f"PretrainedModel(path={data['path']!r})"
        if data.get("format", "hf") == "fairseq":
            raise SpecError(f"{what}: {_FAIRSEQ_REFUSED}")
        root = resolve_path(SPEC_DIR.get() or os.getcwd(), str(data["path"]))
        if not root.is_dir():
            raise SpecError(f"{what}: {root} is not a directory (local directories only; no "
                            "hub downloads at run time)")
        cfg = read_config(root, what)
        return {**data, "model": ssl_model(cfg, read_preprocessor(root, cfg)),
                "model_type": cfg["model_type"]}

    def model_post_init(self, __context) -> None:
        self._base = SPEC_DIR.get() or os.getcwd()

    def directory(self) -> Path:
        return resolve_path(self._base, self.path)

    @property
    def frame_rate(self) -> float:
        return self.model.frame_rate

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate
