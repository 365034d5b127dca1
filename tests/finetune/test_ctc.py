"""Greedy CTC decoding, the CTC loss, edit distance and the CTC model's plumbing."""

from __future__ import annotations

import pytest
import torch

from ssl_graph.kernels.edit_distance import edit_distance, error_rate
from ssl_graph.nn.ctc import CTCModel, ctc_loss, greedy_decode
from ssl_graph.specs.components import wav2vec2_model


def one_hot_logits(paths: list[list[int]], V: int) -> torch.Tensor:
    T = max(len(p) for p in paths)
    x = torch.full((len(paths), T, V), -5.0)
    for b, p in enumerate(paths):
        for t, i in enumerate(p):
            x[b, t, i] = 5.0
    return x


def test_greedy_decode_collapses_repeats_then_drops_blanks():
    # frames: a a _ a b b _ _ c   → "a a b c" (the blank separates the two a's)
    logits = one_hot_logits([[1, 1, 0, 1, 2, 2, 0, 0, 3], [2, 2, 2, 0, 0, 1, 1, 3, 3]], V=4)
    assert greedy_decode(logits) == [[1, 1, 2, 3], [2, 1, 3]]
    # frames past an utterance's length are ignored
    assert greedy_decode(logits, torch.tensor([9, 5])) == [[1, 1, 2, 3], [2]]
    assert greedy_decode(one_hot_logits([[0, 0, 0]], V=4)) == [[]]


def test_edit_distance_hand_worked():
    # kitten → sitting: k→s, e→i, +g
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3
    assert edit_distance("abc", "abc") == 0
    # words: "the cat sat on the mat" → "the cat sit on mat": sat→sit, −the
    ref, hyp = ["the", "cat", "sat", "on", "the", "mat"], ["the", "cat", "sit", "on", "mat"]
    assert edit_distance(ref, hyp) == 2
    # phones: ah b k → b k d: −ah, +d
    assert edit_distance(["ah", "b", "k"], ["b", "k", "d"]) == 2
    rate, edits, total = error_rate([ref, ["a"]], [hyp, ["b", "c"]])
    assert (edits, total) == (4, 7) and rate == pytest.approx(4 / 7)


def test_ctc_loss_is_per_utterance_and_small_on_a_perfect_path():
    target = torch.tensor([1, 2, 2])
    logits = one_hot_logits([[1, 0, 2, 0, 2, 0]], V=3) * 4
    lengths = torch.tensor([6])
    one = ctc_loss(logits, lengths, [target])
    two = ctc_loss(logits.repeat(2, 1, 1), lengths.repeat(2), [target, target])
    assert float(one) < 0.01 and float(two) == pytest.approx(float(one))
    # impossible (more labels than frames): zero_infinity gives 0, not inf
    assert float(ctc_loss(logits[:, :2], torch.tensor([2]), [target])) == 0.0


def test_ctc_model_head_and_frozen_backbone():
    torch.manual_seed(0)
    model = CTCModel(wav2vec2_model("tiny"), vocab_size=29)
    assert len(model.net.heads) == 0 and model.net.quantizer is None
    assert model.proj.out_features == 29 and not model.proj.bias.detach().any()
    wave = torch.randn(2, 16000)
    pad = torch.zeros(2, 16000, dtype=torch.bool)
    pad[1, 8000:] = True
    model.train()
    logits, frames = model(wave, pad, mask_seed=1, frozen=True)
    assert logits.shape == (2, 49, 29) and frames.tolist() == [49, 24]
    logits.sum().backward()
    assert model.proj.weight.grad is not None
    assert all(p.grad is None for p in model.backbone_parameters())


def test_loading_mismatched_weights_names_the_source():
    model = CTCModel(wav2vec2_model("tiny"), vocab_size=5)
    state = {k: v for k, v in model.net.state_dict().items() if not k.startswith("context.")}
    with pytest.raises(ValueError, match="pre_x: pretrained weights do not fit"):
        model.load_pretrained(state, "pre_x")


@pytest.mark.parametrize("preset", ["wav2vec", "vq_wav2vec", "hubert"])
def test_every_architecture_fine_tunes(preset):
    """Pretrained weights of each paper model load into the CTC backbone; masks apply."""
    from ssl_graph import MFCC, Corpus, KMeans, Labels
    from ssl_graph.nn import build_model
    from ssl_graph.specs import components as C
    from ssl_graph.specs.finetune import finetune_mask

    if preset == "hubert":
        labels = Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root="wav")), k=20))
        spec = C.hubert_model("tiny", labels=labels)
    else:
        spec = getattr(C, f"{preset}_model")("tiny")
    torch.manual_seed(0)
    pretrained = build_model(spec).state_dict()
    model = CTCModel(spec, vocab_size=7, mask=finetune_mask(spec))
    model.load_pretrained(pretrained, preset)
    model.train()
    logits, frames = model(torch.randn(2, 8000), None, mask_seed=3)
    assert logits.shape[-1] == 7 and frames.tolist() == [logits.size(1)] * 2
    assert model.mask_emb is not None
