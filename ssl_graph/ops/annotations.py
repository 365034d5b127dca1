"""Alignments, WordAlignments and Transcripts: commit what the plan parsed and checked.

The one check the plan cannot always make, segments past the audio's end, runs here for
utterances whose length the corpus op has just measured, before any reader sees the set.
"""

from __future__ import annotations

from ..audio.annotations import (
    check_ends,
    parse_alignments,
    parse_transcripts,
    write_alignments,
    write_transcripts,
)
from .base import AggregateOp, RunContext, register


def _corpus_seconds(node, ctx: RunContext) -> dict[str, float]:
    sr = node.corpus.sample_rate
    return {u: e[2] / sr for u, e in ctx.store.index(ctx.state(node.corpus).key).items()}


@register("WordAlignments")
@register("Alignments")
class AlignmentsOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        node = st.node
        aset = st.payload or parse_alignments(node, ctx.state(node.corpus).expected)
        check_ends(node, aset, _corpus_seconds(node, ctx))
        return write_alignments(ctx.store, st.key, aset)


@register("Transcripts")
class TranscriptsOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        node = st.node
        texts = st.payload or parse_transcripts(node, ctx.state(node.corpus).expected)
        return write_transcripts(ctx.store, st.key, texts)
