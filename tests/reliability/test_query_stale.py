"""``query`` never serves values of inputs that changed since they were stored (issue 18): it
served the old features of an audio file that no longer decodes, exit 0. It now refuses what
``plan`` calls stale, naming the utterance and what changed; the rest is served as before."""

from __future__ import annotations

import shutil

import numpy as np

from ._inputs import assert_refused, cli


def test_query_refuses_an_utterance_whose_audio_no_longer_decodes(work, base):
    victim, other = base[1]["utts"][0], base[1]["utts"][1]
    audio = work / "wav" / f"{victim}.flac"
    kept = work / "kept.flac"
    shutil.copy2(audio, kept)
    audio.write_bytes(b"not audio any more" * 100)
    for args, why in ((["features", "pipe.py:mfcc"], "1 utterance changed"),
                      (["labels", "pipe.py:labels"], "upstream changed: mfcc, km"),
                      (["labels", "pipe.py:km"], "1 utterance changed")):  # km labels on the fly
        res = cli(work, "query", *args, "--utt", victim)
        assert_refused(res, f"utterance {victim!r}", "is stale", why, f"its audio: {audio}",
                       "ssl-graph run")
    assert_refused(cli(work, "query", "features", "pipe.py:mfcc", "--all", "--out", "dump"),
                   f"utterance {victim!r}", "is stale")
    assert not (work / "dump").exists() or not any((work / "dump").iterdir())
    # the other utterances are current: served as stored
    res = cli(work, "query", "features", "pipe.py:mfcc", "--utt", other, "--out", "o.npy")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(np.load(work / "o.npy"), base[1]["mfcc"][other])
    # the stored value is kept: putting the file back (same content and mtime) serves it again
    shutil.copy2(kept, audio)
    res = cli(work, "query", "features", "pipe.py:mfcc", "--utt", victim, "--out", "v.npy")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(np.load(work / "v.npy"), base[1]["mfcc"][victim])


def test_query_refuses_segments_whose_file_changed(work):
    (work / "ali.py").write_text((work / "pipe.py").read_text() +
                                 "from ssl_graph import Alignments\n"
                                 "ali = Alignments(corpus=corpus, path='alignments.tsv')\n")
    assert cli(work, "run", "ali.py", "ali", "--no-progress", "-q").returncode == 0
    utt = (work / "alignments.tsv").read_text().splitlines()[1].split("\t")[0]
    assert cli(work, "query", "segments", "ali.py:ali", "--utt", utt).returncode == 0
    tsv = work / "alignments.tsv"
    lines = tsv.read_text().splitlines()
    lines[1] = "\t".join(lines[1].split("\t")[:3] + ["zz"])
    tsv.write_text("\n".join(lines) + "\n")
    assert_refused(cli(work, "query", "segments", "ali.py:ali", "--utt", utt),
                   "'ali' is stale", "alignments file changed", "ssl-graph run")
