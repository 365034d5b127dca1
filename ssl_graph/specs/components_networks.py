"""Network components: waveform encoders, the log-mel front end and context networks.

Defaults follow the papers / fairseq (see ``reference/ssl_models.md`` §1). Geometry helpers
(``stride``, ``output_length``) are pure Python so plan-time checks (label rate vs frame rate)
never import torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Component, later

ConvLayers = tuple[tuple[int, int, int], ...]  # (channels, kernel, stride) per layer

#: wav2vec 2.0 / HuBERT: 7 × 512 ch, kernels (10,3,3,3,3,2,2), strides (5,2,2,2,2,2,2) = 320
W2V2_CONV: ConvLayers = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
#: wav2vec / vq-wav2vec: 5 causal convs, kernels (10,8,4,4,4), strides (5,4,2,2,2) = 160 (10 ms)
W2V_CONV: ConvLayers = ((512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2))


class _ConvStack(Component):
    """Shared geometry of strided 1-d conv stacks without padding."""

    conv_layers: ConvLayers

    @model_validator(mode="after")
    def _positive(self):
        if not self.conv_layers:
            raise ValueError(f"{self.kind}.conv_layers must not be empty")
        for i, (dim, k, s) in enumerate(self.conv_layers):
            if min(dim, k, s) < 1:
                raise ValueError(f"{self.kind}.conv_layers[{i}]={(dim, k, s)}: all must be >= 1")
        return self

    @property
    def layer_geometry(self) -> ConvLayers:
        return self.conv_layers

    @property
    def dim(self) -> int:
        """Channels of the encoder output."""
        return self.layer_geometry[-1][0]

    @property
    def stride(self) -> int:
        """Samples per output frame (320 for wav2vec 2.0: 20 ms at 16 kHz)."""
        out = 1
        for _, _, s in self.layer_geometry:
            out *= s
        return out

    @property
    def receptive_field(self) -> int:
        """Samples one output frame sees (400 for wav2vec 2.0, 465 for wav2vec)."""
        rf, jump = 1, 1
        for _, k, s in self.layer_geometry:
            rf += (k - 1) * jump
            jump *= s
        return rf

    def output_length(self, n_samples: int) -> int:
        """Frames for ``n_samples`` input samples: floor((L - k) / s) + 1 per layer."""
        n = n_samples
        for _, k, s in self.layer_geometry:
            n = (n - k) // s + 1 if n >= k else 0
        return n


class ConvFeatureEncoder(_ConvStack):
    """wav2vec 2.0 / HuBERT waveform encoder (stride 320, RF 400 samples at the defaults).

    ``group_norm`` (BASE): GroupNorm(C, C) on the first layer only, no conv bias, raw wave.
    ``layer_norm`` (LARGE): LayerNorm after every conv, conv bias, wave normalised per utterance.
    """

    conv_layers: ConvLayers = W2V2_CONV
    mode: Literal["group_norm", "layer_norm"] = "group_norm"
    conv_bias: bool = False
    normalize_wave: bool = Field(
        False, description="layer-norm each utterance's wave (fairseq task.normalize)"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each conv")
    activation: Literal["gelu", "relu"] = "gelu"


class Wav2VecEncoder(_ConvStack):
    """wav2vec / vq-wav2vec causal conv encoder: conv → GroupNorm(1) → ReLU, then log(|x|+1).

    ``extra_linear`` appends (dim, 1, 1) layers: the paper's *wav2vec large* uses 2, fairseq's
    default command line 3 (vq-wav2vec too).
    """

    conv_layers: ConvLayers = W2V_CONV
    extra_linear: int = Field(0, ge=0, description="extra 1×1 conv layers after conv_layers")
    log_compression: bool = True
    skip_connections: bool = False
    residual_scale: float = Field(0.5, gt=0.0, description="skip sum is scaled by √this")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    activation: Literal["relu", "gelu"] = "relu"
    non_affine_group_norm: bool = False

    @property
    def layer_geometry(self) -> ConvLayers:
        return self.conv_layers + ((self.conv_layers[-1][0], 1, 1),) * self.extra_linear


class LogMel(Component):
    """Kaldi-style log mel filterbank energies (the MFCC op's filters and framing, before its
    DCT): ``n_mels`` filters from ``low_freq`` to Nyquist over frames of ``win`` samples every
    ``hop`` (80 × 25 ms / 10 ms: BEST-RQ's input), dither 0.

    ``normalize="per_feature"``: each utterance's mel channels are brought to zero mean and unit
    variance over its own (valid) frames, as NeMo's ``normalize: per_feature`` and BEST-RQ's
    "normalised" features (the paper: needed so the random projection does not collapse onto a
    few codes); ``"none"``: raw log energies.
    """

    n_mels: int = Field(80, ge=1)
    hop: int = Field(160, ge=1, description="frame shift in samples (10 ms at 16 kHz)")
    win: int = Field(400, ge=2, description="frame length in samples (25 ms at 16 kHz)")
    low_freq: float = Field(20.0, ge=0.0, description="lowest filter edge in Hz (Kaldi's 20)")
    normalize: Literal["per_feature", "none"] = "per_feature"

    def frames(self, n_samples: int) -> int:
        """Frames of ``n_samples`` samples (Kaldi ``snip_edges``: whole windows only)."""
        return 0 if n_samples < self.win else 1 + (n_samples - self.win) // self.hop


#: BEST-RQ's front end: two 3×3 stride-2 convs over (time, mel), 4× subsampling (40 ms frames)
BEST_RQ_SUBSAMPLING: ConvLayers = ((256, 3, 2), (256, 3, 2))


class FilterbankEncoder(_ConvStack):
    """Log-mel front end + conv subsampling (BEST-RQ's / the Conformer's input), beside the
    waveform conv encoders: wave → :class:`LogMel` frames → 2-d convs over (time, mel), each
    (channels, kernel, stride) on both axes, ReLU → Linear(channels × mel bins left, ``out_dim``).

    Time is not padded (a valid frame never reads padding, output lengths follow the conv
    arithmetic, as the waveform encoders'); the mel axis is zero-padded by kernel // 2 (80 → 40
    → 20 bins, as NeMo's striding subsampling). Geometry in samples: the framing is a first
    layer of kernel ``win`` and stride ``hop``, so the defaults give stride 640 (40 ms, 25 Hz).
    """

    features: LogMel = LogMel()
    conv_layers: ConvLayers = BEST_RQ_SUBSAMPLING
    out_dim: int = Field(512, ge=1, description="width of the frames (the subsampling's Linear)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after the Linear")
    activation: Literal["relu", "gelu"] = "relu"

    @property
    def layer_geometry(self) -> ConvLayers:
        f = self.features
        return ((f.n_mels, f.win, f.hop),) + self.conv_layers

    @property
    def dim(self) -> int:
        return self.out_dim

    def mel_bins(self) -> int:
        """Mel bins left after the subsampling convs (each pads kernel // 2 on the mel axis)."""
        n = self.features.n_mels
        for _, k, s in self.conv_layers:
            n = (n + 2 * (k // 2) - k) // s + 1
        return n


Encoder = ConvFeatureEncoder | Wav2VecEncoder | FilterbankEncoder


class ConvContext(Component):
    """wav2vec context network: causal stride-1 convs (left-padded by k-1), GroupNorm(1), ReLU.

    Paper: 9 layers, k=3, 512 ch (RF ≈ 210 ms). *wav2vec large* / vq-wav2vec: 12 layers with
    k = 2..13 and skip connections whose sum is scaled by √``residual_scale`` (√0.5).
    """

    conv_layers: tuple[tuple[int, int], ...] = ((512, 3),) * 9  # (channels, kernel)
    skip_connections: bool = False
    residual_scale: float = Field(0.5, gt=0.0)
    conv_bias: bool = True
    zero_pad: bool = Field(False, description="zero instead of replicate left padding")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    activation: Literal["relu", "gelu"] = "relu"
    non_affine_group_norm: bool = False

    @property
    def dim(self) -> int:
        return self.conv_layers[-1][0]

    @property
    def num_layers(self) -> int:
        return len(self.conv_layers)


class GatedRelativePositionBias(Component):
    """WavLM's relative position bias on the attention logits (Chen et al. 2022, §2.2).

    The offset j − i between key and query frames falls into one of ``num_buckets`` buckets
    (half per direction: exact for the nearest ``num_buckets // 4`` offsets, logarithmic up to
    ``max_distance``, farther offsets share the last bucket). One learned table (bucket → bias
    per head) is computed once and shared by every layer. With ``gated``, each layer scales it
    per head and query frame by a gate computed from the query (WavLM's gated relative
    position bias); without, the bias is added as it is (T5-style).
    """

    num_buckets: int = Field(320, ge=4, description="buckets over both directions (even)")
    max_distance: int = Field(800, ge=2, description="frames beyond which offsets share a bucket")
    gated: bool = Field(True, description="per-layer gate from the query (WavLM)")

    @model_validator(mode="after")
    def _buckets(self):
        if self.num_buckets % 2:
            raise ValueError(
                f"GatedRelativePositionBias.num_buckets={self.num_buckets} must be even (half "
                "the buckets per direction); WavLM uses 320"
            )
        exact = self.num_buckets // 4
        if self.max_distance <= exact:
            raise ValueError(
                f"GatedRelativePositionBias.max_distance={self.max_distance} must exceed "
                f"num_buckets // 4 = {exact} (the offsets that get a bucket each); WavLM uses 800"
            )
        return self


class Transformer(Component):
    """wav2vec 2.0 / HuBERT context network with a conv relative positional embedding.

    Defaults are BASE: post-LN (``layer_norm_first=False``: LN after the positional conv and
    inside each residual block); LARGE uses pre-LN with a final LN.

    ``pos_conv_layers=1`` is wav2vec 2.0's single weight-normed conv of ``pos_conv_kernel``;
    more layers are data2vec's stack (base: 5 layers of kernel 19), each a plain conv followed
    by a LayerNorm without affine parameters and the activation. ``relative_position`` adds
    WavLM's (gated) relative position bias to every layer's attention logits.
    """

    layers: int = Field(12, ge=1)
    dim: int = Field(768, ge=1)
    ffn_dim: int = Field(3072, ge=1)
    # 12 heads as fairseq and torchaudio wav2vec2_base / hubert_base; the papers' tables say 8.
    heads: int = Field(12, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    attention_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    activation_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    layerdrop: float = Field(0.05, ge=0.0, lt=1.0)
    layer_norm_first: bool = False
    pos_conv_kernel: int = Field(128, ge=1)
    pos_conv_groups: int = Field(16, ge=1)
    pos_conv_layers: int = later(
        1, ge=1, description="1: one weight-normed conv (wav2vec 2.0); >1: data2vec's conv → "
        "LayerNorm → activation stack, pos_conv_kernel per layer"
    )
    relative_position: GatedRelativePositionBias | None = later(
        None, description="WavLM's gated relative position bias on the attention logits"
    )
    activation: Literal["gelu", "relu"] = "gelu"

    @model_validator(mode="after")
    def _divisible(self):
        if self.dim % self.heads:
            raise ValueError(f"Transformer.dim={self.dim} is not divisible by heads={self.heads}")
        if self.dim % self.pos_conv_groups:
            raise ValueError(
                f"Transformer.dim={self.dim} is not divisible by "
                f"pos_conv_groups={self.pos_conv_groups}"
            )
        return self

    @property
    def num_layers(self) -> int:
        return self.layers


Context = Transformer | ConvContext
