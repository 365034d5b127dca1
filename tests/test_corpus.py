"""Corpus inputs: TSV manifests, resampling on request, content-hash identity."""

from __future__ import annotations

import os
import time

import numpy as np
import soundfile as sf

from ssl_graph.api import Project

from .conftest import make_corpus

SPEC = '''
from ssl_graph import MFCC, Corpus
corpus = Corpus({corpus})
mfcc = MFCC(corpus=corpus)
'''


def _project(d, corpus_args):
    (d / "p.py").write_text(SPEC.format(corpus=corpus_args))
    return Project(d / "p.py", str(d / "store"))


def test_manifest_tsv_names_utterances(tmp_path):
    utts = make_corpus(tmp_path, 4)
    lines = ["utt\tpath"] + [f"spk-{i}\twav/{u}.flac" for i, u in enumerate(utts)]
    (tmp_path / "m.tsv").write_text("\n".join(lines) + "\n")
    p = _project(tmp_path, "root='.', manifest='m.tsv'")
    p.run()
    assert p["mfcc"].utterances() == [f"spk-{i}" for i in range(4)]
    from ssl_graph.audio.io import read_audio
    from ssl_graph.audio.mfcc import mfcc_hubert

    want = mfcc_hubert(read_audio(tmp_path / "wav" / f"{utts[0]}.flac", utts[0]))
    np.testing.assert_array_equal(p["mfcc"].features("spk-0"), want)


def test_other_rates_are_resampled_only_on_request(tmp_path):
    make_corpus(tmp_path, 2)
    src = sorted((tmp_path / "wav").glob("*.flac"))[0]
    wave, sr = sf.read(src, dtype="float32")
    sf.write(tmp_path / "wav" / "x-22k.flac", np.interp(
        np.arange(int(len(wave) * 22050 / sr)) * sr / 22050, np.arange(len(wave)), wave), 22050)
    refused = _project(tmp_path, "root='wav'")
    try:
        refused.run()
        raise AssertionError("a 22.05 kHz file must be refused")
    except ValueError as exc:
        assert "x-22k" in str(exc) and "resample=True" in str(exc)
    ok = _project(tmp_path, "root='wav', resample=True")
    ok.run()
    a = ok["mfcc"].features("x-22k")
    b = ok["mfcc"].features(src.stem)
    assert abs(len(a) - len(b)) <= 1  # same duration once resampled to 16 kHz


def test_hash_identity_ignores_touch_but_stat_identity_does_not(tmp_path):
    make_corpus(tmp_path, 3)
    f = sorted((tmp_path / "wav").glob("*.flac"))[1]
    for identity, expect in (("hash", set()), ("stat", {"corpus", "mfcc"})):
        p = _project(tmp_path, f"root='wav', identity={identity!r}")
        p.run()
        later = time.time() + 5
        os.utime(f, (later, later))  # same bytes, new mtime
        stale = {n for n, st in _project(tmp_path, f"root='wav', identity={identity!r}").plan().items() if st.stale}
        assert stale == expect, identity
