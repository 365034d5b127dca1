"""The paper models as presets over one :class:`SSLModel` space.

``base`` / ``large`` follow the papers and fairseq configs (``reference/ssl_models.md`` §1).
``tiny`` keeps each model's geometry and objective (so labels, strides and offsets behave as in
the paper model) but shrinks widths and depths to train on a laptop CPU in minutes:

* conv encoders: the paper kernels/strides with 64 channels (wav2vec: 10 ms frames; wav2vec 2.0
  / HuBERT: 20 ms frames, stride 320, so 100 Hz MFCC labels still align with ratio 2);
* wav2vec context: 3 causal conv layers of 64 channels (k=3);
* transformer: 2 layers, width 128, FFN 256, 4 heads, positional conv k=32 in 4 groups,
  no layerdrop; prediction head width 64;
* quantizers: 2 groups × 32 entries, 64-d codes.

Override anything with ``.with_(...)``, e.g. ``wav2vec2_model("base").with_(mask=...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .base import SpecError
from .components_model import SSLModel
from .components_networks import (
    W2V2_CONV,
    W2V_CONV,
    ConvContext,
    ConvFeatureEncoder,
    FilterbankEncoder,
    Transformer,
    Wav2VecEncoder,
)
from .components_objectives import (
    ClusterTargets,
    CommitmentLoss,
    Contrastive,
    Diversity,
    FeaturePenalty,
    FutureFrames,
    GumbelQuantizer,
    KMeansQuantizer,
    MaskedPrediction,
    QuantizedLatents,
    Regression,
    SpanMask,
    StepPrediction,
    TeacherTargets,
    UtteranceMixing,
)
from .components_random_projection import RandomProjectionTargets
from .nodes import Labels

Size = Literal["tiny", "base", "large"]
_TINY_CH = 64


def _size(size: str) -> str:
    if size not in ("tiny", "base", "large"):
        raise SpecError(f"size must be 'tiny', 'base' or 'large'; got {size!r}")
    return size


def _tiny_conv(layers):
    return tuple((_TINY_CH, k, s) for _, k, s in layers)


def _w2v2_backbone(size: str) -> dict:
    """Encoder, transformer and training knobs shared by wav2vec 2.0 and HuBERT."""
    if size == "large":
        return {
            "encoder": ConvFeatureEncoder(mode="layer_norm", conv_bias=True, normalize_wave=True),
            "context": Transformer(
                layers=24,
                dim=1024,
                ffn_dim=4096,
                heads=16,
                dropout=0.0,
                attention_dropout=0.0,
                layerdrop=0.0,
                layer_norm_first=True,
            ),
            "feature_grad_mult": 1.0,
        }
    if size == "tiny":
        return {
            "encoder": ConvFeatureEncoder(conv_layers=_tiny_conv(W2V2_CONV)),
            "context": Transformer(
                layers=2,
                dim=128,
                ffn_dim=256,
                heads=4,
                layerdrop=0.0,
                pos_conv_kernel=32,
                pos_conv_groups=4,
            ),
            "feature_grad_mult": 0.1,
            "dropout_input": 0.1,
            "dropout_features": 0.1,
        }
    # BASE: 12 heads like fairseq/torchaudio (the papers' tables say 8), see Transformer.heads
    return {
        "encoder": ConvFeatureEncoder(),
        "context": Transformer(),
        "feature_grad_mult": 0.1,
        "dropout_input": 0.1,
        "dropout_features": 0.1,
    }


def wav2vec2_model(size: Size = "base") -> SSLModel:
    """wav2vec 2.0: contrastive prediction of Gumbel-quantized latents at masked frames."""
    size = _size(size)
    final_dim = {"tiny": 64, "base": 256, "large": 768}[size]
    quantizer = GumbelQuantizer(groups=2, entries=320, dim=final_dim)
    losses = (Contrastive(), Diversity(weight=0.1), FeaturePenalty(weight=10.0))
    if size == "large":  # LV-60k: τ floor 0.1, loss_weights [0.1, 0]
        quantizer = quantizer.with_(temperature=(2.0, 0.1, 0.999995))
        losses = losses[:2]
    if size == "tiny":
        quantizer = quantizer.with_(entries=32)
    return SSLModel(
        **_w2v2_backbone(size),
        quantizer=quantizer,
        mask=SpanMask(prob=0.65, length=10),
        target=QuantizedLatents(),
        losses=losses,
        final_dim=final_dim,
    )


def hubert_model(size: Size = "base", labels: Labels | Sequence[Labels] = ()) -> SSLModel:
    """HuBERT: masked prediction of k-means labels (``labels``: one set, or an ensemble)."""
    size = _size(size)
    labels = (labels,) if isinstance(labels, Labels) else tuple(labels)
    if not labels:
        raise SpecError("hubert_model needs labels=Labels(...) (or a tuple of them)")
    return SSLModel(
        **_w2v2_backbone(size),
        mask=SpanMask(prob=0.80, length=10),
        target=ClusterTargets(labels=labels),
        losses=(MaskedPrediction(), FeaturePenalty(weight=10.0)),
        final_dim={"tiny": 64, "base": 256, "large": 768}[size],
    )


def _w2v_networks(size: str, extra_linear: int) -> dict:
    if size == "tiny":
        return {
            "encoder": Wav2VecEncoder(conv_layers=_tiny_conv(W2V_CONV)),
            "context": ConvContext(conv_layers=((_TINY_CH, 3),) * 3),
        }
    if size == "base" and extra_linear == 0:
        return {"encoder": Wav2VecEncoder(), "context": ConvContext()}
    # wav2vec large and vq-wav2vec: extra 1×1 encoder layers, 12 context layers k=2..13 + skips
    return {
        "encoder": Wav2VecEncoder(extra_linear=extra_linear),
        "context": ConvContext(
            conv_layers=tuple((512, k) for k in range(2, 14)), skip_connections=True
        ),
    }


def wav2vec_model(size: Size = "base") -> SSLModel:
    """wav2vec: 12-step future prediction (BCE, 10 negatives) from a causal conv context.

    ``base`` is the paper's model (5 + 9 layers); ``large`` is *wav2vec large* (+2 linear
    encoder layers, 12 context layers with skips; fairseq's command line uses 3 linear layers).
    """
    size = _size(size)
    return SSLModel(
        **_w2v_networks(size, extra_linear=2 if size == "large" else 0),
        target=FutureFrames(steps=12),
        losses=(StepPrediction(negatives=10),),
        final_dim=0,
        feature_layer_norm=False,
    )


def vq_wav2vec_model(
    size: Size = "base", quantizer: Literal["gumbel", "kmeans"] = "gumbel"
) -> SSLModel:
    """vq-wav2vec: wav2vec's objective on quantized features (G=2 × V=320, shared codebook).

    The paper has one size: ``base`` and ``large`` both give it (8-layer encoder, 12-layer
    context with skips, K=8 steps, ReLU). The Gumbel run adds no auxiliary loss (fairseq README
    sets no loss weights); k-means adds its commitment loss with weight 1.
    """
    size = _size(size)
    dim, entries = (_TINY_CH, 32) if size == "tiny" else (512, 320)
    if quantizer == "gumbel":
        q = GumbelQuantizer(
            groups=2,
            entries=entries,
            dim=dim,
            combine_groups=True,
            depth=2,
            hidden_factor=2,
            activation="relu",
        )
        losses = (StepPrediction(negatives=10),)
    elif quantizer == "kmeans":
        q = KMeansQuantizer(groups=2, entries=entries, dim=dim, gamma=0.25, combine_groups=True)
        losses = (StepPrediction(negatives=10), CommitmentLoss(weight=1.0))
    else:
        raise SpecError(f"quantizer must be 'gumbel' or 'kmeans'; got {quantizer!r}")
    return SSLModel(
        **_w2v_networks(size, extra_linear=3),
        quantizer=q,
        quantize_input=True,
        target=FutureFrames(steps=8),
        losses=losses,
        final_dim=0,
        feature_layer_norm=False,
    )


def best_rq_model(size: Size = "base") -> SSLModel:
    """BEST-RQ (Chiu et al. 2022): masked prediction of a frozen random-projection quantizer's
    codes of 4 stacked, normalised 80-d log-mel frames (codebook 8192 × 16), from a log-mel
    front end with 4× conv subsampling (40 ms frames); masked frames become N(0, 0.1²) noise;
    softmax over the codebook from a Linear output layer.

    The paper's encoder is a 0.6B-parameter Conformer (w2v-BERT's XL: 24 blocks of width 1024,
    each with two macaron FFNs and a convolution module). We have no Conformer: ``base`` (and
    ``large``, the same) use our Transformer at that depth and width (24 pre-LN blocks, 1024,
    FFN 4096, 16 heads, conv positional embedding: wav2vec 2.0 LARGE's, ≈0.3B), so it has no
    convolution module, one FFN per block and absolute (conv) rather than relative positions.
    Masks: the paper starts a 400 ms span at each 10 ms input frame with probability 0.01
    (≈33 % masked); on 40 ms model frames that is ≈0.04 per frame (1 − 0.99⁴) with spans of 10,
    i.e. ``SpanMask(prob=0.4, length=10)`` in fairseq's convention (start probability × length),
    applied after the subsampling (see ``SpanMask``). The subsampling's channels are not in the
    paper (256 here, NeMo's). ``tiny``: 2 × 32-channel subsampling, the tiny transformer,
    512 codes.
    """
    size = _size(size)
    if size == "tiny":
        encoder = FilterbankEncoder(conv_layers=((32, 3, 2), (32, 3, 2)), out_dim=128)
        context = _w2v2_backbone("tiny")["context"]
        codes = 512
    else:
        encoder = FilterbankEncoder(conv_layers=((256, 3, 2), (256, 3, 2)), out_dim=1024)
        context = Transformer(layers=24, dim=1024, ffn_dim=4096, heads=16, dropout=0.1,
                              attention_dropout=0.1, layerdrop=0.0, layer_norm_first=True)
        codes = 8192
    return SSLModel(
        encoder=encoder,
        context=context,
        mask=SpanMask(prob=0.4, length=10, min_masks=1, replace="noise", noise_std=0.1),
        target=RandomProjectionTargets(stack=4, codebook_size=codes, codebook_dim=16),
        losses=(MaskedPrediction(logits="linear"),),
        final_dim=0,
        feature_grad_mult=1.0,
    )


def data2vec_model(size: Size = "base") -> SSLModel:
    """data2vec audio (Baevski et al. 2022): regress an EMA teacher's averaged top layers.

    BASE follows fairseq's ``examples/data2vec/config/audio/pretraining/base_librispeech.yaml``
    and the paper (they agree): layer-norm conv encoder (``extractor_mode: layer_norm``, wave
    normalised, no conv bias), post-LN transformer with layerdrop 0.05, no input/feature
    dropout, encoder gradient unscaled (``feature_grad_mult`` 1); masks p=0.65, length 10;
    teacher τ 0.999 → 0.9999 over 30k updates, top 8 FFN outputs instance-normalised and
    averaged, pos conv copied (``ema_layers_only``); L2 loss (``loss_beta: 0``) scaled by
    1/√768. The paper's positional embedding is 5 convs of kernel 19 (fairseq ``conv_pos: 95``
    over ``pos_conv_depth: 5``, i.e. 95 // 5 per layer): ``Transformer.pos_conv_layers=5``.
    LARGE: wav2vec 2.0 LARGE's backbone (24 pre-LN layers × 1024) with the BASE objective;
    fairseq ships no large data2vec audio pretraining config. TINY: the tiny transformer (2 layers, both averaged) and a faster
    teacher (τ 0.99 → 0.999 over the tiny run's 300 updates): at base's τ a 300-update teacher
    barely leaves its initial weights.
    """
    size = _size(size)
    backbone = _w2v2_backbone(size)
    encoder = ConvFeatureEncoder(mode="layer_norm", normalize_wave=True)
    if size == "tiny":
        encoder = encoder.with_(conv_layers=_tiny_conv(W2V2_CONV))
        teacher = TeacherTargets(ema_decay=0.99, ema_end_decay=0.999, ema_anneal_end_step=300,
                                 top_k_layers=2)
    else:
        teacher = TeacherTargets()
    context = backbone["context"]
    if size == "base":
        context = context.with_(layerdrop=0.05)
    return SSLModel(
        encoder=encoder,
        context=context.with_(pos_conv_layers=5, pos_conv_kernel=19),
        mask=SpanMask(prob=0.65, length=10),
        target=teacher,
        losses=(Regression(beta=0.0),),
        final_dim=0,
        feature_grad_mult=1.0,
    )


def wavlm_model(size: Size = "base", labels: Labels | Sequence[Labels] = ()) -> SSLModel:
    """WavLM (Chen et al. 2022): HuBERT's masked prediction + gated relative position bias +
    utterance mixing.

    BASE: HuBERT BASE (``hubert_model``) with WavLM's gated relative position bias (320 buckets,
    max distance 800, as the released WavLM Base config and torchaudio's ``wavlm_base``) and
    utterance mixing (up to 50 % of the primary overlapped, energy ratio uniform in [−5, 5] dB,
    as the paper's §3.2 describes). The mixing probability is not printed in the paper's text;
    0.2 is this preset's choice (WavLM's released code has no training loop to read it from).
    The conv positional embedding is kept (kernel 128 in 16 groups, as in the released
    checkpoints). The paper also mixes DNS-challenge noise (not modelled) and trains Base on
    labels from a HuBERT model; here the labels are whatever ``labels`` gives. LARGE: HuBERT
    LARGE with the same additions.
    """
    from .components_networks import GatedRelativePositionBias

    model = hubert_model(size, labels=labels)
    return model.with_(
        context=model.context.with_(relative_position=GatedRelativePositionBias(
            num_buckets=320, max_distance=800)),
        augmentation=UtteranceMixing(prob=0.2, max_overlap=0.5, energy_ratio=(-5.0, 5.0)),
    )
