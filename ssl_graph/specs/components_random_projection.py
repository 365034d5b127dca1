"""BEST-RQ's target source: a frozen random-projection quantizer of log-mel frames.

Chiu et al. 2022 (BEST-RQ), §3: the (normalised) speech features, stacked to the encoder's frame
rate, are projected by a fixed random matrix A (Xavier initialisation) and the target of a frame
is the index of the nearest entry of a fixed random codebook, both sides L2-normalised:
``argmin_i || norm(c_i) - norm(A x) ||``. Nothing is learned (no k-means, no quantizer loss);
several codebooks (``codebooks`` > 1, the paper's multi-softmax) are independent draws of A and
of the codebook, each a label set of :class:`MaskedPrediction`.
"""

from __future__ import annotations

from pydantic import Field

from .base import Component
from .components_networks import LogMel


class RandomProjectionTargets(Component):
    """Labels from a frozen random projection + codebook(s) of ``stack`` stacked log-mel frames.

    ``features``: the log-mel frames quantized (normalised per utterance and mel channel by
    default, as the paper requires); ``stack`` consecutive frames are concatenated into one
    target frame, so targets come every ``features.hop × stack`` samples, which must equal the
    encoder's stride (checked when the model is declared: 4 × 10 ms for BEST-RQ's 40 ms front
    end, 2 × 10 ms for wav2vec 2.0's 20 ms waveform encoder). ``seed`` draws the projections and
    codebooks (a different seed is a different target set, so it is semantic); they are buffers
    of the model, saved in its checkpoint.
    """

    features: LogMel = LogMel()
    stack: int = Field(4, ge=1, description="log-mel frames concatenated per target frame")
    codebook_size: int = Field(8192, ge=2, description="entries per codebook")
    codebook_dim: int = Field(16, ge=1, description="width of the projection and the entries")
    codebooks: int = Field(1, ge=1, description="independent quantizers (multi-softmax)")
    seed: int = Field(0, ge=0, description="seed of the random projections and codebooks")

    @property
    def input_dim(self) -> int:
        """Width of a stacked frame: mel channels × ``stack``."""
        return self.features.n_mels * self.stack

    @property
    def stride(self) -> int:
        """Samples per target frame."""
        return self.features.hop * self.stack

    @property
    def num_classes(self) -> tuple[int, ...]:
        return (self.codebook_size,) * self.codebooks
