"""Word alignments (TIMIT .WRD, TSV, CTM): overlaps and gaps allowed, everything else checked,
and the checked words read back through the API, `query segments` and `export segments`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from ssl_graph import SpecError
from ssl_graph.cli import main

from .helpers import demo_words, plain_corpus, run_spec, timit_tree

TIMIT = 'corpus = Corpus.timit("TIMIT"{glob})\nwords = WordAlignments.timit(corpus)\n'


def _want(ids):
    return {k: [(s / 16000, e / 16000, w) for s, e, w in demo_words(u)] for k, u in ids.items()}


def _assert_same(got, want):
    assert got.keys() == want.keys()
    for u in want:
        assert [w for *_, w in got[u]] == [w for *_, w in want[u]]
        np.testing.assert_allclose([g[:2] for g in got[u]], [w[:2] for w in want[u]], atol=1e-9)


def _wrd(tmp_path):
    return sorted((tmp_path / "TIMIT").rglob("*.WRD"))[0]


def test_timit_wrd_keeps_overlapping_words_and_gaps(tmp_path):
    utts = plain_corpus(tmp_path, 4)
    ids = timit_tree(tmp_path, utts, words=True)
    project = run_spec(tmp_path, TIMIT.format(glob=""))
    got, want = project["words"].segments(), _want(ids)
    _assert_same(got, want)
    pairs = [(a, b) for segs in got.values() for a, b in zip(segs, segs[1:])]
    assert any(a[1] > b[0] for a, b in pairs), "the test data must hold overlapping words"
    assert any(a[1] < b[0] for a, b in pairs), "and gaps (pauses between words)"
    first = sorted(ids)[0]
    assert project["words"].segments(first) == got[first]
    with pytest.raises(KeyError, match="no segments for utterance 'nope'"):
        project["words"].segments("nope")


@pytest.mark.parametrize("edit, message", [
    (lambda rows: [rows[1], rows[0], *rows[2:]], r"\.WRD:2: .* comes after one at .* sort"),
    (lambda rows: [rows[0], "9000 9000 empty", *rows[1:]], r"\.WRD:2: .* negative or empty"),
    (lambda rows: [*rows, f"{int(rows[-1].split()[0]) + 1} 900000 late"],
     r"\.WRD:\d+: .* ends at 56\.250 s but the audio"),
    (lambda rows: [*rows[:1], "12 x word"], r"\.WRD:2: TIMIT \.WRD: column 2 must be a number"),
])
def test_bad_wrd_rows_fail_the_plan_naming_the_line_and_the_cache_survives(tmp_path, edit,
                                                                           message):
    utts = plain_corpus(tmp_path, 2)
    ids = timit_tree(tmp_path, utts, words=True)
    run_spec(tmp_path, TIMIT.format(glob=""))
    path = _wrd(tmp_path)
    good = path.read_text()
    path.write_text("\n".join(edit(good.splitlines())) + "\n")
    with pytest.raises(SpecError, match=message):
        run_spec(tmp_path, TIMIT.format(glob=""))
    path.write_text(good)
    project = run_spec(tmp_path, TIMIT.format(glob=""))
    assert project.plan()["words"].stale is False
    _assert_same(project["words"].segments(), _want(ids))


def test_sentences_the_glob_drops_have_their_wrd_and_phn_left_unread(tmp_path):
    utts = plain_corpus(tmp_path, 2)
    ids = timit_tree(tmp_path, utts, words=True)
    folder = _wrd(tmp_path).parent
    for ext in ("WAV", "PHN", "TXT", "WRD"):
        shutil.copy2(folder / f"SX0.{ext}", folder / f"SA1.{ext}")
    (folder / "SA1.WRD").write_text("100 50 broken\n")  # never read: SA is not in the corpus
    project = run_spec(tmp_path, TIMIT.format(glob=', glob="s[ix]*.wav"') +
                       "phones = corpus_alignments(corpus)\n")
    assert sorted(project["words"].segments()) == sorted(ids)
    assert sorted(project["phones"].segments()) == sorted(ids)


def test_cluster_quality_refuses_word_alignments(tmp_path):
    plain_corpus(tmp_path, 1)
    with pytest.raises(Exception, match="word alignments are not phones"):
        run_spec(tmp_path, "km = KMeans(features=plain_mfcc, k=4)\n"
                           "q = ClusterQuality(labels=Labels(kmeans=km), alignments="
                           'WordAlignments(corpus=plain, path="w.tsv"))\n')


def test_query_and_export_segments_round_trip_through_ctm_and_tsv(tmp_path):
    utts = plain_corpus(tmp_path, 3)
    ids = timit_tree(tmp_path, utts, words=True)
    run_spec(tmp_path, TIMIT.format(glob=""))

    def cli(*args):
        res = CliRunner().invoke(main, ["--store", str(tmp_path / "store"), *args])
        assert res.exit_code == 0, res.output
        return res.output

    spec = str(tmp_path / "p.py")
    first = sorted(ids)[0]
    rows = json.loads(cli("query", "segments", f"{spec}:words", "--utt", first, "--json"))
    assert [tuple(r) for r in rows["segments"]] == _want(ids)[first]
    text = cli("query", "segments", f"{spec}:words", "--utt", first)
    assert text.splitlines()[0].split("\t")[2] == demo_words(ids[first])[0][2]
    cli("export", "segments", f"{spec}:words", str(tmp_path / "words.ctm"))
    cli("export", "segments", f"{spec}:words", str(tmp_path / "words.tsv"))
    res = CliRunner().invoke(main, ["--store", str(tmp_path / "store"), "export", "segments",
                                    f"{spec}:words", str(tmp_path / "words.ctm")])
    assert res.exit_code == 1 and "words.ctm exists; pass --force" in res.output
    project = run_spec(tmp_path, TIMIT.format(glob="") +
                       'ctm = WordAlignments(corpus=corpus, path="words.ctm", format="ctm")\n'
                       'tsv = WordAlignments(corpus=corpus, path="words.tsv")\n')
    _assert_same(project["ctm"].segments(), _want(ids))
    _assert_same(project["tsv"].segments(), _want(ids))
    with pytest.raises(SpecError, match=r"words.tsv:\d+: utterance .* overlaps the previous"):
        run_spec(tmp_path, TIMIT.format(glob="") +
                 'phones = Alignments(corpus=corpus, path="words.tsv")\n')


def _short_textgrid(tiers: dict[str, list[tuple[float, float, str]]], xmax: float) -> str:
    out = ['File type = "ooTextFile short"', 'Object class = "TextGrid"', "", "0", str(xmax),
           "<exists>", str(len(tiers))]
    for name, rows in tiers.items():
        out += ['"IntervalTier"', f'"{name}"', "0", str(xmax), str(len(rows))]
        for s, e, text in rows:
            out += [str(s), str(e), f'"{text}"']
    return "\n".join(out) + "\n"


def test_textgrid_word_tier_reads_pauses_as_gaps(tmp_path):
    """An aligner's words tier (MFA) tiles the utterance: pauses are empty intervals, dropped."""
    from .helpers import demo_segments

    utts = plain_corpus(tmp_path, 3)
    (tmp_path / "tg").mkdir()
    want = {}
    for u in utts:
        words = [(s / 16000, e / 16000, w) for s, e, w in demo_words(u)]
        tiled = [(s, min(e, nxt[0]), w) for (s, e, w), nxt in zip(words, words[1:])]
        tiled.append(words[-1])
        xmax = demo_segments()[u][-1][1]
        rows, t = [], 0.0
        for s, e, w in tiled:
            if s > t:
                rows.append((t, s, ""))
            rows.append((s, e, w))
            t = e
        rows.append((t, xmax, ""))
        phones = demo_segments()[u]
        (tmp_path / "tg" / f"{u}.TextGrid").write_text(
            _short_textgrid({"phones": phones, "words": rows}, xmax))
        want[u] = tiled
    project = run_spec(tmp_path, 'words = WordAlignments(corpus=plain, path="tg", '
                                 'format="textgrid")\n')
    _assert_same(project["words"].segments(), want)  # no "" pauses among them
    assert all(rows[0][2] == "" for rows in [_tier_rows(tmp_path / "tg", u) for u in utts])


def _tier_rows(folder, utt):
    from ssl_graph.formats.textgrid import read_tiers

    return [r[1:] for r in read_tiers(folder / f"{utt}.TextGrid")["words"]]
