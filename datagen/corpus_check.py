"""Read a generated demo corpus back from disk, check it, and write its README.

Why a separate pass over the *files* rather than trusting the in-memory
objects: what gets committed is FLAC + TSV, so that is what must be right
(sample rate and channel count after encoding, TSV rounding, every file having
its rows).  ``verify_corpus`` raises ``AssertionError`` on the first problem
and otherwise returns the numbers that go into ``README.md``.
"""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

if __package__:
    from .phones import PHONE_SET
else:
    from phones import PHONE_SET

SR = 16000
TOL = 0.001  # s: boundaries are written with 3 decimals


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _check_split(root: Path, wav_dir: Path, phone_set: set[str]) -> dict:
    trans = {r["utt"]: r["text"] for r in read_tsv(root / "transcripts.tsv")}
    align: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for r in read_tsv(root / "alignments.tsv"):
        align[r["utt"]].append((float(r["start"]), float(r["end"]), r["phone"]))
    flacs = {p.stem: p for p in sorted(wav_dir.glob("*.flac"))}
    assert flacs, f"no flac files in {wav_dir}"
    assert set(flacs) == set(trans) == set(align), (
        f"{root}: files / transcripts / alignments disagree"
    )
    durations, phone_durs, speech_rms, sil_rms = {}, [], [], []
    for utt, path in flacs.items():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16"), f"{utt}: {info}"
        audio, _ = sf.read(path, dtype="int16")
        dur = len(audio) / SR
        assert 2.0 <= dur <= 6.0, f"{utt}: duration {dur:.2f}s"
        segs = align[utt]
        assert segs[0][0] == 0.0, f"{utt}: alignment starts at {segs[0][0]}"
        assert abs(segs[-1][1] - dur) <= TOL, f"{utt}: alignment ends {segs[-1][1]} vs {dur:.4f}"
        assert segs[0][2] == "sil" and segs[-1][2] == "sil", f"{utt}: no leading/trailing sil"
        for (_, b0, _), (a1, _, _) in itertools.pairwise(segs):
            assert b0 == a1, f"{utt}: gap/overlap at {b0} / {a1}"
        x = audio.astype(np.float64)
        for a, b, p in segs:
            assert b > a, f"{utt}: empty segment {a}-{b} {p}"
            assert p in phone_set, f"{utt}: unknown phone {p!r}"
            chunk = x[round(a * SR) : round(b * SR)]
            rms = float(np.sqrt(np.mean(chunk**2))) if len(chunk) else 0.0
            if p == "sil":
                sil_rms.append((b - a, rms))
            else:
                phone_durs.append(b - a)
                speech_rms.append(rms)
        words = trans[utt].split()
        assert 4 <= len(words) <= 14, f"{utt}: {len(words)} words"
        durations[utt] = dur
    # "listen" proxy: speech must be loud enough, silence near digital zero
    total_rms = float(np.mean(speech_rms))
    assert total_rms > 300, f"{root}: speech RMS only {total_rms:.0f}"
    sil_weighted = sum(d * r for d, r in sil_rms) / max(sum(d for d, _ in sil_rms), 1e-9)
    assert sil_weighted < 0.1 * total_rms, (
        f"{root}: silence RMS {sil_weighted:.0f} vs speech {total_rms:.0f}"
    )
    return {
        "durations": durations,
        "transcripts": trans,
        "phone_durs": phone_durs,
        "phones": {p for segs in align.values() for _, _, p in segs},
        "speech_rms": total_rms,
        "sil_rms": sil_weighted,
    }


def verify_corpus(out: Path) -> dict:
    """Check ``out`` (wav/ + extra/) from disk; return summary statistics."""
    main = _check_split(out, out / "wav", set(PHONE_SET))
    extra = _check_split(out / "extra", out / "extra", set(PHONE_SET))
    assert not set(extra["durations"]) & set(main["durations"]), (
        "extra utterances duplicate wav/ ones"
    )
    pd = np.array(main["phone_durs"])
    in_range = float(np.mean((pd >= 0.030) & (pd <= 0.200)))
    assert in_range > 0.75, f"only {in_range:.0%} of phone segments are 30-200 ms"
    per_voice: dict[str, list[float]] = defaultdict(list)
    for utt, dur in main["durations"].items():
        per_voice[utt.rsplit("-", 1)[0]].append(dur)
    # sum of file sizes, not ``du``: deterministic across file systems (goes into README)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and f.name != "README.md")
    return {
        "utterances": len(main["durations"]),
        "voices": len(per_voice),
        "minutes": round(sum(main["durations"].values()) / 60, 2),
        "extra_utterances": len(extra["durations"]),
        "phone_set_size": len(main["phones"] | extra["phones"]),
        "phones": " ".join(sorted(main["phones"] | extra["phones"])),
        "phone_segments": len(pd),
        "phone_dur_median_ms": round(float(np.median(pd)) * 1000, 1),
        "phone_dur_30_200ms_fraction": round(in_range, 3),
        "speech_rms": round(main["speech_rms"], 1),
        "sil_rms": round(main["sil_rms"], 2),
        "words": len(
            {w.strip(",.?").lower() for t in main["transcripts"].values() for w in t.split()}
        ),
        "size_mb": round(size / 2**20, 2),
        "per_voice": {v: (len(d), round(sum(d), 1)) for v, d in sorted(per_voice.items())},
    }


def write_readme(out: Path, stats: dict, voices, espeak_version: str, args, command: str) -> None:
    """README.md for the corpus directory: provenance, regeneration, numbers, licence."""
    rows = "\n".join(
        f"| `{v.tag}` | `{v.name}` | {v.rate} | {v.pitch} | {v.pitch_range} | {v.word_gap} "
        f"| {stats['per_voice'].get(v.tag, (0, 0))[0]} | {stats['per_voice'].get(v.tag, (0, 0))[1]} |"
        for v in voices
    )
    text = f"""# Demo corpus (synthetic, espeak-ng)

Small English speech corpus with phone alignments, generated by this project
with [espeak-ng](https://github.com/espeak-ng/espeak-ng) {espeak_version} driven
through its C library (ctypes), so that every phone boundary is the exact sample
at which the synthesiser started that phoneme. Sentences come from our own
seeded grammar and word list (`datagen/sentences.py`).

Regenerate (needs `libespeak-ng1` / `espeak-ng-data`, numpy, scipy, soundfile):

```
{command}
```

This run: `--minutes {args.minutes:g} --seed {args.seed}`. Output is deterministic for a
fixed seed and espeak-ng version; another espeak-ng version may change audio and timings.

## Contents

| path | what |
|---|---|
| `wav/<utt>.flac` | {stats["utterances"]} utterances, 16 kHz mono FLAC (PCM_16), 2-6 s each, {stats["minutes"]} min total |
| `transcripts.tsv` | `utt<TAB>text`, header line |
| `alignments.tsv` | `utt<TAB>start<TAB>end<TAB>phone`, seconds (3 decimals), header line |
| `extra/` | {stats["extra_utterances"]} more utterances (`extra/<utt>.flac`, `extra/transcripts.tsv`, `extra/alignments.tsv`), *not* in `wav/`: for tests that add files to a corpus |

Utterance ids are `<voice>-<nnnn>`, `nnnn` a running index over the corpus
(voices are used round-robin). Size: {stats["size_mb"]} MiB (sum of file sizes).

## Voices

| tag | espeak voice | rate (wpm) | pitch | range | word gap (10 ms) | utts | seconds |
|---|---|---|---|---|---|---|---|
{rows}

## Alignments

* Segments are contiguous and non-overlapping, sorted, from 0 to the end of the file
  (last end = duration to within 1 ms).
* Phone set ({stats["phone_set_size"]} labels seen): `{stats["phones"]}` —
  lower-case ARPAbet-style, mapped from espeak mnemonics in `datagen/phones.py`
  (no stress marks; schwa `ax` and flap `dx` are kept separate; a few espeak
  phonemes are split in two, e.g. `@L` -> `ax l`, `aI@` -> `ay ax`, evenly in time).
  Labels are phonemic and accent-independent: the same lexical vowel gets the same
  label for every voice.
* `sil`: leading silence (random 0.12-0.35 s, added by us), trailing silence (espeak's
  end-of-sentence pause trimmed to 0.15-0.30 s), pauses at commas, and, for voices with a
  non-zero word gap, short pauses between words. espeak does not otherwise pause
  between words, so most word boundaries have no `sil`. Silence is digital zero,
  except that the breathy female variants (`+f3`, `+f4`) keep low-level breath noise
  in their pauses (roughly 25 dB below speech); the leading silence is always zero.
* Stops have no separate closure label: a `p`/`t`/`k` segment (typically 30-60 ms)
  is closure + burst, as espeak times them.
* {stats["phone_segments"]} non-silence segments, median {stats["phone_dur_median_ms"]} ms,
  {stats["phone_dur_30_200ms_fraction"]:.0%} of them between 30 and 200 ms.

## Licence

Generated by us for this project: synthetic speech, no recordings of people and no
third-party text (sentences come from our own grammar and word list). Distributed with
the repository under the repository's licence. espeak-ng (GPL-3.0-or-later) was only run
as a tool to render the audio; no espeak-ng code or data files are included here.
"""
    (out / "README.md").write_text(text)
