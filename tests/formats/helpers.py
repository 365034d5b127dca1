"""Shared by the format tests: a plain-directory corpus of demo utterances, and a project
whose spec holds it beside the layout under test, so their MFCCs can be compared."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from ssl_graph.api import Project
from ssl_graph.audio.annotations import read_alignments, read_transcripts

from ..conftest import DEMO, make_corpus

HEADER = '''
from ssl_graph import *
from ssl_graph.specs.annotations import corpus_alignments, corpus_transcripts
plain = Corpus(root="plain/wav")
plain_mfcc = MFCC(corpus=plain)
'''


def plain_corpus(d: Path, n: int) -> list[str]:
    """n demo utterances (several voices) under d/plain/wav, with their TSV annotations."""
    return make_corpus(d / "plain", n)


def demo_texts() -> dict[str, str]:
    rows = (DEMO / "transcripts.tsv").read_text().splitlines()[1:]
    return dict(r.split("\t", 1) for r in rows)


def demo_segments() -> dict[str, list[tuple[float, float, str]]]:
    out: dict[str, list] = {}
    for r in (DEMO / "alignments.tsv").read_text().splitlines()[1:]:
        utt, s, e, p = r.split("\t")
        out.setdefault(utt, []).append((float(s), float(e), p))
    return out


def run_spec(d: Path, body: str) -> Project:
    (d / "p.py").write_text(HEADER + body)
    project = Project(d / "p.py", str(d / "store"))
    project.run()
    return project


def assert_same_mfcc(project: Project, pairs: dict[str, str]) -> None:
    """Layout utterance → plain utterance: their MFCC frames are identical."""
    assert sorted(project["mfcc"].utterances()) == sorted(pairs)
    for layout_utt, plain_utt in pairs.items():
        got = project["mfcc"].features(layout_utt)
        np.testing.assert_array_equal(got, project["plain_mfcc"].features(plain_utt))


def stored_texts(project: Project, name: str) -> dict[str, str]:
    return read_transcripts(project.store, project[name].key)


def stored_segments(project: Project, name: str) -> dict[str, list[tuple[float, float, str]]]:
    aset = read_alignments(project.store, project[name].key)
    return {u: aset.segments(u) for u in aset.utts}


def long_recordings(d: Path, utts: list[str], per_recording: int = 3):
    """Concatenate plain utterances (with 0.25 s pauses) into FLAC files d/long/<reco>.flac;
    returns the recording ids and (utt, reco, start s, end s) of each utterance in them."""
    (d / "long").mkdir()
    recordings, segments = [], []
    for r in range(0, len(utts), per_recording):
        reco = f"rec{r // per_recording}"
        waves, t = [], 0
        for u in utts[r:r + per_recording]:
            w, sr = sf.read(d / "plain" / "wav" / f"{u}.flac", dtype="int16")
            segments.append((u, reco, t / sr, (t + len(w)) / sr))
            waves += [w, np.zeros(sr // 4, np.int16)]
            t += len(w) + sr // 4
        sf.write(d / "long" / f"{reco}.flac", np.concatenate(waves), sr, subtype="PCM_16")
        recordings.append(reco)
    return recordings, segments


def demo_words(utt: str) -> list[tuple[int, int, str]]:
    """TIMIT-style word segments (samples at 16 kHz) for a demo utterance.

    The bundled corpus has phone times but no word times, so the transcript's words are laid
    over its non-pause phones in order (as many phones per word as its share of letters, at
    least one), boundaries on phone boundaries, pauses left out (gaps). As in TIMIT, some
    neighbours overlap: every third word gives its last phone to the next one too, and every
    fifth overruns the next word's start by 40 samples.
    """
    words = re.findall(r"[a-z']+", demo_texts()[utt].lower())
    phones = [(round(s * 16000), round(e * 16000)) for s, e, p in demo_segments()[utt]
              if p != "sil"]
    letters = np.cumsum([len(w) for w in words]) / sum(len(w) for w in words)
    cuts, lo = [0], 0
    for i, frac in enumerate(letters[:-1]):
        lo = max(lo + 1, min(round(frac * len(phones)), len(phones) - (len(words) - 1 - i)))
        cuts.append(lo)
    cuts.append(len(phones))
    out = [(phones[a][0], phones[b - 1][1], w) for a, b, w in zip(cuts, cuts[1:], words)]
    for i in range(len(out) - 1):
        (s, e, w), nxt = out[i], out[i + 1]
        if i % 3 == 2 and cuts[i + 2] - cuts[i + 1] > 1:
            out[i] = (s, phones[cuts[i + 1]][1], w)  # shares the next word's first phone
        elif i % 5 == 4:
            out[i] = (s, max(e, nxt[0] + 40), w)
    return out


def timit_tree(d: Path, utts: list[str], words: bool = False) -> dict[str, str]:
    """TRAIN/DR1/<SPEAKER>/<SENTENCE>.WAV as NIST SPHERE + .PHN/.TXT (+ .WRD with ``words``);
    returns TIMIT id → plain id."""
    segs, texts, ids = demo_segments(), demo_texts(), {}
    for i, u in enumerate(utts):
        spk, sent = f"M{u.split('-')[0].upper()}0", f"SX{i}"
        folder = d / "TIMIT" / "TRAIN" / "DR1" / spk
        folder.mkdir(parents=True, exist_ok=True)
        wave, sr = sf.read(d / "plain" / "wav" / f"{u}.flac", dtype="int16")
        sf.write(folder / f"{sent}.WAV", wave, sr, format="NIST", subtype="PCM_16")
        (folder / f"{sent}.PHN").write_text("".join(
            f"{round(s * 16000)} {round(e * 16000)} {p}\n" for s, e, p in segs[u]))
        (folder / f"{sent}.TXT").write_text(f"0 {len(wave)} {texts[u]}\n")
        if words:
            (folder / f"{sent}.WRD").write_text("".join(
                f"{s} {e} {w}\n" for s, e, w in demo_words(u)))
        ids[f"{spk}-{sent}".lower()] = u
    (d / "TIMIT" / "DOC").mkdir()
    (d / "TIMIT" / "DOC" / "PROMPTS.TXT").write_text("; not a transcript\n")
    return ids
