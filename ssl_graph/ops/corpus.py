"""Corpus: check every new or changed file (readable, rate, channels, not empty) and record its
length, so a bad file is refused here, named, before any feature node decodes it."""

from __future__ import annotations

from ..audio.io import AudioError, audio_info
from .base import PerUttOp, RunContext, register


@register("Corpus")
class CorpusOp(PerUttOp):
    batch_utts = 256

    def setup(self, st, ctx: RunContext) -> None:
        from ..formats.layouts import declared_frames

        self.stated = declared_frames(st.node)  # lengths the layout states (fairseq num_samples)

    def compute(self, utts, st, ctx: RunContext):
        corpus, manifest = st.node, st.manifest
        stated = getattr(self, "stated", {})
        out = []
        for utt in utts:
            path = manifest.utts[utt].path
            sr, channels, frames = audio_info(path, utt)
            if utt in stated and stated[utt][1] != frames:
                where, n = stated[utt]
                raise AudioError(
                    f"{where}: utterance {utt!r}: num_samples is {n} but {path} holds {frames} "
                    "samples; fix the row or regenerate the manifest (fairseq's "
                    "wav2vec_manifest.py)"
                )
            if not corpus.resample:
                if sr != corpus.sample_rate:
                    raise AudioError(
                        f"utterance {utt!r}: {path} is {sr} Hz, the corpus expects "
                        f"{corpus.sample_rate} Hz (convert it, or set Corpus(resample=True))"
                    )
                if channels != 1:
                    raise AudioError(
                        f"utterance {utt!r}: {path} has {channels} channels; the corpus must be "
                        "mono (set Corpus(resample=True) to downmix)"
                    )
            else:
                frames = round(frames * corpus.sample_rate / sr)
            if frames == 0:
                raise AudioError(
                    f"utterance {utt!r}: {path} holds no samples; remove it from the corpus"
                )
            out.append(int(frames))
        return out
