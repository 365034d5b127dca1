"""CTC decoding beyond greedy: a prefix beam search with an optional word n-gram LM.

Prefix beam search keeps, per output prefix, the probability of all alignments ending in a
blank (``pb``) and in its last symbol (``pnb``), so repeats are merged exactly as CTC defines
them: ``a a`` collapses, ``a ∅ a`` does not. Scores are natural logs; the LM's log10 values
are converted. Characters are joined into words at the word separator (``|``).
"""

from __future__ import annotations

import math

import numpy as np

from ..model_io.arpa import EOS, ArpaLM

NEG = -math.inf
LN10 = math.log(10.0)


def _logadd(a: float, b: float) -> float:
    if a == NEG:
        return b
    if b == NEG:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


class _Words:
    """LM bookkeeping of a prefix: finished words, the word being spelled, LM score so far."""

    def __init__(self, symbols, sep: int | None, lm: ArpaLM | None, alpha: float, beta: float):
        self.symbols, self.sep, self.lm, self.alpha, self.beta = symbols, sep, lm, alpha, beta
        self.state: dict[tuple, tuple[tuple, str, float]] = {(): ((), "", 0.0)}

    def _word_score(self, words: tuple, word: str) -> float:
        return self.alpha * LN10 * self.lm.score(("<s>", *words), word) + self.beta

    def extend(self, prefix: tuple, new: tuple) -> float:
        if new not in self.state:
            words, partial, score = self.state[prefix]
            tok = new[-1]
            if tok == self.sep:
                if partial and self.lm is not None:
                    score += self._word_score(words, partial)
                if partial:
                    words, partial = (*words, partial), ""
            else:
                partial += self.symbols[tok]
            self.state[new] = (words, partial, score)
        return self.state[new][2]

    def score(self, prefix: tuple) -> float:
        return self.state[prefix][2]

    def final(self, prefix: tuple) -> float:
        """Score with the last word finished and the sentence ended."""
        words, partial, score = self.state[prefix]
        if self.lm is None:
            return score
        if partial:
            score += self._word_score(words, partial)
            words = (*words, partial)
        return score + self.alpha * LN10 * self.lm.score(("<s>", *words), EOS)


def _adder(beams: dict):
    """``add(prefix, pb=, pnb=)``: accumulate probability mass into ``beams``."""
    def add(prefix, pb=NEG, pnb=NEG):
        cur = beams.setdefault(prefix, [NEG, NEG])
        cur[0], cur[1] = _logadd(cur[0], pb), _logadd(cur[1], pnb)

    return add


def beam_search(log_probs: np.ndarray, symbols, beam: int = 32, lm: ArpaLM | None = None,
                alpha: float = 0.5, beta: float = 1.0, token_min_logp: float = -8.0,
                sep: str = "|") -> list[int]:
    """Best symbol ids (blank = 0, repeats merged) for (T, V) frame log-probabilities."""
    symbols = list(symbols)
    words = _Words(symbols, symbols.index(sep) if sep in symbols else None, lm, alpha, beta)
    beams: dict[tuple, list[float]] = {(): [0.0, NEG]}
    for frame in np.asarray(log_probs, dtype=np.float64):
        cand = np.flatnonzero(frame >= token_min_logp)
        best = int(frame.argmax())
        if best not in cand:
            cand = np.append(cand, best)
        nxt: dict[tuple, list[float]] = {}
        add = _adder(nxt)
        for prefix, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            last = prefix[-1] if prefix else None
            for v in cand.tolist():
                p = float(frame[v])
                if v == 0:
                    add(prefix, pb=total + p)
                    continue
                new = (*prefix, v)
                words.extend(prefix, new)
                if v == last:
                    add(new, pnb=pb + p)  # a repeat needs a blank in between
                    add(prefix, pnb=pnb + p)  # otherwise it merges
                else:
                    add(new, pnb=total + p)
        ranked = sorted(nxt.items(), key=lambda kv: -(_logadd(*kv[1]) + words.score(kv[0])))
        beams = dict(ranked[:beam])
    best = max(beams.items(), key=lambda kv: _logadd(*kv[1]) + words.final(kv[0]))
    return list(best[0])


def train_lm(sentences: list[list[str]], order: int) -> tuple[str, ArpaLM]:
    """ARPA text of a word n-gram LM on ``sentences``, and the LM read back from it."""
    from ..model_io.arpa import arpa_text, train_ngram

    text = arpa_text(*train_ngram(sentences, order))
    return text, ArpaLM(text, "the score's LM")
