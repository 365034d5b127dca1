"""Word n-gram language models in the ARPA text format: written from transcripts, read back.

KenLM reads what :func:`write_arpa` writes, but nothing here needs it: the beam search scores
with :class:`ArpaLM`, a plain backoff lookup. Smoothing is interpolated absolute discounting
(discount ``D = n1 / (n1 + 2 n2)`` per order, Ney et al. 1994) in backoff form: an n-gram seen
in training stores ``(c - D) / c(h) + D · N1+(h ·) / c(h) · P(w | shorter h)``; an unseen one
backs off with the weight that makes each history's distribution sum to one. The lowest order
interpolates with a uniform distribution over the vocabulary plus ``<unk>``, so every word gets
a finite score.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def _discount(counts: Counter) -> float:
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    return n1 / (n1 + 2 * n2) if n1 + n2 else 0.5


def train_ngram(sentences: Iterable[list[str]], order: int = 3):
    """(probabilities, backoffs): dicts from n-gram tuples to log10 values, orders 1..order."""
    counts = [Counter() for _ in range(order + 1)]
    for words in sentences:
        seq = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(1 if n == 1 else 0, len(seq) - n + 1):  # <s> is never predicted
                counts[n][tuple(seq[i:i + n])] += 1
    vocab = {g[0] for g in counts[1]} | {UNK}
    probs: dict[tuple, float] = {}
    bows: dict[tuple, float] = {}
    lower: dict[tuple, float] = {}
    for n in range(1, order + 1):
        d = _discount(counts[n])
        total: dict[tuple, int] = defaultdict(int)
        types: dict[tuple, int] = defaultdict(int)
        for g, c in counts[n].items():
            total[g[:-1]] += c
            types[g[:-1]] += 1
        cur: dict[tuple, float] = {}
        for g, c in counts[n].items():
            h = g[:-1]
            shorter = 1.0 / len(vocab) if n == 1 else lower[g[1:]]
            cur[g] = (c - d) / total[h] + d * types[h] / total[h] * shorter
        if n == 1:  # words never seen (<unk>) get the uniform share
            for w in vocab - {g[0] for g in counts[1]}:
                cur[(w,)] = d * types[()] / total[()] / len(vocab)
        else:  # normalising backoff weight of each history: left-over mass / lower-order mass
            seen_hi: dict[tuple, float] = defaultdict(float)
            seen_lo: dict[tuple, float] = defaultdict(float)
            for g, p in cur.items():
                seen_hi[g[:-1]] += p
                seen_lo[g[:-1]] += lower[g[1:]]
            for h in total:
                left, room = 1.0 - seen_hi[h], 1.0 - seen_lo[h]
                if left > 0 and room > 0:
                    bows[h] = math.log10(left / room)
        lower = cur
        probs.update({g: math.log10(p) for g, p in cur.items()})
    probs[(BOS,)] = -99.0  # ARPA convention: <s> is a history only
    return probs, bows


def arpa_text(probs: dict[tuple, float], bows: dict[tuple, float]) -> str:
    by_order: dict[int, list[tuple]] = defaultdict(list)
    for g in probs:
        by_order[len(g)].append(g)
    lines = ["", "\\data\\"]
    lines += [f"ngram {n}={len(by_order[n])}" for n in sorted(by_order)]
    for n in sorted(by_order):
        lines += ["", f"\\{n}-grams:"]
        for g in sorted(by_order[n]):
            row = f"{probs[g]:.6f}\t{' '.join(g)}"
            if g in bows and n < max(by_order):
                row += f"\t{bows[g]:.6f}"
            lines.append(row)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def write_arpa(path: Path, probs: dict[tuple, float], bows: dict[tuple, float]) -> Path:
    Path(path).write_text(arpa_text(probs, bows))
    return Path(path)


class ArpaLM:
    """Backoff scoring of an ARPA file: ``log10 P(word | history)``."""

    def __init__(self, text: str, source: str = "ARPA text"):
        self.source = source
        self.probs: dict[tuple, float] = {}
        self.bows: dict[tuple, float] = {}
        self.order = 0
        section = 0
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("ngram ") or line in ("\\data\\", "\\end\\"):
                continue
            if line.endswith("-grams:"):
                section = int(line[1:line.index("-")])
                self.order = max(self.order, section)
                continue
            parts = line.split()  # log10 prob, `section` words, [backoff]
            self.probs[tuple(parts[1:1 + section])] = float(parts[0])
            if len(parts) > 1 + section:
                self.bows[tuple(parts[1:1 + section])] = float(parts[1 + section])
        if not self.probs:
            raise ValueError(f"{source}: no n-grams found; is it an ARPA file?")

    @classmethod
    def load(cls, path: Path) -> "ArpaLM":
        return cls(Path(path).read_text(), str(path))

    def score(self, history: tuple[str, ...], word: str) -> float:
        if (word,) not in self.probs:
            word = UNK
        history = history[-(self.order - 1):] if self.order > 1 else ()
        total = 0.0
        while True:
            g = (*history, word)
            if g in self.probs:
                return total + self.probs[g]
            if not history:
                return total + self.probs.get((UNK,), -10.0)
            total += self.bows.get(history, 0.0)
            history = history[1:]

    def sentence(self, words: list[str]) -> float:
        """log10 P of a whole sentence, with <s> and </s>."""
        hist, total = (BOS,), 0.0
        for w in [*words, EOS]:
            total += self.score(hist, w)
            hist = (*hist, w)
        return total
