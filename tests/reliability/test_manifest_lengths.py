"""A fairseq manifest's ``num_samples`` is compared with the file it lists (issue 18): it was
never read, so a manifest built from other audio passed silently (fairseq batches by it)."""

from __future__ import annotations

import soundfile as sf

from ssl_graph.api import Project

from ..formats.helpers import plain_corpus
from ._inputs import assert_refused, cli

SPEC = "from ssl_graph import MFCC, Corpus\ncorpus = Corpus.fairseq('train.tsv')\nmfcc = MFCC(corpus=corpus)\n"


def _manifest(d, utts, lengths):
    rows = ["plain/wav"] + [f"{u}.flac\t{n}" for u, n in zip(utts, lengths)]
    (d / "train.tsv").write_text("\n".join(rows) + "\n")
    (d / "p.py").write_text(SPEC)


def test_num_samples_that_differs_from_the_file_is_refused_naming_the_row(tmp_path):
    utts = plain_corpus(tmp_path, 3)
    frames = [sf.info(tmp_path / "plain" / "wav" / f"{u}.flac").frames for u in utts]
    _manifest(tmp_path, utts, [frames[0], frames[1] + 160, frames[2]])
    res = cli(tmp_path, "run", "p.py", "--no-progress", "-q")
    assert_refused(res, f"{tmp_path / 'train.tsv'}:3:", f"utterance {utts[1]!r}",
                   f"num_samples is {frames[1] + 160}", f"holds {frames[1]} samples",
                   "regenerate the manifest")
    # the right count is the whole fix
    _manifest(tmp_path, utts, frames)
    assert sorted(Project(tmp_path / "p.py", str(tmp_path / "store")).run().computed) == \
        ["corpus", "mfcc"]
