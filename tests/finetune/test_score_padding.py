"""``ASRScore``'s hypotheses are a property of the model, not of its decoding batches.

A fine-tune of a group-norm (wav2vec 2.0 BASE) and of a layer-norm conv encoder (LARGE's) is
scored with padded batches; every stored hypothesis must equal a one-at-a-time decode of the
stored weights, every batched logit the utterance's logits alone, and transformers' own ASR
``pipeline`` over the exported model must write the same text.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from ssl_graph.api import Project
from ssl_graph.audio.io import read_audio
from ssl_graph.export import export_model
from ssl_graph.nn.common import lengths_to_padding_mask
from ssl_graph.nn.ctc import build_ctc_model, greedy_decode
from ssl_graph.store.backend import read_json
from ssl_graph.train.vocab import Vocab, tokens_to_text

from ..conftest import make_corpus

SPEC = '''
from ssl_graph import Corpus
from ssl_graph.presets import finetune_from_scratch
from ssl_graph.specs.components_presets import wav2vec2_model
from ssl_graph.specs.finetune import ASRScore, Split

corpus = Corpus(root="wav", transcripts="transcripts.tsv")
group = wav2vec2_model("tiny")
layer = group.with_(encoder=group.encoder.with_(mode="layer_norm", conv_bias=True))
short = dict(size="tiny", split=Split(labeled_minutes=0.5, test_fraction=0.5), steps=40,
             batch_seconds=6.0, checkpoint_every=40)
ft_group = finetune_from_scratch(group, corpus, **short)
ft_layer = finetune_from_scratch(layer, corpus, **short)
score_group = ASRScore(model=ft_group, batch_seconds=60.0)
score_layer = ASRScore(model=ft_layer, batch_seconds=60.0)
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("score_padding")
    make_corpus(d, 16)
    (d / "p.py").write_text(SPEC)
    p = Project(d / "p.py", str(d / "store"))
    p.run(["score_group", "score_layer"])
    return p


@pytest.mark.parametrize("mode", ["group", "layer"])
def test_hypotheses_equal_one_at_a_time_decode_and_transformers(project, mode, tmp_path):
    from safetensors.torch import load

    ft, score = project[f"ft_{mode}"], project[f"score_{mode}"]
    backend = project.store.backend
    hyps = read_json(backend, f"{score.key}/hypotheses.json")
    vocab = Vocab(tuple(ft.record["vocab"]))
    model = build_ctc_model(ft.node, len(vocab))
    model.load_state_dict(load(backend.read_bytes(f"{ft.key}/model.safetensors")))
    model.eval()
    root = project.spec_path.parent / "wav"
    waves = {u: read_audio(root / f"{u}.flac", u, 16000) for u in hyps}
    assert len(waves) >= 4
    # all test utterances in one padded batch: every row but the longest is padded
    rows = [torch.from_numpy(w) for w in waves.values()]
    batch = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
    pad = lengths_to_padding_mask(torch.tensor([len(r) for r in rows]), batch.size(1))
    with torch.inference_mode():
        logits, frames = model(batch, pad)
        for i, (u, w) in enumerate(waves.items()):
            alone, n = model(torch.from_numpy(w)[None], None)
            assert int(frames[i]) == int(n[0]), u
            torch.testing.assert_close(logits[i, :int(n[0])], alone[0], rtol=1e-5, atol=1e-5)
            text = tokens_to_text(vocab.decode(greedy_decode(alone, n)[0]))
            assert hyps[u]["hyp"] == text, u
    if mode == "group":  # 40 steps get this one past all-blank output (the logits hold for both)
        assert any(h["hyp"] for h in hyps.values())

    out = tmp_path / "hf"
    export_model(project, f"ft_{mode}", out)
    asr = transformers.pipeline("automatic-speech-recognition", model=str(out), device="cpu")
    for u, w in waves.items():
        # transformers' tokenizer writes one space per word-separator token; we merge runs of them
        assert " ".join(asr(w.copy())["text"].split()) == hyps[u]["hyp"], u
