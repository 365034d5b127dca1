"""Generate the project's small synthetic demo corpus with espeak-ng.

Why this exists: tests, docs and benchmarks need a few minutes of real-sounding
speech with *phone-level alignments* and no licensing strings attached.  Public
corpora either need a download and an agreement (TIMIT) or are too big to
commit.  espeak-ng is a formant synthesiser, so it is robotic, but it knows
exactly which phoneme it is producing at every sample, which makes it a
perfect oracle for alignment-based metrics (phone purity, PNMI, ABX-style
checks) on a corpus we can regenerate bit-for-bit and ship in the repository.

Pipeline for one utterance:
  sentence (own grammar, ``sentences.py``)
  -> espeak-ng via its C library (``espeak_ctypes.py``): int16 @ 22050 Hz +
     phoneme events with exact start samples
  -> phone segments (``phones.py``: ARPAbet-style labels, pauses -> ``sil``)
  -> random leading silence, trailing silence trimmed to a random length
  -> resample to 16 kHz (polyphase 320/441 = 16000/22050), FLAC PCM_16, times in seconds.

Usage:
    python datagen/espeak_corpus.py --out data/demo --minutes 8 --seed 0
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

if __package__:  # imported as datagen.espeak_corpus
    from .espeak_ctypes import Espeak
    from .phones import SIL, segments_from_events
    from .sentences import SentenceGenerator
else:  # run as a script: python datagen/espeak_corpus.py
    from espeak_ctypes import Espeak
    from phones import SIL, segments_from_events
    from sentences import SentenceGenerator

TARGET_SR = 16000
MIN_DUR, MAX_DUR = 2.0, 6.0  # seconds per utterance
N_EXTRA = 3
LEAD_SIL = (0.12, 0.35)  # seconds of leading silence, drawn uniformly
TRAIL_SIL = (0.15, 0.30)  # trailing silence is trimmed to a length in this range
# espeak's default volume (100) peaks at full scale for some voices and the
# resampler's overshoot then clips; 50 leaves >= 5 dB headroom (speech RMS about
# -28 dBFS) and, as a bonus, fewer significant bits make the FLACs ~10% smaller.
VOLUME = 50
# 8 min, not 9: at 9 min the FLACs alone are ~9 MB, over the ~8 MB budget.
REGEN_COMMAND = "python datagen/espeak_corpus.py --out data/demo --minutes 8 --seed 0"


@dataclass(frozen=True)
class Voice:
    """A "speaker": an espeak voice (+variant) and prosody settings.

    ``tag`` is the utterance-id prefix.  Different base voices give different
    accents (different phoneme choices); variants and pitch/rate/range give
    different timbre and tempo; a non-zero ``word_gap`` inserts short pauses
    between words, so some speakers have inter-word ``sil`` segments.
    """

    tag: str
    name: str
    rate: int  # words per minute
    pitch: int  # 0-100, 50 = default
    pitch_range: int  # 0-100, 50 = default
    word_gap: int = 0  # units of 10 ms


VOICES = [
    Voice("us", "en-us", 170, 50, 50, 0),
    Voice("usf3", "en-us+f3", 160, 62, 65, 1),
    Voice("usm3", "en-us+m3", 180, 38, 40, 0),
    Voice("gb", "en", 165, 48, 50, 0),
    Voice("rpf4", "en-gb-x-rp+f4", 150, 58, 60, 2),
    Voice("sco", "en-gb-scotland", 175, 44, 45, 1),
    Voice("car", "en-029", 160, 52, 55, 0),
    Voice("nycf1", "en-us-nyc+f1", 185, 55, 70, 0),
]


@dataclass
class Utterance:
    utt: str
    voice: Voice
    text: str
    audio: np.ndarray  # int16, 16 kHz, mono
    segments: list[tuple[float, float, str]]  # seconds, 3 decimals, contiguous

    @property
    def duration(self) -> float:
        return len(self.audio) / TARGET_SR


def resample_to_16k(audio: np.ndarray, sr: int) -> np.ndarray:
    """int16 at ``sr`` -> int16 at 16 kHz (espeak-ng renders at 22050 Hz: up 320, down 441)."""
    if sr == TARGET_SR:
        return audio.astype(np.int16)
    g = math.gcd(TARGET_SR, sr)  # 22050 -> 16000: up 320, down 441
    y = resample_poly(audio.astype(np.float64), TARGET_SR // g, sr // g)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def segments_to_seconds(
    segments: list[tuple[int, int, str]], sr: int, duration: float
) -> list[tuple[float, float, str]]:
    """Sample segments at ``sr`` -> second segments rounded to 1 ms.

    Each boundary is rounded once, so rounding keeps the segments contiguous;
    segments that collapse to zero length are dropped and the last end is set
    to the (rounded) duration of the 16 kHz file.
    """
    bounds = [round(s / sr, 3) for s, _, _ in segments] + [round(duration, 3)]
    bounds[0] = 0.0
    out: list[tuple[float, float, str]] = []
    for (_, _, label), a, b in zip(segments, bounds, bounds[1:]):
        b = min(b, bounds[-1])
        if b <= a:
            continue
        if out and out[-1][1] != a:  # a previous segment was dropped
            a = out[-1][1]
        if out and label == SIL and out[-1][2] == SIL:
            out[-1] = (out[-1][0], b, SIL)
        else:
            out.append((a, b, label))
    return out


def synthesize(engine: Espeak, voice: Voice, text: str, rng: random.Random, utt: str) -> Utterance:
    """Speak one sentence with one voice and return 16 kHz audio + alignment."""
    engine.set_voice(voice.name)
    engine.set_params(voice.rate, voice.pitch, voice.pitch_range, voice.word_gap, VOLUME)
    syn = engine.synth(text)
    sr = syn.sample_rate
    lead = round(rng.uniform(*LEAD_SIL) * sr)
    audio = np.concatenate([np.zeros(lead, np.int16), syn.audio])
    segs = segments_from_events(syn.phonemes, len(audio), lead)
    trail = round(rng.uniform(*TRAIL_SIL) * sr)
    if segs and segs[-1][2] == SIL and segs[-1][1] - segs[-1][0] > trail:
        audio = audio[: segs[-1][0] + trail]  # cuts into espeak's end pause only
        segs = segments_from_events(syn.phonemes, len(audio), lead)
    audio16 = resample_to_16k(audio, sr)
    seconds = segments_to_seconds(segs, sr, len(audio16) / TARGET_SR)
    return Utterance(utt, voice, text, audio16, seconds)


def generate(minutes: float, seed: int) -> tuple[list[Utterance], list[Utterance], str]:
    """Draw utterances round-robin over VOICES until ``minutes`` of audio, plus N_EXTRA.

    Sentences whose rendering falls outside [MIN_DUR, MAX_DUR] are redrawn for
    the same voice, so every utterance is 2-6 s.  All randomness comes from one
    ``random.Random(seed)``: same seed + same espeak-ng version = same corpus.
    """
    rng = random.Random(seed)
    gen = SentenceGenerator(rng, 4, 14)
    engine = Espeak()
    utts: list[Utterance] = []
    total, i = 0.0, 0
    while total < minutes * 60 or len(utts) < len(VOICES):
        utts.append(_one(engine, gen, rng, VOICES[i % len(VOICES)], i))
        total += utts[-1].duration
        i += 1
    extra = []
    for k in range(N_EXTRA):  # different voices, ids continue the numbering
        extra.append(_one(engine, gen, rng, VOICES[(i + 2 * k + 1) % len(VOICES)], i + k))
    return utts, extra, engine.version


def _one(
    engine: Espeak, gen: SentenceGenerator, rng: random.Random, voice: Voice, index: int
) -> Utterance:
    utt_id = f"{voice.tag}-{index:04d}"
    for _ in range(100):
        u = synthesize(engine, voice, gen.sentence(), rng, utt_id)
        if MIN_DUR <= u.duration <= MAX_DUR:
            return u
    raise RuntimeError(f"could not fit an utterance for {voice.tag} into {MIN_DUR}-{MAX_DUR} s")


def write_split(utts: list[Utterance], root: Path, wav_dir: Path) -> None:
    """``<wav_dir>/<utt>.flac`` + ``<root>/transcripts.tsv`` + ``<root>/alignments.tsv`` +
    ``<root>/speakers.tsv`` (the voice tag of each ``<voice>-<nnnn>`` id)."""
    if wav_dir.exists():
        for old in wav_dir.glob("*.flac"):
            old.unlink()
    wav_dir.mkdir(parents=True, exist_ok=True)
    trans = ["utt\ttext"]
    align = ["utt\tstart\tend\tphone"]
    for u in sorted(utts, key=lambda u: u.utt):
        sf.write(
            wav_dir / f"{u.utt}.flac",
            u.audio,
            TARGET_SR,
            format="FLAC",
            subtype="PCM_16",
            compression_level=1.0,
        )  # size matters: the corpus is committed
        assert "\t" not in u.text and "\n" not in u.text
        trans.append(f"{u.utt}\t{u.text}")
        align += [f"{u.utt}\t{a:.3f}\t{b:.3f}\t{p}" for a, b, p in u.segments]
    (root / "transcripts.tsv").write_text("\n".join(trans) + "\n")
    (root / "alignments.tsv").write_text("\n".join(align) + "\n")
    speakers = ["utt\tspeaker"] + [f"{u.utt}\t{u.utt.split('-')[0]}"
                                   for u in sorted(utts, key=lambda u: u.utt)]
    (root / "speakers.tsv").write_text("\n".join(speakers) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/demo"))
    ap.add_argument("--minutes", type=float, default=8.0, help="audio in wav/ (extra/ not counted)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-readme", action="store_true", help="skip writing README.md")
    args = ap.parse_args(argv)

    if __package__:
        from .corpus_check import verify_corpus, write_readme
    else:
        from corpus_check import verify_corpus, write_readme

    utts, extra, version = generate(args.minutes, args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if (out / "extra").exists():
        shutil.rmtree(out / "extra")
    write_split(utts, out, out / "wav")
    write_split(extra, out / "extra", out / "extra")  # extra/<utt>.flac next to its TSVs

    stats = verify_corpus(out)
    if not args.no_readme:
        write_readme(out, stats, VOICES, version, args, REGEN_COMMAND)
    for key, value in stats.items():
        if key != "per_voice":
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
