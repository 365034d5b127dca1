"""Vocabularies on the demo annotations, and the seeded test/labeled selection."""

from __future__ import annotations

import math

import pytest

from ssl_graph import Alignments, Corpus, Transcripts
from ssl_graph.audio.annotations import parse_alignments, parse_transcripts
from ssl_graph.specs.finetune import FineTune, Split
from ssl_graph.train.split import held_apart, is_test, labeled_utterances, unit_hash
from ssl_graph.train.vocab import (
    BLANK,
    CHARS,
    build_vocab,
    char_tokens,
    normalize_text,
    phone_tokens,
    references,
    tokens_to_text,
)

from ..conftest import DEMO


@pytest.fixture(scope="module")
def demo():
    return Corpus(root=str(DEMO / "wav"), transcripts=str(DEMO / "transcripts.tsv"),
                  alignments=str(DEMO / "alignments.tsv"))


@pytest.fixture(scope="module")
def demo_utts():
    return {p.stem for p in (DEMO / "wav").glob("*.flac")}


@pytest.fixture(scope="module")
def texts(demo, demo_utts):
    return parse_transcripts(Transcripts(corpus=demo, path=demo.transcripts), demo_utts)


@pytest.fixture(scope="module")
def aset(demo, demo_utts):
    return parse_alignments(Alignments(corpus=demo, path=demo.alignments), demo_utts)


@pytest.fixture(scope="module")
def durations(demo):
    import soundfile as sf

    return {p.stem: sf.info(p).duration for p in sorted((DEMO / "wav").glob("*.flac"))}


# ---------------------------------------------------------------------------- vocabularies
def test_char_vocab_is_fixed_with_blank_first():
    vocab = build_vocab("char")
    assert vocab.symbols == CHARS and len(vocab) == 29
    assert vocab.symbols[0] == BLANK and vocab.index["|"] == 1 and vocab.index["'"] == 2


def test_char_tokens_normalise_text():
    assert normalize_text("Don't STOP-now, café!  ") == "don't stop now cafe"
    assert char_tokens("Hi there.") == ["h", "i", "|", "t", "h", "e", "r", "e"]
    assert tokens_to_text(["|", "h", "i", "|", "|", "y", "o", "|"]) == "hi yo"


def test_every_demo_transcript_encodes(texts):
    vocab, refs = references("char", texts=texts)
    assert len(refs) == 155
    assert refs["car-0006"] == char_tokens("Where do those loud cakes shout loudly?")
    for utt, tokens in refs.items():
        ids = vocab.encode(tokens, utt)
        assert ids.min() > 0 and tokens_to_text(vocab.decode(ids)) == normalize_text(
            texts[utt])


def test_phone_vocab_from_demo_alignments_drops_silence(aset):
    alignments = {u: aset.segments(u) for u in aset.utts}
    vocab = build_vocab("phone", alignments)
    phones = {p for segs in alignments.values() for _, _, p in segs}
    assert "sil" in phones and len(phones) == 41
    assert vocab.symbols[0] == BLANK and "sil" not in vocab.symbols
    assert len(vocab) == 41  # 40 phones + blank
    first = phone_tokens(alignments["car-0006"])
    assert first[:3] == ["w", "eh", "d"] and "sil" not in first
    _, refs = references("phone", aset=aset)
    assert all(len(vocab.encode(t, u)) == len(t) for u, t in refs.items())


def test_unknown_token_error_names_the_utterance():
    with pytest.raises(ValueError, match="utterance 'u1'.*'zh'"):
        build_vocab("phone", {"a": [(0, 1, "aa")]}).encode(["aa", "zh"], "u1")


# ---------------------------------------------------------------------------- splits
def test_test_split_is_deterministic_and_about_the_fraction(durations):
    split = Split(test_fraction=0.2, seed=0)
    test = held_apart(durations, split)
    assert test == held_apart(list(reversed(list(durations))), split)
    assert 0.1 < len(test) / len(durations) < 0.3
    assert test != held_apart(durations, split.with_(seed=1))
    assert held_apart(durations, split.with_(test_fraction=0.0)) == []


def test_adding_utterances_never_moves_existing_ones(durations):
    split = Split(test_fraction=0.2, labeled_minutes=1.0, seed=3)
    utts = sorted(durations)
    small = {u: durations[u] for u in utts[::2]}
    grown = dict(durations)
    small_test, grown_test = set(held_apart(small, split)), set(held_apart(grown, split))
    assert small_test == grown_test & set(small)
    # the labeled walk: utterances ranked before the first added one keep their status
    rank = lambda u: unit_hash(split.seed, "labeled", u)
    added = [u for u in grown if u not in small and not is_test(u, split)]
    first_new = min(rank(u) for u in added)
    before = [u for u in small if rank(u) < first_new and not is_test(u, split)]
    a, b = set(labeled_utterances(small, split)), set(labeled_utterances(grown, split))
    assert before and all((u in a) == (u in b) for u in before)


@pytest.mark.parametrize("minutes", [0.25, 1.0, 3.0])
def test_labeled_budget_is_respected_and_filled(durations, minutes):
    split = Split(test_fraction=0.2, labeled_minutes=minutes, seed=0)
    labeled = labeled_utterances(durations, split)
    assert labeled == labeled_utterances(dict(reversed(list(durations.items()))), split)
    total = sum(durations[u] for u in labeled)
    assert total <= minutes * 60 + 1e-9
    assert total > minutes * 60 - min(durations.values())  # nothing left that would fit
    assert not set(labeled) & set(held_apart(durations, split))


def test_bigger_budget_and_no_budget(durations):
    split = Split(test_fraction=0.2, labeled_minutes=None)
    everything = labeled_utterances(durations, split)
    assert set(everything) == set(durations) - set(held_apart(durations, split))
    assert len(labeled_utterances(durations, split.with_(labeled_minutes=3.0))) < len(everything)


# ---------------------------------------------------------------------------- schedule
def test_tri_stage_schedule_values(demo):
    from ssl_graph.specs.components import wav2vec2_model

    sched = FineTune(model=wav2vec2_model("tiny"), corpus=demo).schedule
    assert (sched.curve, sched.warmup, sched.hold) == ("tri_stage", 0.1, 0.4)
    f = [sched.factor(s, 100) for s in range(100)]
    assert f[0] == pytest.approx(0.01 + 0.99 / 10)  # warmup from 1 % of the peak
    assert f[9] == pytest.approx(1.0) and f[4] < f[5] < f[9]
    assert all(v == 1.0 for v in f[10:51])  # hold (decay starts at exp(0) = 1)
    assert f[75] == pytest.approx(math.sqrt(0.05))  # exponential: half way = √final
    ratios = [f[s + 1] / f[s] for s in range(50, 99)]
    assert max(ratios) == pytest.approx(min(ratios))  # constant ratio: exponential decay
    assert sched.factor(100, 100) == pytest.approx(0.05)
