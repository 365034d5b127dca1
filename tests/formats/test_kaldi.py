"""Kaldi data directories: wav.scp (+ segments into long recordings), utt2spk, text."""

from __future__ import annotations

import pytest

from ssl_graph import Corpus, SpecError
from ssl_graph.audio.scan import scan_corpus

from .helpers import (
    assert_same_mfcc,
    demo_texts,
    long_recordings,
    plain_corpus,
    run_spec,
    stored_texts,
)


def test_segments_cut_long_recordings_back_into_the_plain_utterances(tmp_path):
    utts = plain_corpus(tmp_path, 5)
    recordings, segments = long_recordings(tmp_path, utts)
    recos = [f"{reco} long/{reco}.flac" for reco in recordings]
    seg_rows = [f"{u} {reco} {s:.6f} {e:.6f}" for u, reco, s, e in segments]
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("\n".join(recos) + "\n")
    (data / "segments").write_text("\n".join(seg_rows) + "\n")
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    texts = demo_texts()
    (data / "text").write_text("".join(f"{u} {texts[u]}\n" for u in utts))
    project = run_spec(tmp_path, 'corpus = Corpus.kaldi("data/train")\n'
                                 "mfcc = MFCC(corpus=corpus)\n"
                                 "texts = corpus_transcripts(corpus)\n")
    assert_same_mfcc(project, {u: u for u in utts})
    assert stored_texts(project, "texts") == {u: " ".join(texts[u].split()) for u in utts}
    manifest = scan_corpus(project.pipeline.node("corpus"))
    assert {u: manifest.utts[u].speaker for u in utts} == {u: u.split("-")[0] for u in utts}


def test_wav_scp_without_segments_names_utterances_by_recording(tmp_path):
    utts = plain_corpus(tmp_path, 3)
    data = tmp_path / "kaldi"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"k-{u} {tmp_path}/plain/wav/{u}.flac\n" for u in utts))
    project = run_spec(tmp_path, 'corpus = Corpus.kaldi("kaldi")\nmfcc = MFCC(corpus=corpus)\n')
    assert_same_mfcc(project, {f"k-{u}": u for u in utts})


def test_piped_wav_scp_is_refused_naming_the_line(tmp_path):
    plain_corpus(tmp_path, 1)
    data = tmp_path / "kaldi"
    data.mkdir()
    (data / "wav.scp").write_text("a plain/wav/x.flac\nb flac -c -d plain/wav/y.flac | sox - y.wav |\n")
    corpus = Corpus.kaldi(str(data))
    with pytest.raises(SpecError, match=r"wav.scp:2: recording 'b' is a command ssl_graph does "
                                        r"not run.*decode"):
        scan_corpus(corpus)


def test_segment_outside_its_recording_fails_naming_the_utterance(tmp_path):
    utts = plain_corpus(tmp_path, 1)
    data = tmp_path / "kaldi"
    data.mkdir()
    (data / "wav.scp").write_text(f"r {tmp_path}/plain/wav/{utts[0]}.flac\n")
    (data / "segments").write_text("u1 r 0.0 1.0\nu2 r 0.5 99.0\n")
    (tmp_path / "p.py").write_text("from ssl_graph import *\ncorpus = Corpus.kaldi('kaldi')\n")
    from ssl_graph.api import Project

    with pytest.raises(ValueError, match=r"utterance 'u2': segment .* lies outside"):
        Project(tmp_path / "p.py", str(tmp_path / "store")).run()
    with pytest.raises(SpecError, match=r"segments:1: utterance 'u1': recording 'zz'"):
        (data / "segments").write_text("u1 zz 0 1\n")
        scan_corpus(Corpus.kaldi(str(data)))
