"""Torch modules for the ``SSLModel`` space; the only subpackage that imports torch.

``build_model(spec)`` gives the model; ``align_targets`` / ``crop_labels`` align HuBERT labels
with its frames; ``load_hf_state_dict`` imports transformers Wav2Vec2/HuBERT weights.
"""

from .hf_mapping import load_hf_state_dict
from .model import ModelOutput, SSLNet, build_model
from .targets import align_targets, crop_labels

__all__ = [
    "ModelOutput",
    "SSLNet",
    "align_targets",
    "build_model",
    "crop_labels",
    "load_hf_state_dict",
]
