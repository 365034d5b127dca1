"""fairseq wav2vec manifests with .wrd / .ltr transcripts."""

from __future__ import annotations

import pytest
import soundfile as sf

from ssl_graph import Corpus, SpecError
from ssl_graph.audio.scan import scan_corpus
from ssl_graph.formats.fairseq import letters_to_text

from .helpers import assert_same_mfcc, demo_texts, plain_corpus, run_spec, stored_texts


def _ltr(text: str) -> str:
    """fairseq's libri_labels.py: letters space-separated, '|' closes every word."""
    return " ".join(" ".join(w) + " |" for w in text.split())


def _manifest(d, utts, root_line):
    rows = [root_line] + [f"{u}.flac\t{sf.info(d / 'plain' / 'wav' / f'{u}.flac').frames}"
                          for u in utts]
    (d / "train.tsv").write_text("\n".join(rows) + "\n")


def test_manifest_with_ltr_gives_the_plain_corpus_and_its_texts(tmp_path):
    utts = plain_corpus(tmp_path, 4)
    _manifest(tmp_path, utts, str(tmp_path / "plain" / "wav"))
    texts = demo_texts()
    (tmp_path / "train.ltr").write_text("".join(_ltr(texts[u]) + "\n" for u in utts))
    project = run_spec(tmp_path, 'corpus = Corpus.fairseq("train.tsv")\n'
                                 "mfcc = MFCC(corpus=corpus)\n"
                                 "texts = corpus_transcripts(corpus)\n")
    assert_same_mfcc(project, {u: u for u in utts})
    assert project.pipeline.node("texts").format == "fairseq_ltr"
    assert stored_texts(project, "texts") == {u: " ".join(texts[u].split()) for u in utts}


def test_wrd_is_preferred_and_a_relative_root_line_resolves_beside_the_manifest(tmp_path):
    utts = plain_corpus(tmp_path, 3)
    _manifest(tmp_path, utts, "plain/wav")
    texts = demo_texts()
    (tmp_path / "train.wrd").write_text("".join(texts[u] + "\n" for u in utts))
    (tmp_path / "train.ltr").write_text("X |\n" * len(utts))
    project = run_spec(tmp_path, 'corpus = Corpus.fairseq("train.tsv")\n'
                                 "mfcc = MFCC(corpus=corpus)\n"
                                 "texts = corpus_transcripts(corpus)\n")
    assert_same_mfcc(project, {u: u for u in utts})
    assert stored_texts(project, "texts") == {u: texts[u] for u in utts}


def test_label_file_with_a_line_missing_is_refused_at_plan_time(tmp_path):
    utts = plain_corpus(tmp_path, 3)
    _manifest(tmp_path, utts, "plain/wav")
    (tmp_path / "train.wrd").write_text("ONE\nTWO\n")
    (tmp_path / "p.py").write_text("from ssl_graph import *\n"
                                   "from ssl_graph.specs.annotations import corpus_transcripts\n"
                                   "corpus = Corpus.fairseq('train.tsv')\n"
                                   "texts = corpus_transcripts(corpus)\n")
    from ssl_graph.api import Project

    with pytest.raises(SpecError, match=r"train.wrd: 2 lines but manifest .* has 3 entries"):
        Project(tmp_path / "p.py", str(tmp_path / "store")).plan()


def test_bad_manifest_row_names_its_line(tmp_path):
    (tmp_path / "m.tsv").write_text("/data\na.flac\t100\nb.flac 100\n")
    with pytest.raises(SpecError, match=r"m.tsv:3: a fairseq manifest row"):
        scan_corpus(Corpus.fairseq(str(tmp_path / "m.tsv")))


def test_letters_to_text():
    assert letters_to_text("H I | Y O U |") == "HI YOU"
    assert letters_to_text(_ltr("it's a DOG")) == "it's a DOG"
