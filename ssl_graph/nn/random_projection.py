"""BEST-RQ's frozen random-projection quantizer: per-frame class labels from the wave itself.

Labels of model frame t: the log-mel frames [stack·t, stack·(t+1)) (normalised per utterance and
channel), concatenated (x ∈ R^{stack·n_mels}), projected by each codebook's fixed matrix A_k
(Xavier-uniform) and matched to the nearest entry of its fixed codebook C_k (standard normal rows,
L2-normalised), after L2-normalising A_k x: ``argmin_i ||C_k[i] - A_k x / ||A_k x|| ||``, which for
unit vectors is ``argmax_i C_k[i] · A_k x``. A and C are drawn from ``seed`` when the model is
built and are buffers: never trained, saved in the checkpoint (so a resumed or exported model
keeps its targets whatever the RNG). Labels are computed in float64 from the wave, per row, so
they do not depend on the batch a row is in.

A model frame past the last whole stack (a 20 ms encoder frame whose second 10 ms mel frame lies
past the audio's end) reads zeros for the missing mel frames: the normalised features' mean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..specs.components_random_projection import RandomProjectionTargets
from .filterbank import LogMelFilterbank
from .target_sources import ForwardState, Targets, TargetSource


def draw_quantizers(spec: RandomProjectionTargets) -> tuple[Tensor, Tensor]:
    """(projections (K, stack·n_mels, codebook_dim), codebooks (K, V, codebook_dim)), float32.

    One CPU generator seeded with ``spec.seed`` draws, for each of the K codebooks in turn, its
    projection (uniform in ±sqrt(6 / (fan_in + fan_out)), Xavier) then its codebook (standard
    normal, rows L2-normalised).
    """
    g = torch.Generator().manual_seed(spec.seed)
    d_in, d = spec.input_dim, spec.codebook_dim
    bound = math.sqrt(6.0 / (d_in + d))
    projections, codebooks = [], []
    for _ in range(spec.codebooks):
        projections.append((torch.rand(d_in, d, generator=g, dtype=torch.float64) * 2 - 1) * bound)
        book = torch.randn(spec.codebook_size, d, generator=g, dtype=torch.float64)
        codebooks.append(F.normalize(book, dim=-1))
    return torch.stack(projections).float(), torch.stack(codebooks).float()


class RandomProjectionQuantizer(TargetSource):
    """The ``RandomProjectionTargets`` source: :meth:`labels` turns a (B, S) wave into one
    (B, T) LongTensor of labels per codebook for T model frames; as a target source it labels
    the forward's wave (``ForwardState.wave``) for its frames."""

    def __init__(self, spec: RandomProjectionTargets, sample_rate: int = 16000):
        super().__init__()
        self.spec = spec
        self.filterbank = LogMelFilterbank(spec.features, sample_rate)
        projections, codebooks = draw_quantizers(spec)
        self.register_buffer("projections", projections)
        self.register_buffer("codebooks", codebooks)

    def stacked_frames(self, wave: Tensor, padding_mask: Tensor | None, n_frames: int) -> Tensor:
        """(B, n_frames, stack·n_mels) float64: ``stack`` consecutive log-mel frames per model
        frame, zeros where the audio has no more whole mel frames."""
        mel, _ = self.filterbank(wave.double(), padding_mask)
        B, T, n_mels = mel.shape
        need = n_frames * self.spec.stack
        mel = F.pad(mel, (0, 0, 0, need - T)) if need > T else mel[:, :need]
        return mel.reshape(B, n_frames, self.spec.stack * n_mels)

    def forward(self, state: ForwardState) -> Targets:
        return Targets(labels=self.labels(state.wave, state.wave_padding, state.valid.size(1)))

    @torch.no_grad()
    def labels(self, wave: Tensor, padding_mask: Tensor | None, n_frames: int) -> list[Tensor]:
        x = self.stacked_frames(wave, padding_mask, n_frames)
        labels = []
        for proj, book in zip(self.projections.double(), self.codebooks.double()):
            y = F.normalize(x @ proj, dim=-1)
            # row by row: (T, V) scores at a time rather than (B, T, V)
            labels.append(torch.stack([(row @ book.T).argmax(-1) for row in y]))
        return labels
