"""Prefix beam search is exact CTC decoding; the word LM we write is a proper ARPA model."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ssl_graph.model_io.arpa import EOS, UNK, ArpaLM, train_ngram, write_arpa
from ssl_graph.train.decode import beam_search, train_lm
from ssl_graph.train.vocab import CHARS, char_tokens, tokens_to_text

from ..conftest import DEMO


def _collapse(path):
    out, prev = [], None
    for v in path:
        if v != prev and v != 0:
            out.append(v)
        prev = v
    return tuple(out)


def test_wide_beam_finds_the_most_probable_labelling():
    """Against brute force over every alignment: the labelling with the largest summed path
    probability (which best-path decoding can miss)."""
    rng = np.random.default_rng(0)
    missed_by_greedy = 0
    for _ in range(30):
        lp = np.log(rng.dirichlet(np.full(3, 0.5), size=6))
        total: dict[tuple, float] = {}
        for path in itertools.product(range(3), repeat=6):
            lab = _collapse(path)
            total[lab] = total.get(lab, 0.0) + math.exp(sum(lp[t, v] for t, v in enumerate(path)))
        best = max(total, key=total.get)
        got = beam_search(lp, ["<blank>", "a", "b"], beam=500, token_min_logp=-1e9)
        assert tuple(got) == best
        missed_by_greedy += _collapse(lp.argmax(-1)) != best
    assert missed_by_greedy > 0  # the test distinguishes beam search from best path


def _sentences():
    rows = (DEMO / "transcripts.tsv").read_text().splitlines()[1:]
    return [tokens_to_text(char_tokens(r.split("\t", 1)[1])).split() for r in rows if "\t" in r]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_lm_distributions_sum_to_one(order, tmp_path):
    sents = _sentences()
    lm = ArpaLM.load(write_arpa(tmp_path / "lm.arpa", *train_ngram(sents, order)))
    vocab = sorted({w for s in sents for w in s} | {EOS, UNK})
    for hist in [("<s>",), ("<s>", sents[0][0]), tuple(sents[1][:2]), ("never", "seen")]:
        assert sum(10 ** lm.score(hist, w) for w in vocab) == pytest.approx(1.0, abs=1e-4)
    held_in = lm.sentence(sents[0])
    assert held_in > lm.sentence(list(reversed(sents[0])))  # word order matters


def test_kenlm_reads_our_arpa_with_the_same_scores(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    sents = _sentences()
    path = write_arpa(tmp_path / "lm.arpa", *train_ngram(sents, 3))
    ours, ref = ArpaLM.load(path), kenlm.Model(str(path))
    for words in sents[:20] + [["zebra", "the", "of"]]:
        assert ours.sentence(words) == pytest.approx(ref.score(" ".join(words)), abs=1e-4)


def _spell(words: list[str], confusable: dict[int, dict[str, float]]):
    """Frame log-probs spelling ``words`` (one char per frame, blanks between), where frames in
    ``confusable`` split their mass between characters."""
    sym = {s: i for i, s in enumerate(CHARS)}
    frames = []
    for ch in "|".join(words):
        frames += [{ch: 0.9}, {"<blank>": 0.9}]
    for i, dist in confusable.items():
        frames[i] = dist
    lp = np.full((len(frames), len(CHARS)), 1e-4)
    for t, dist in enumerate(frames):
        for ch, p in dist.items():
            lp[t, sym[ch]] = p
    return np.log(lp / lp.sum(-1, keepdims=True))


def test_lm_turns_an_acoustic_near_tie_into_the_known_word():
    _, lm = train_lm([["the", "cat", "sat"]] * 5 + [["a", "cat", "ran"]], 2)
    # "the c?t sat": frame 10 (the 6th char) is "o" 0.5 vs "a" 0.4: a plain beam says "cot"
    lp = _spell(["the", "cat", "sat"], {10: {"o": 0.5, "a": 0.4}})
    plain = tokens_to_text([CHARS[i] for i in beam_search(lp, CHARS, beam=8)])
    with_lm = tokens_to_text([CHARS[i] for i in beam_search(lp, CHARS, beam=8, lm=lm, alpha=1.0)])
    assert plain == "the cot sat"
    assert with_lm == "the cat sat"
