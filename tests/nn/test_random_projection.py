"""BEST-RQ's pieces: the torch log-mel front end, the random-projection quantizer against the
paper's definition (an independent numpy implementation written here), the plan-time frame-rate
check, the noise mask and the linear masked-prediction head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ssl_graph.audio.io import read_audio
from ssl_graph.audio.mfcc import log_mel
from ssl_graph.nn import build_model
from ssl_graph.nn.common import lengths_to_padding_mask
from ssl_graph.nn.filterbank import LogMelFilterbank
from ssl_graph.nn.frontends import build_encoder
from ssl_graph.nn.masking import mask_noise
from ssl_graph.nn.random_projection import RandomProjectionQuantizer
from ssl_graph.nn.row_random import RowRandom
from ssl_graph.specs.base import SpecError
from ssl_graph.specs.components import (
    FeaturePenalty,
    FilterbankEncoder,
    LogMel,
    MaskedPrediction,
    NoQuantizer,
    RandomProjectionTargets,
    SpanMask,
    SSLModel,
    best_rq_model,
    wav2vec2_model,
)

from ..conftest import DEMO


@pytest.fixture(scope="module")
def utterances():
    """Three demo utterances cut to different lengths (one not a whole number of hops)."""
    paths = sorted((DEMO / "wav").glob("*.flac"))[:3]
    waves = [read_audio(p, p.stem, 16000, False) for p in paths]
    return [w[:n].astype(np.float32) for w, n in zip(waves, (20000, 13001, 8800))]


def _padded(waves):
    ts = [torch.from_numpy(w) for w in waves]
    lengths = torch.tensor([len(w) for w in ts])
    wave = torch.nn.utils.rnn.pad_sequence(ts, batch_first=True)
    return wave, lengths_to_padding_mask(lengths, wave.size(1))


# ---- the paper's quantizer, written independently in numpy ---------------------------------
def paper_labels(wave: np.ndarray, spec: RandomProjectionTargets, projections: np.ndarray,
                 codebooks: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames, codebooks) labels: normalised log-mel frames, stacked, y = argmin_i
    ||norm(c_i) − norm(A x)|| for each (A, C) — BEST-RQ §3.1 — with a plain loop."""
    f = spec.features
    mel = log_mel(wave.astype(np.float64), n_mels=f.n_mels, win=f.win, hop=f.hop,
                  low_freq=f.low_freq)
    mel = (mel - mel.mean(0)) / np.sqrt(mel.var(0) + 1e-5)
    out = np.zeros((n_frames, len(projections)), dtype=np.int64)
    for t in range(n_frames):
        x = np.zeros(spec.stack * f.n_mels)
        for j in range(spec.stack):
            if spec.stack * t + j < len(mel):
                x[j * f.n_mels:(j + 1) * f.n_mels] = mel[spec.stack * t + j]
        for k, (a, c) in enumerate(zip(projections, codebooks)):
            y = x @ a
            y = y / np.linalg.norm(y)
            c = c / np.linalg.norm(c, axis=1, keepdims=True)
            out[t, k] = int(np.argmin(np.linalg.norm(c - y, axis=1)))
    return out


@pytest.mark.parametrize("stack,encoder", [(4, FilterbankEncoder()), (2, None)])
def test_labels_follow_the_papers_definition_in_a_padded_batch(utterances, stack, encoder):
    spec = RandomProjectionTargets(stack=stack, codebook_size=256, codebook_dim=16, codebooks=2,
                                   seed=3)
    encoder = encoder or wav2vec2_model("tiny").encoder
    quantizer = RandomProjectionQuantizer(spec)
    wave, pad = _padded(utterances)
    n_frames = encoder.output_length(wave.size(1))
    labels = torch.stack(quantizer.labels(wave, pad, n_frames), -1).numpy()
    projections = quantizer.projections.double().numpy()
    codebooks = quantizer.codebooks.double().numpy()
    spread = []
    for i, w in enumerate(utterances):
        n = encoder.output_length(len(w))
        want = paper_labels(w, spec, projections, codebooks, n)
        np.testing.assert_array_equal(labels[i, :n], want)
        spread.append(len(np.unique(want[:, 0])))
    assert min(spread) > 5  # normalised features do not collapse onto a few codes


def test_projections_and_codebooks_are_seeded_frozen_buffers():
    spec = RandomProjectionTargets(stack=4, codebook_size=512, codebook_dim=16, codebooks=2)
    a, b = RandomProjectionQuantizer(spec), RandomProjectionQuantizer(spec)
    torch.testing.assert_close(a.projections, b.projections, rtol=0, atol=0)
    torch.testing.assert_close(a.codebooks, b.codebooks, rtol=0, atol=0)
    other = RandomProjectionQuantizer(spec.with_(seed=1))
    assert not torch.equal(a.projections, other.projections)
    assert a.projections.shape == (2, 320, 16) and a.codebooks.shape == (2, 512, 16)
    assert not torch.equal(a.projections[0], a.projections[1])  # independent codebooks
    torch.testing.assert_close(a.codebooks.norm(dim=-1), torch.ones(2, 512))
    bound = (6 / (320 + 16)) ** 0.5  # Xavier-uniform
    assert float(a.projections.abs().max()) <= bound
    assert float(a.projections.abs().max()) > 0.95 * bound
    net = build_model(best_rq_model("tiny"))
    state = net.state_dict()
    assert {"target_sources.0.projections", "target_sources.0.codebooks"} <= set(state)
    assert not any("target_sources" in n for n, _ in net.named_parameters())


def test_torch_log_mel_is_the_mfcc_ops_log_mel(utterances):
    w = utterances[1]
    fb = LogMelFilterbank(LogMel(normalize="none"))
    want = log_mel(w.astype(np.float64), n_mels=80)
    got64, _ = fb(torch.from_numpy(w)[None].double())
    np.testing.assert_allclose(got64[0].numpy(), want, rtol=0, atol=1e-9)
    got32, _ = fb(torch.from_numpy(w)[None])
    np.testing.assert_allclose(got32[0].numpy(), want, rtol=0, atol=1e-3)
    assert got32.shape[1] == LogMel().frames(len(w)) == (len(w) - 400) // 160 + 1
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 training keeps fp32 features
        mixed, _ = fb(torch.from_numpy(w)[None])
    assert mixed.dtype == torch.float32 and torch.equal(mixed, got32)


def test_filterbank_encoder_geometry_and_padding(utterances):
    spec = FilterbankEncoder(conv_layers=((8, 3, 2), (8, 3, 2)), out_dim=16)
    assert spec.stride == 640 and spec.dim == 16 and spec.mel_bins() == 20
    assert spec.receptive_field == 400 + 6 * 160
    torch.manual_seed(0)
    enc = build_encoder(spec).eval()
    wave, pad = _padded(utterances)
    with torch.no_grad():
        together = enc(wave, pad)
        for i, w in enumerate(utterances):
            alone = enc(torch.from_numpy(w)[None])
            n = spec.output_length(len(w))
            assert alone.shape == (1, n, 16)
            assert int(enc.output_lengths(torch.tensor([len(w)]))[0]) == n
            torch.testing.assert_close(together[i, :n], alone[0], rtol=1e-5, atol=1e-5)


def test_target_rate_must_match_the_encoders_at_plan_time():
    w2v2 = {k: v for k, v in wav2vec2_model("tiny") if k != "target"}
    w2v2.update(quantizer=NoQuantizer(), final_dim=0, losses=(MaskedPrediction(logits="linear"),))
    ok = SSLModel(**w2v2, target=RandomProjectionTargets(stack=2, codebook_size=64))
    assert ok.num_classes() == (64,)
    with pytest.raises((SpecError, ValidationError),
                       match=r"features.hop × stack = 160 × 4 = 640 .* strides 320; set "
                             r"target.stack=2"):
        SSLModel(**w2v2, target=RandomProjectionTargets(stack=4))
    brq = best_rq_model("tiny")
    with pytest.raises((SpecError, ValidationError), match=r"set target.stack=4"):
        brq.with_(target=brq.target.with_(stack=2))
    with pytest.raises((SpecError, ValidationError), match="set mask=SpanMask"):
        brq.with_(mask=None)


def test_mask_noise_is_per_row_whatever_the_split():
    spec = SpanMask(replace="noise", noise_std=0.1)
    whole = mask_noise(spec, RowRandom(7, [0, 1, 2], "cpu"), (3, 50, 32))
    part = mask_noise(spec, RowRandom(7, [2], "cpu"), (1, 50, 32))
    torch.testing.assert_close(whole[2:], part, rtol=0, atol=0)
    assert abs(float(whole.std()) - 0.1) < 0.005 and abs(float(whole.mean())) < 0.005
    assert not torch.equal(whole, mask_noise(spec, RowRandom(8, [0, 1, 2], "cpu"), (3, 50, 32)))


def test_noise_masked_model_has_no_mask_embedding_and_masked_frames_get_noise(utterances):
    spec = best_rq_model("tiny")
    net = build_model(spec).eval()  # dropout off; masks still apply in a training forward
    assert net.mask_emb is None
    seen = []
    net.context.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach()))
    wave, _ = _padded([u[:8800] for u in utterances])
    out = net(wave, mask_seed=5, rows=[4, 9, 2])
    mask, x = out.mask, seen[0]
    assert mask.any() and (~mask).any() and out.sample_size == int(mask.sum())
    noise = mask_noise(spec.mask, RowRandom(5, [4, 9, 2], "cpu"), x.shape)
    torch.testing.assert_close(x[mask], noise[mask], rtol=0, atol=0)
    assert not torch.isclose(x[~mask], noise[~mask]).any()


def test_linear_head_over_several_codebooks(utterances):
    spec = best_rq_model("tiny")
    spec = spec.with_(target=spec.target.with_(codebooks=3, codebook_size=64),
                      losses=(MaskedPrediction(logits="linear"), FeaturePenalty()))
    net = build_model(spec)
    head = net.heads["masked_prediction"]
    assert [o.out_features for o in head.outputs] == [64, 64, 64]
    assert not hasattr(head, "label_embs")
    wave, _ = _padded([u[:8800] for u in utterances])
    out = net(wave, mask_seed=1)
    logs = out.scalars()
    assert {"accuracy_masked_0", "accuracy_masked_1", "accuracy_masked_2"} <= set(logs)
    # untrained: about ln(64) per codebook, summed over the three
    assert 3 * np.log(64) * 0.8 < logs["loss_masked"] < 3 * np.log(64) * 1.2
    out.loss.backward()
    assert all(o.weight.grad is not None for o in head.outputs)


def test_ctc_fine_tuning_of_best_rq_loads_the_backbone_and_honours_noise_masks(utterances):
    from ssl_graph.nn.common import make_generator
    from ssl_graph.nn.ctc import CTCModel
    from ssl_graph.nn.row_random import MASK_NOISE_STREAM

    spec = best_rq_model("tiny")
    pretrained = build_model(spec).state_dict()
    mask = SpanMask(prob=0.5, length=2, replace="noise", noise_std=0.1)
    ctc = CTCModel(spec, vocab_size=12, mask=mask)
    ctc.load_pretrained(pretrained, "best_rq")  # the quantizer's buffers are left behind
    assert not any(k.startswith("net.target_sources") for k in ctc.state_dict())
    seen = []
    ctc.net.context.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach()))
    wave, _ = _padded([u[:8800] for u in utterances])
    ctc.train()
    ctc.net.context.eval()  # (its dropout off; the masks are the CTC model's)
    logits, frames = ctc(wave, mask_seed=3)
    assert logits.shape[:2] == (3, spec.encoder.output_length(8800))
    x = seen[0]
    noise = torch.randn(x.shape, generator=make_generator(3, MASK_NOISE_STREAM, "cpu")) * 0.1
    hit = torch.isclose(x, noise, rtol=0, atol=0).all(-1)
    assert hit.any() and not hit.all()  # masked frames carry the noise, the others do not


def test_a_spec_file_with_a_mismatched_stack_is_refused_in_one_line(tmp_path):
    from ssl_graph.graph.pipeline import load_pipeline

    spec = tmp_path / "p.py"
    spec.write_text(
        "from ssl_graph import Corpus\n"
        "from ssl_graph.presets import best_rq\n"
        "tiny = best_rq(Corpus(root='wav'), size='tiny')\n"
        "bad = tiny.with_(model=tiny.model.with_(target=tiny.model.target.with_(stack=2)))\n")
    with pytest.raises(SpecError) as err:
        load_pipeline(spec)
    message = str(err.value)
    assert "\n" not in message and "p.py:4" in message
    assert "160 × 2 = 320 samples but the encoder (FilterbankEncoder) strides 640" in message
    assert "set target.stack=4" in message
