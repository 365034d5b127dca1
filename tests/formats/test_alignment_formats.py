"""Praat TextGrid and CTM alignments feed Alignments (and cluster quality) like the TSV does."""

from __future__ import annotations

import pytest

from ssl_graph import SpecError
from ssl_graph.formats.textgrid import read_tiers

from .helpers import demo_segments, plain_corpus, run_spec, stored_segments

QUALITY = '''
km = KMeans(features=plain_mfcc, k=8, fit_fraction=1.0, seed=0, max_iter=20)
labels = Labels(kmeans=km)
tsv = Alignments(corpus=plain, path="plain/alignments.tsv")
other = Alignments(corpus=plain, path="{path}", format="{fmt}"{extra})
q_tsv = ClusterQuality(labels=labels, alignments=tsv)
q_other = ClusterQuality(labels=labels, alignments=other)
'''


def _long_textgrid(segs, xmax):
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0",
           f"xmax = {xmax}", "tiers? <exists> ", "size = 2", "item []:"]
    tiers = [("words", [(0.0, xmax, 'a "quoted" word')]), ("phones", segs)]
    for i, (name, rows) in enumerate(tiers, 1):
        out += [f"    item [{i}]:", '        class = "IntervalTier" ', f'        name = "{name}" ',
                "        xmin = 0 ", f"        xmax = {xmax} ",
                f"        intervals: size = {len(rows)} "]
        for j, (s, e, p) in enumerate(rows, 1):
            text = p.replace('"', '""')
            out += [f"        intervals [{j}]:", f"            xmin = {s} ",
                    f"            xmax = {e} ", f'            text = "{text}" ']
    return "\n".join(out) + "\n"


def _short_textgrid(segs, xmax):
    out = ['File type = "ooTextFile short"', 'Object class = "TextGrid"', "", "0", str(xmax),
           "<exists>", "1", '"IntervalTier"', '"phones"', "0", str(xmax), str(len(segs))]
    for s, e, p in segs:
        out += [str(s), str(e), f'"{p}"']
    return "\n".join(out) + "\n"


def test_textgrids_long_short_and_utf16_give_the_tsv_alignments(tmp_path):
    utts = plain_corpus(tmp_path, 4)
    segs = demo_segments()
    tg = tmp_path / "tg" / "spk"
    tg.mkdir(parents=True)
    for i, u in enumerate(utts):
        xmax = segs[u][-1][1]
        if i % 2:
            (tg / f"{u}.TextGrid").write_text(_short_textgrid(segs[u], xmax))
        else:
            data = _long_textgrid(segs[u], xmax)
            enc = "utf-16" if i == 2 else "utf-8"  # Python's utf-16 writes a BOM
            (tg / f"{u}.TextGrid").write_bytes(data.replace("\n", "\r\n").encode(enc))
    tiers = read_tiers(tg / f"{utts[0]}.TextGrid")
    assert sorted(tiers) == ["phones", "words"] and tiers["words"][0][3] == 'a "quoted" word'
    project = run_spec(tmp_path, "mfcc = plain_mfcc\n" + QUALITY.format(
        path="tg", fmt="textgrid", extra=', tier="phones"'))
    assert stored_segments(project, "other") == stored_segments(project, "tsv")
    assert project["q_other"].metrics == project["q_tsv"].metrics


def test_textgrid_without_the_tier_lists_the_tiers(tmp_path):
    utts = plain_corpus(tmp_path, 1)
    segs = demo_segments()[utts[0]]
    (tmp_path / "tg").mkdir()
    (tmp_path / "tg" / f"{utts[0]}.TextGrid").write_text(_long_textgrid(segs, segs[-1][1]))
    with pytest.raises(SpecError, match=r"no interval tier named 'phone'.*\['phones', 'words'\]"):
        run_spec(tmp_path, 'a = Alignments(corpus=plain, path="tg", format="textgrid", '
                           'tier="phone")\n')


def test_ctm_gives_the_tsv_alignments_and_names_bad_lines(tmp_path):
    utts = plain_corpus(tmp_path, 3)
    segs = demo_segments()
    rows = [";; utt channel begin duration phone"]
    for u in utts:
        rows += [f"{u} 1 {s:.3f} {e - s:.3f} {p} 0.99" for s, e, p in segs[u]]
    (tmp_path / "a.ctm").write_text("\n".join(rows) + "\n")
    project = run_spec(tmp_path, "mfcc = plain_mfcc\n" + QUALITY.format(
        path="a.ctm", fmt="ctm", extra=""))
    got, want = stored_segments(project, "other"), stored_segments(project, "tsv")
    assert got.keys() == want.keys()
    for u in want:
        assert [p for *_, p in got[u]] == [p for *_, p in want[u]]
        assert all(abs(a - b) < 1e-9 for g, w in zip(got[u], want[u]) for a, b in zip(g[:2], w[:2]))
    assert project["q_other"].metrics == project["q_tsv"].metrics
    (tmp_path / "a.ctm").write_text(f"{utts[0]} 1 0.5 x sil\n")
    with pytest.raises(SpecError, match=r"a.ctm:1: CTM begin and duration must be numbers"):
        run_spec(tmp_path, 'a = Alignments(corpus=plain, path="a.ctm", format="ctm")\n')
