"""A padded batch gives every utterance the output it gets alone: padding never enters a norm.

Covers every encoder and context family (wav2vec 2.0/HuBERT conv encoder in group_norm and
layer_norm mode, wav2vec's causal encoder and conv context, vq-wav2vec, BEST-RQ's log-mel front
end), through the CTC model a
fine-tune decodes with and through ``extract_features`` (what layer features read).
"""

from __future__ import annotations

import pytest
import torch

from ssl_graph.audio.io import read_audio
from ssl_graph.nn import build_model
from ssl_graph.nn.common import Fp32GroupNorm, lengths_to_padding_mask
from ssl_graph.nn.ctc import CTCModel
from ssl_graph.specs.components_presets import (
    best_rq_model,
    hubert_model,
    vq_wav2vec_model,
    wav2vec2_model,
    wav2vec_model,
)
from ssl_graph.specs.nodes import MFCC, Corpus, KMeans, Labels

from ..conftest import DEMO

TOL = 1e-5


def _labels():
    return Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root=str(DEMO / "wav"))), k=10))


def _layer_norm(spec):
    return spec.with_(encoder=spec.encoder.with_(mode="layer_norm", conv_bias=True),
                      context=spec.context.with_(layer_norm_first=True))


SPECS = {
    "wav2vec2-group_norm": lambda: wav2vec2_model("tiny"),
    "wav2vec2-layer_norm": lambda: _layer_norm(wav2vec2_model("tiny")),
    "hubert-group_norm": lambda: hubert_model("tiny", labels=_labels()),
    "wav2vec": lambda: wav2vec_model("tiny"),
    "vq_wav2vec-gumbel": lambda: vq_wav2vec_model("tiny"),
    "vq_wav2vec-kmeans": lambda: vq_wav2vec_model("tiny", quantizer="kmeans"),
    "best_rq-log_mel": lambda: best_rq_model("tiny"),
}


@pytest.fixture(scope="module")
def batch():
    """Three demo utterances of different lengths, zero-padded into one (3, S) batch."""
    paths = sorted((DEMO / "wav").glob("*.flac"))[:3]
    waves = [torch.from_numpy(read_audio(p, p.stem, 16000, False)) for p in paths]
    waves = [w[:n] for w, n in zip(waves, (20000, 13001, 8800))]
    lengths = torch.tensor([len(w) for w in waves])
    wave = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    return waves, wave, lengths_to_padding_mask(lengths, wave.size(1))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_features_of_a_padded_row_equal_the_row_alone(name, batch):
    torch.manual_seed(0)
    net = build_model(SPECS[name]()).eval()
    waves, wave, pad = batch
    with torch.inference_mode():
        together, frame_pad = net.extract_features(wave, pad)
        for i, w in enumerate(waves):
            alone, _ = net.extract_features(w[None], None)
            n = alone.size(1)
            assert frame_pad is None or int((~frame_pad[i]).sum()) == n
            torch.testing.assert_close(together[i, :n], alone[0], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("name", ["wav2vec2-group_norm", "wav2vec2-layer_norm", "wav2vec",
                                  "best_rq-log_mel"])
def test_ctc_logits_of_a_padded_row_equal_the_row_alone(name, batch):
    torch.manual_seed(0)
    model = CTCModel(SPECS[name](), vocab_size=12).eval()
    waves, wave, pad = batch
    with torch.inference_mode():
        logits, frames = model(wave, pad)
        for i, w in enumerate(waves):
            alone, n = model(w[None], None)
            assert int(frames[i]) == int(n[0])
            torch.testing.assert_close(logits[i, :int(n[0])], alone[0], rtol=TOL, atol=TOL)


def test_group_norm_over_valid_frames_is_group_norm_of_the_cut_row():
    torch.manual_seed(1)
    for groups, channels in ((8, 8), (1, 8), (2, 8)):
        norm = Fp32GroupNorm(groups, channels)
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-1, 1)
        x = torch.randn(3, channels, 40)
        x[1, :, 25:] = 1e3  # padding with a scale that would dominate the statistics
        lengths = torch.tensor([40, 25, 7])
        y = norm(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(y[i, :, :n], norm(x[i:i + 1, :, :n])[0],
                                       rtol=TOL, atol=TOL)
