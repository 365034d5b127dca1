"""Checks on the committed demo corpus in ``data/demo`` (made by datagen/espeak_corpus.py).

Only the committed files are read; espeak-ng is not needed.  The checks live
in ``corpus_problems`` (which returns a list of human-readable problems) so the
mutation tests at the bottom can prove each kind of breakage is caught.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
SR = 16000
COVER_TOL = 0.020  # s: alignment must end within this of the audio's end
EPS = 1e-6


def read_tsv(path: Path, header: list[str]) -> list[list[str]]:
    lines = path.read_text().splitlines()
    assert lines and lines[0].split("\t") == header, f"{path}: bad header {lines[:1]}"
    rows = [line.split("\t") for line in lines[1:]]
    bad = [r for r in rows if len(r) != len(header)]
    assert not bad, f"{path}: malformed rows {bad[:3]}"
    return rows


def load_split(root: Path, wav_dir: Path):
    trans = {u: t for u, t in read_tsv(root / "transcripts.tsv", ["utt", "text"])}
    align: dict[str, list[tuple[float, float, str]]] = {}
    for u, a, b, p in read_tsv(root / "alignments.tsv", ["utt", "start", "end", "phone"]):
        align.setdefault(u, []).append((float(a), float(b), p))
    flacs = {p.stem: p for p in sorted(wav_dir.glob("*.flac"))}
    return trans, align, flacs


def corpus_problems(
    root: Path, wav_dir: Path, min_dur: float = 2.0, max_dur: float = 6.0
) -> list[str]:
    """Everything wrong with one split (wav files + its two TSVs); [] if fine."""
    try:
        trans, align, flacs = load_split(root, wav_dir)
    except AssertionError as e:
        return [str(e)]
    problems = []
    if not flacs:
        problems.append(f"no flac files in {wav_dir}")
    for name, ids in (("transcript", trans), ("alignment", align)):
        if missing := sorted(set(flacs) - set(ids)):
            problems.append(f"no {name} rows for {missing}")
        if orphans := sorted(set(ids) - set(flacs)):
            problems.append(f"{name} rows without a flac: {orphans}")
    for utt, path in flacs.items():
        info = sf.info(path)
        if (info.samplerate, info.channels, info.subtype) != (SR, 1, "PCM_16"):
            problems.append(f"{utt}: {info.samplerate} Hz, {info.channels} ch, {info.subtype}")
            continue
        audio, _ = sf.read(path, dtype="int16")
        dur = len(audio) / SR
        if not min_dur <= dur <= max_dur:
            problems.append(f"{utt}: duration {dur:.2f} s")
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        if rms < 100:
            problems.append(f"{utt}: near-silent (RMS {rms:.1f})")
        if not trans.get(utt, "").strip():
            problems.append(f"{utt}: empty transcript")
        segs = align.get(utt, [])
        if not segs:
            continue
        if abs(segs[0][0]) > EPS:
            problems.append(f"{utt}: alignment starts at {segs[0][0]}")
        if abs(segs[-1][1] - dur) > COVER_TOL:
            problems.append(f"{utt}: alignment ends at {segs[-1][1]}, audio at {dur:.3f}")
        for (_, b0, _), (a1, _, _) in itertools.pairwise(segs):
            if abs(a1 - b0) > EPS:
                problems.append(f"{utt}: {'gap' if a1 > b0 else 'overlap'} at {b0:.3f}/{a1:.3f}")
        for a, b, p in segs:
            if not b > a:
                problems.append(f"{utt}: empty/negative segment {a}-{b} {p}")
            if not p or p != p.strip() or " " in p:
                problems.append(f"{utt}: bad phone label {p!r}")
    return problems


def _durations(wav_dir: Path) -> dict[str, float]:
    return {p.stem: sf.info(p).frames / SR for p in sorted(wav_dir.glob("*.flac"))}


# --- the committed corpus ---------------------------------------------------


def test_main_split_is_consistent():
    assert corpus_problems(DEMO, DEMO / "wav") == []


def test_extra_split_is_consistent_and_separate():
    assert corpus_problems(DEMO / "extra", DEMO / "extra") == []
    extra = set(_durations(DEMO / "extra"))
    assert len(extra) == 3
    assert not extra & set(_durations(DEMO / "wav")), "extra utterances must not be in wav/"


def test_voices_and_total_duration():
    durs = _durations(DEMO / "wav")
    voices = {u.rsplit("-", 1)[0] for u in durs}
    assert len(voices) >= 6, voices
    assert all(u.rsplit("-", 1)[1].isdigit() for u in durs)
    minutes = sum(durs.values()) / 60
    assert 7.5 <= minutes <= 10.5, minutes


def test_phone_inventory():
    _, align, _ = load_split(DEMO, DEMO / "wav")
    phones = {p for segs in align.values() for _, _, p in segs}
    assert "sil" in phones
    assert 30 <= len(phones) <= 50, sorted(phones)
    assert all(segs[0][2] == "sil" and segs[-1][2] == "sil" for segs in align.values())
    durs = np.array([b - a for segs in align.values() for a, b, p in segs if p != "sil"])
    assert np.mean((durs >= 0.03) & (durs <= 0.2)) > 0.75


def test_corpus_size_budget():
    size = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert size < 9 * 2**20, f"data/demo is {size / 2**20:.1f} MiB"


# --- the checks catch a broken corpus ---------------------------------------


@pytest.fixture
def small_copy(tmp_path: Path) -> Path:
    """First four utterances of data/demo, copied with their rows."""
    (tmp_path / "wav").mkdir()
    trans, align, flacs = load_split(DEMO, DEMO / "wav")
    keep = sorted(flacs)[:4]
    for u in keep:
        shutil.copy(flacs[u], tmp_path / "wav" / f"{u}.flac")
    (tmp_path / "transcripts.tsv").write_text(
        "utt\ttext\n" + "".join(f"{u}\t{trans[u]}\n" for u in keep)
    )
    rows = [f"{u}\t{a:.3f}\t{b:.3f}\t{p}\n" for u in keep for a, b, p in align[u]]
    (tmp_path / "alignments.tsv").write_text("utt\tstart\tend\tphone\n" + "".join(rows))
    return tmp_path


def _edit_lines(path: Path, fn) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(fn(lines)))


def _drop_middle_segment(root):
    _edit_lines(root / "alignments.tsv", lambda ls: ls[:5] + ls[6:])


def _overlap(root):
    def fn(ls):
        u, a, b, p = ls[5].rstrip("\n").split("\t")
        ls[5] = f"{u}\t{float(a) - 0.01:.3f}\t{b}\t{p}\n"
        return ls

    _edit_lines(root / "alignments.tsv", fn)


def _truncate_alignment(root):
    _edit_lines(root / "alignments.tsv", lambda ls: ls[:-1])


def _drop_transcript(root):
    _edit_lines(root / "transcripts.tsv", lambda ls: ls[:-1])


def _resample_8k(root):
    path = min((root / "wav").glob("*.flac"))
    audio, _ = sf.read(path, dtype="int16")
    sf.write(path, audio[::2], 8000, subtype="PCM_16")


def _stereo(root):
    path = min((root / "wav").glob("*.flac"))
    audio, _ = sf.read(path, dtype="int16")
    sf.write(path, np.stack([audio, audio], axis=1), SR, subtype="PCM_16")


def _silent_file(root):
    path = min((root / "wav").glob("*.flac"))
    audio, _ = sf.read(path, dtype="int16")
    sf.write(path, np.zeros_like(audio), SR, subtype="PCM_16")


def _orphan_flac(root):
    src = min((root / "wav").glob("*.flac"))
    shutil.copy(src, root / "wav" / "zz-9999.flac")


def _bad_header(root):
    _edit_lines(root / "alignments.tsv", lambda ls: ["utt\tbegin\tend\tphone\n"] + ls[1:])


@pytest.mark.parametrize(
    "break_it",
    [
        _drop_middle_segment,
        _overlap,
        _truncate_alignment,
        _drop_transcript,
        _resample_8k,
        _stereo,
        _silent_file,
        _orphan_flac,
        _bad_header,
    ],
)
def test_checks_detect_broken_corpus(small_copy: Path, break_it):
    assert corpus_problems(small_copy, small_copy / "wav") == []
    break_it(small_copy)
    assert corpus_problems(small_copy, small_copy / "wav") != []
