"""Shared by the format tests: a plain-directory corpus of demo utterances, and a project
whose spec holds it beside the layout under test, so their MFCCs can be compared."""

from __future__ import annotations

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
