"""How ``ASRScore`` turns CTC outputs into words: greedy (the default) or a prefix beam search,
optionally with a word n-gram LM the score node trains on the fine-tune's *labeled*
transcripts (never its test utterances, so the LM cannot have seen what it helps decode)."""

from __future__ import annotations

from pydantic import Field

from .base import Component


class NGramLM(Component):
    """A word ``order``-gram LM (interpolated absolute discounting), written as ARPA."""

    order: int = Field(3, ge=1, le=6)


class BeamSearch(Component):
    """CTC prefix beam search (Hannun et al., 2014) over the fine-tune's output symbols.

    With ``lm``, each completed word adds ``alpha`` × ln P_LM(word | previous words) +
    ``beta`` (a word insertion bonus) to its prefix's score, and the end of the utterance adds
    the LM's end-of-sentence probability. Tokens whose frame log-probability is below
    ``token_min_logp`` are not expanded (the best token always is).
    """

    beam: int = Field(32, ge=1)
    lm: NGramLM | None = None
    alpha: float = Field(0.5, ge=0.0, description="LM weight")
    beta: float = Field(1.0, description="word insertion bonus (with an LM)")
    token_min_logp: float = Field(-8.0, le=0.0)

    def describe(self) -> str:
        lm = f" + {self.lm.order}-gram LM (α={self.alpha:g}, β={self.beta:g})" if self.lm else ""
        return f"beam {self.beam}{lm}"
