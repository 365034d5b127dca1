"""Front ends: ``build_encoder`` picks the waveform conv encoders (``encoders.py``) or the log-mel
front end here: wave → log mel frames → 2-d conv subsampling → Linear (BEST-RQ's input).

Like the waveform encoders it is a stack without time padding, so T = ``spec.output_length(S)``
(the framing is its first "layer") and padding never reaches a valid frame; the per-utterance
normalisation of the mel channels uses each row's valid frames only.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..specs.components_networks import ConvFeatureEncoder, Encoder, FilterbankEncoder
from .common import activation
from .encoders import ConvFeatureEncoderModule, Wav2VecEncoderModule, _ConvStackModule
from .filterbank import LogMelFilterbank


class FilterbankEncoderModule(_ConvStackModule):
    """LogMel → [Conv2d (time, mel) → activation] × n → flatten (channels × mel bins) → Linear."""

    def __init__(self, spec: FilterbankEncoder, sample_rate: int = 16000):
        super().__init__(spec)
        self.filterbank = LogMelFilterbank(spec.features, sample_rate)
        layers, c_in = [], 1
        for c_out, k, s in spec.conv_layers:
            layers += [nn.Conv2d(c_in, c_out, k, stride=s, padding=(0, k // 2)),
                       activation(spec.activation)]
            c_in = c_out
        self.subsampling = nn.Sequential(*layers)
        self.out = nn.Linear(c_in * spec.mel_bins(), spec.out_dim)
        self.dropout = nn.Dropout(spec.dropout)

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        mel, _ = self.filterbank(wave, padding_mask)  # (B, T, n_mels) float32
        x = self.subsampling(mel.to(wave.dtype).unsqueeze(1))  # (B, C, T', F')
        x = x.permute(0, 2, 1, 3).flatten(2)  # (B, T', C·F')
        return self.dropout(self.out(x))


def build_encoder(spec: Encoder, sample_rate: int = 16000) -> _ConvStackModule:
    """The front-end module of an ``Encoder`` spec."""
    if isinstance(spec, ConvFeatureEncoder):
        return ConvFeatureEncoderModule(spec)
    if isinstance(spec, FilterbankEncoder):
        return FilterbankEncoderModule(spec, sample_rate)
    return Wav2VecEncoderModule(spec)
