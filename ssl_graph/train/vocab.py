"""CTC output vocabularies and the reference token sequences they encode (no torch).

Characters use a fixed alphabet (blank, ``|`` between words, apostrophe, a-z): every model
fine-tuned on characters shares one output layout whatever its labeled subset, so heads and
hypotheses stay comparable. Phones come from the alignments (all utterances, so test phones are
never out of vocabulary), folded by their ``PhoneMap`` and with its silences dropped: CTC's blank
already covers pauses.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from ..specs.finetune import BLANK, CHARS, WORD_SEP  # noqa: F401  (the char alphabet)

#: alignment labels that mark pauses, not phones (``PhoneMap``'s default)
SILENCE = frozenset({"sil", "sp", "spn", ""})
_NOT_LETTER = re.compile(r"[^a-z']+")


@dataclass(frozen=True)
class Vocab:
    symbols: tuple[str, ...]  # index 0 is the CTC blank

    def __post_init__(self):
        if not self.symbols or self.symbols[0] != BLANK:
            raise ValueError("a CTC vocabulary starts with the blank symbol")

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}

    def encode(self, tokens: list[str], utt: str = "?") -> np.ndarray:
        index = self.index
        unknown = sorted({t for t in tokens if t not in index})
        if unknown:
            raise ValueError(f"utterance {utt!r}: token(s) {unknown} are not in the vocabulary")
        return np.array([index[t] for t in tokens], dtype=np.int64)

    def decode(self, ids) -> list[str]:
        return [self.symbols[int(i)] for i in ids]


def normalize_text(text: str) -> str:
    """Lowercase, accents stripped, anything but letters and apostrophes becomes a word break."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    words = [w.strip("'") for w in _NOT_LETTER.sub(" ", text).split()]
    return " ".join(w for w in words if w)


def char_tokens(text: str) -> list[str]:
    """``"Hi there"`` → ``['h', 'i', '|', 't', 'h', 'e', 'r', 'e']``."""
    return [WORD_SEP if c == " " else c for c in normalize_text(text)]


def phone_tokens(segments, silence=SILENCE) -> list[str]:
    return [p for _, _, p in segments if p not in silence]


def tokens_to_text(tokens: list[str]) -> str:
    """Char tokens back to words: ``|`` → space, runs of separators collapse."""
    return " ".join("".join(tokens).replace(WORD_SEP, " ").split())


def build_vocab(units: str, alignments: dict | None = None, silence=SILENCE) -> Vocab:
    if units == "char":
        return Vocab(CHARS)
    phones = sorted({p for segs in (alignments or {}).values() for p in phone_tokens(segs, silence)})
    return Vocab((BLANK, *phones))


def references(units: str, texts: dict[str, str] | None = None, aset=None,
               silence=SILENCE) -> tuple[Vocab, dict[str, list[str]]]:
    """The vocabulary and each annotated utterance's reference tokens: characters of ``texts``
    (units='char') or the phones of an ``AlignmentSet`` (units='phone')."""
    if units == "char":
        return build_vocab("char"), {u: char_tokens(t) for u, t in (texts or {}).items()}
    alignments = {u: aset.segments(u) for u in aset.utts}
    vocab = build_vocab("phone", alignments, silence)
    return vocab, {u: phone_tokens(s, silence) for u, s in alignments.items()}


def stored_references(ft, ctx) -> tuple[Vocab, dict[str, list[str]]]:
    """``references`` of a ``FineTune`` node, read from its annotation node in the store."""
    from ..audio.annotations import read_alignments, read_transcripts

    key = ctx.state(ft.references).key
    if ft.units == "char":
        return references("char", texts=read_transcripts(ctx.store, key))
    silence = frozenset(ft.alignments.phones.silence)
    return references("phone", aset=read_alignments(ctx.store, key), silence=silence)
