"""Log mel filterbank in torch, from the MFCC op's own window and filter matrix.

``ssl_graph.audio.mfcc`` computes Kaldi log-mel energies in numpy for the audio stage; this
module runs the same steps on (B, S) batches inside a model (the log-mel front end and the
random-projection targets): the Povey window and the triangular mel filters are that module's
arrays, held as buffers, so the two cannot drift apart. Padding is honoured: a row's valid
frames are those of its valid samples, and per-utterance normalisation uses them only, so a
padded row gives exactly the frames it gives alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..audio.mfcc import PREEMPH, fft_size, mel_banks, povey_window
from ..specs.components_networks import LogMel

_FLOAT_EPS = float(torch.finfo(torch.float32).eps)  # Kaldi's floor, as the numpy op


class LogMelFilterbank(nn.Module):
    """(B, S) wave → (B, T, n_mels) log mel energies, [normalised per utterance and channel].

    Computed in the wave's floating dtype at least float32 (float64 stays float64, as the
    targets use). The window and filters are derived from the spec, so they are not saved.
    """

    def __init__(self, spec: LogMel, sample_rate: int = 16000, eps: float = 1e-5):
        super().__init__()
        self.spec, self.eps = spec, eps
        self.n_fft = fft_size(spec.win)
        window = torch.from_numpy(povey_window(spec.win).copy())
        banks = torch.from_numpy(mel_banks(spec.n_mels, self.n_fft, spec.low_freq, sample_rate))
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("banks", banks.clone(), persistent=False)

    def frame_lengths(self, sample_lengths: Tensor) -> Tensor:
        """Valid frames per row for (B,) valid sample counts."""
        n = torch.div(sample_lengths - self.spec.win, self.spec.hop, rounding_mode="floor") + 1
        return n.clamp(min=0)

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor | None]:
        """(frames (B, T, n_mels), valid frames per row (B,) or None when nothing pads).

        Always in float32/float64, also under autocast: a bf16 power spectrum would round the
        mel energies to 3 significant digits."""
        with torch.autocast(wave.device.type, enabled=False):
            return self._forward(wave, padding_mask)

    def _forward(self, wave: Tensor, padding_mask: Tensor | None
                 ) -> tuple[Tensor, Tensor | None]:
        spec = self.spec
        dtype = torch.float64 if wave.dtype == torch.float64 else torch.float32
        x = wave.to(dtype)
        if x.size(-1) < spec.win:
            return x.new_zeros(x.size(0), 0, spec.n_mels), None
        frames = x.unfold(-1, spec.win, spec.hop)  # (B, T, win)
        frames = frames - frames.mean(-1, keepdim=True)
        first = frames[..., :1] * (1.0 - PREEMPH)
        frames = torch.cat([first, frames[..., 1:] - PREEMPH * frames[..., :-1]], dim=-1)
        frames = frames * self.window.to(dtype)
        spectrum = torch.fft.rfft(frames, n=self.n_fft, dim=-1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        mel = (power @ self.banks.to(dtype)).clamp(min=_FLOAT_EPS).log()
        lengths = None
        if padding_mask is not None and bool(padding_mask.any()):
            lengths = self.frame_lengths((~padding_mask).sum(-1))
        if spec.normalize == "per_feature":
            mel = self.normalize(mel, lengths)
        return mel, lengths

    def normalize(self, mel: Tensor, lengths: Tensor | None) -> Tensor:
        """Zero mean, unit variance per row and mel channel over the row's valid frames
        (biased variance + eps); padded frames become 0."""
        if lengths is None:
            mean = mel.mean(1, keepdim=True)
            var = mel.var(1, unbiased=False, keepdim=True)
            return (mel - mean) * torch.rsqrt(var + self.eps)
        T = mel.size(1)
        valid = (torch.arange(T, device=mel.device)[None, :] < lengths[:, None]).to(mel.dtype)
        valid = valid.unsqueeze(-1)
        n = valid.sum(1, keepdim=True).clamp(min=1)
        mean = (mel * valid).sum(1, keepdim=True) / n
        var = (((mel - mean) * valid) ** 2).sum(1, keepdim=True) / n
        return (mel - mean) * torch.rsqrt(var + self.eps) * valid
