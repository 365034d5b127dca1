"""A TSV manifest needs no root when its paths are absolute; layout errors reach the CLI as
one line."""

from __future__ import annotations

import subprocess
import sys

from ssl_graph import Corpus
from ssl_graph.audio.scan import scan_corpus

from ..conftest import ROOT
from .helpers import plain_corpus


def test_manifest_without_root_takes_absolute_paths_and_resolves_relative_ones_beside_it(tmp_path):
    utts = plain_corpus(tmp_path, 2)
    (tmp_path / "m.tsv").write_text(f"utt_id\tpath\na\t{tmp_path}/plain/wav/{utts[0]}.flac\n"
                                    f"b\tplain/wav/{utts[1]}.flac\n")
    manifest = scan_corpus(Corpus(manifest=str(tmp_path / "m.tsv")))
    assert manifest.utts["a"].path == tmp_path / "plain" / "wav" / f"{utts[0]}.flac"
    assert manifest.utts["b"].path == tmp_path / "plain" / "wav" / f"{utts[1]}.flac"


def test_piped_wav_scp_fails_plan_with_one_line(tmp_path):
    (tmp_path / "kaldi").mkdir()
    (tmp_path / "kaldi" / "wav.scp").write_text("r1 sph2pipe -f wav a.sph | sox -t wav - -t wav - vol 2 |\n")
    (tmp_path / "p.py").write_text("from ssl_graph import *\ncorpus = Corpus.kaldi('kaldi')\n"
                                   "mfcc = MFCC(corpus=corpus)\n")
    run = subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(tmp_path / "store"),
                          "plan", str(tmp_path / "p.py")], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "wav.scp:1: recording 'r1' is a command ssl_graph does not run" in run.stderr + run.stdout
