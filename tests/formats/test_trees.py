"""LibriSpeech and TIMIT trees: ids, speakers and annotations from the layout itself."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from ssl_graph import Corpus, SpecError
from ssl_graph.audio.scan import scan_corpus

from .helpers import (
    assert_same_mfcc,
    demo_segments,
    demo_texts,
    plain_corpus,
    run_spec,
    stored_segments,
    stored_texts,
    timit_tree,
)


def _librispeech(d, utts):
    """speaker = demo voice, one chapter per voice; returns LibriSpeech id → plain id."""
    voices = sorted({u.split("-")[0] for u in utts})
    texts, ids = demo_texts(), {}
    for u in utts:
        spk, chap = 100 + voices.index(u.split("-")[0]), 7
        folder = d / "LibriSpeech" / "dev-clean" / str(spk) / str(chap)
        folder.mkdir(parents=True, exist_ok=True)
        lid = f"{spk}-{chap}-{sum(1 for k in ids if k.startswith(f'{spk}-')):04d}"
        shutil.copy2(d / "plain" / "wav" / f"{u}.flac", folder / f"{lid}.flac")
        with open(folder / f"{spk}-{chap}.trans.txt", "a") as fh:
            fh.write(f"{lid} {texts[u].upper()}\n")
        ids[lid] = u
    return ids


def test_librispeech_tree_gives_the_plain_corpus_speakers_and_texts(tmp_path):
    utts = plain_corpus(tmp_path, 6)
    ids = _librispeech(tmp_path, utts)
    project = run_spec(tmp_path, 'corpus = Corpus.librispeech("LibriSpeech/dev-clean")\n'
                                 "mfcc = MFCC(corpus=corpus)\n"
                                 "texts = corpus_transcripts(corpus)\n")
    assert_same_mfcc(project, ids)
    texts = demo_texts()
    assert stored_texts(project, "texts") == {k: texts[u].upper() for k, u in ids.items()}
    manifest = scan_corpus(project.pipeline.node("corpus"))
    assert {u: m.speaker for u, m in manifest.utts.items()} == {k: k.split("-")[0] for k in ids}


def test_librispeech_file_in_the_wrong_chapter_is_refused(tmp_path):
    utts = plain_corpus(tmp_path, 2)
    _librispeech(tmp_path, utts)
    src = next((tmp_path / "LibriSpeech").rglob("*.flac"))
    (tmp_path / "LibriSpeech" / "dev-clean" / "999" / "1").mkdir(parents=True)
    shutil.copy2(src, tmp_path / "LibriSpeech" / "dev-clean" / "999" / "1" / src.name)
    with pytest.raises(SpecError, match=r"999-1-NNNN"):
        scan_corpus(Corpus.librispeech(str(tmp_path / "LibriSpeech")))


def test_timit_tree_of_nist_sphere_gives_the_plain_corpus_and_its_annotations(tmp_path):
    utts = plain_corpus(tmp_path, 4)
    ids = timit_tree(tmp_path, utts)
    assert sf.info(next((tmp_path / "TIMIT").rglob("*.WAV"))).format == "NIST"
    project = run_spec(tmp_path, 'corpus = Corpus.timit("TIMIT")\n'
                                 "mfcc = MFCC(corpus=corpus)\n"
                                 "texts = corpus_transcripts(corpus)\n"
                                 "phones = corpus_alignments(corpus)\n")
    assert_same_mfcc(project, ids)
    texts, segs = demo_texts(), demo_segments()
    assert stored_texts(project, "texts") == {k: texts[u] for k, u in ids.items()}
    got = stored_segments(project, "phones")
    for k, u in ids.items():
        want = [(s, e, p) for s, e, p in segs[u] if p]
        assert [p for _, _, p in got[k]] == [p for _, _, p in want]
        np.testing.assert_allclose([(s, e) for s, e, _ in got[k]], [(s, e) for s, e, _ in want])
    manifest = scan_corpus(project.pipeline.node("corpus"))
    assert {m.speaker for m in manifest.utts.values()} == {k.split("-")[0] for k in ids}


def test_timit_glob_filters_sentence_names_in_any_case(tmp_path):
    utts = plain_corpus(tmp_path, 3)
    ids = timit_tree(tmp_path, utts)
    first = next(iter(ids))
    spk = first.split("-")[0].upper()
    folder = tmp_path / "TIMIT" / "TRAIN" / "DR1" / spk
    for ext in ("WAV", "PHN", "TXT"):
        shutil.copy2(folder / f"SX0.{ext}", folder / f"sa1.{ext.lower()}")
    everything = scan_corpus(Corpus.timit(str(tmp_path / "TIMIT")))
    assert f"{spk.lower()}-sa1" in everything.utts
    no_sa = scan_corpus(Corpus.timit(str(tmp_path / "TIMIT"), glob="s[ix]*.wav"))
    assert sorted(no_sa.utts) == sorted(ids)
