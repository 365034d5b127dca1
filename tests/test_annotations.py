"""Annotations as versioned inputs: alignment/transcript edits restale exactly their readers,
plan-time validation with file:line errors, header detection, phone maps."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ssl_graph import Alignments, Corpus, FineTune, PhoneMap, SpecError, Transcripts
from ssl_graph.api import Project
from ssl_graph.audio.annotations import parse_alignments
from ssl_graph.specs.annotations import TIMIT_61_TO_39
from ssl_graph.specs.components import wav2vec2_model

from .conftest import make_corpus

SPEC = '''
from ssl_graph import MFCC, ClusterQuality, Corpus, KMeans, Labels
corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="{alignments}")
mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k=10, fit_fraction=1.0, seed=0, max_iter=30)
labels = Labels(kmeans=km)
quality = ClusterQuality(labels=labels)
'''


def _project(d, alignments="alignments.tsv", store="store"):
    (d / "p.py").write_text(SPEC.format(alignments=alignments))
    return Project(d / "p.py", str(d / store))


def stale(project) -> dict[str, list[str]]:
    return {name: st.reasons for name, st in project.plan().items() if st.stale}


def computed(report) -> set[str]:
    return {n.name for n in report.nodes if n.status == "computed"}


@pytest.fixture
def three(tmp_path):
    make_corpus(tmp_path, 3)
    return tmp_path


def _drop_rows(path, keep):
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0]] + [r for r in lines[1:] if keep(r.split("\t"))]) + "\n")


# ---------------------------------------------------------------- the defects, as regressions
def test_editing_alignments_restales_quality_only_and_matches_an_empty_store(three):
    p = _project(three)
    p.run()
    before = p["quality"].metrics["pnmi"]
    _drop_rows(three / "alignments.tsv", lambda c: c[3] != "sil")
    p2 = _project(three)
    assert stale(p2) == {"quality.alignments": ["alignments file changed (alignments.tsv)"],
                         "quality": ["upstream changed: quality.alignments"]}
    assert computed(p2.run()) == {"quality.alignments", "quality"}
    after = p2["quality"].metrics["pnmi"]
    fresh = _project(three, store="empty-store")
    fresh.run()
    assert after == fresh["quality"].metrics["pnmi"] and after != before
    assert "sil" not in p2["quality"].record["phones"]


def test_repointing_annotations_keeps_the_audio_chain(three):
    p = _project(three)
    p.run()
    shutil.copy(three / "alignments.tsv", three / "copy.tsv")
    p2 = _project(three, alignments="copy.tsv")
    why = stale(p2)
    # a new path is a new annotation node; the audio-derived chain keeps its fingerprints
    assert set(why) == {"quality.alignments", "quality"}
    assert computed(p2.run()) == {"quality.alignments", "quality"}
    assert p2["quality"].metrics == p["quality"].metrics


def test_touching_an_annotation_file_restales_nothing_downstream(three):
    p = _project(three)
    p.run()
    path = three / "alignments.tsv"
    path.write_text(path.read_text())  # new mtime, same content
    p2 = _project(three)
    assert stale(p2) == {"quality.alignments": ["corpus changed: rows checked again"]}
    assert computed(p2.run()) == {"quality.alignments"}


def test_transcripts_feed_finetune_not_the_corpus():
    corpus = Corpus(root="wav", transcripts="t.tsv", alignments="a.tsv")
    moved = corpus.with_(transcripts="t2.tsv", alignments="a2.tsv")
    assert moved.fingerprint == corpus.fingerprint
    ft = FineTune(model=wav2vec2_model("tiny"), corpus=corpus, units="char")
    ft2 = FineTune(model=wav2vec2_model("tiny"), corpus=moved, units="char")
    assert ft.transcripts.path == "t.tsv" and ft.alignments is None  # only what units read
    assert ft2.fingerprint != ft.fingerprint
    phone = FineTune(model=wav2vec2_model("tiny"), corpus=corpus, units="phone")
    assert phone.alignments.path == "a.tsv" and phone.transcripts is None
    assert phone.fingerprint == FineTune(model=wav2vec2_model("tiny"), corpus=corpus.with_(
        transcripts="other.tsv"), units="phone").fingerprint


def test_manifest_header_is_detected_whatever_its_first_column(three):
    utts = sorted(p.stem for p in (three / "wav").glob("*.flac"))
    rows = ["utt_id\taudio_path"] + [f"{u}\twav/{u}.flac" for u in utts]
    (three / "m.tsv").write_text("\n".join(rows) + "\n")
    spec = SPEC.replace('root="wav"', 'root=".", manifest="m.tsv"').format(
        alignments="alignments.tsv")
    (three / "p.py").write_text(spec)
    p = Project(three / "p.py", str(three / "store"))
    p.run()
    assert p["mfcc"].utterances() == utts


def test_bad_alignments_header_fails_at_plan_time_before_any_work(three):
    path = three / "alignments.tsv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["utt\tstart\tend"] + lines[1:]) + "\n")  # a 3-column header
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1].rsplit("\t", 1)[0]] + lines[2:]) + "\n")
    p = _project(three)
    with pytest.raises(SpecError, match=r"alignments.tsv:2: alignments needs 4 tab-separated"):
        p.plan()
    assert not (three / "store" / "nodes").exists() or not any((three / "store" / "nodes").iterdir())


# ---------------------------------------------------------------- plan-time validation
def _edit(three, fn):
    path = three / "alignments.tsv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


def _swap(lines, i, j):
    lines[i], lines[j] = lines[j], lines[i]
    return lines


def _set_col(lines, i, col, value):
    cols = lines[i].split("\t")
    cols[col] = value
    lines[i] = "\t".join(cols)
    return lines


@pytest.mark.parametrize("edit, message", [
    (lambda ls: ls + ["nobody-0001\t0.0\t0.1\tsil"], r":\d+: utterance 'nobody-0001' is not in the corpus"),
    (lambda ls: _set_col(ls, 1, 1, "-0.5"), r":2: utterance '.*': segment -0.5–.* negative or empty"),
    (lambda ls: _swap(ls, 2, 3), r":4: utterance '.*': segment at .* comes after one at"),
    (lambda ls: _set_col(ls, 2, 1, "0.1"), r":3: utterance '.*': segment 0.1–.* overlaps the previous"),
    (lambda ls: ls[:1], r"alignments.tsv: alignments file has no segments"),
    (lambda ls: ls[:2] + ["x\ty\tz\tw"] + ls[2:], r":3: alignments: column 2 must be a number"),
])
def test_bad_alignments_are_refused_with_file_line_and_the_cache_survives(three, edit, message):
    p = _project(three)
    p.run()
    feats = {u: p["mfcc"].features(u) for u in p["mfcc"].utterances()}
    pnmi = p["quality"].metrics["pnmi"]
    _edit(three, edit)
    p2 = _project(three)
    with pytest.raises(SpecError, match=message):
        p2.run()
    # nothing cached was lost: the old results read back unchanged
    p3 = _project(three)
    for u, f in feats.items():
        np.testing.assert_array_equal(p3["mfcc"].features(u), f)
    assert p3["quality"].metrics["pnmi"] == pnmi


def test_segments_past_the_audio_end_are_refused_at_plan_time_with_tolerance(three):
    p = _project(three)
    p.run()
    path = three / "alignments.tsv"
    lines = path.read_text().splitlines()
    utt = lines[1].split("\t")[0]
    last = max(i for i, r in enumerate(lines) if r.startswith(utt + "\t"))
    end = float(lines[last].split("\t")[2])
    lines[last] = "\t".join(lines[last].split("\t")[:2] + [f"{end + 0.04:.3f}", "sil"])
    path.write_text("\n".join(lines) + "\n")
    assert "quality.alignments" in stale(_project(three))  # within 0.05 s: accepted
    lines[last] = "\t".join(lines[last].split("\t")[:2] + [f"{end + 0.5:.3f}", "sil"])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError, match=rf"alignments.tsv:{last + 1}: utterance '{utt}': segment "
                                        r"ends at .* but the audio lasts .* \(tolerance 0.05 s\)"):
        _project(three).plan()


def test_transcripts_are_checked_too(three):
    path = three / "transcripts.tsv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[1]]) + "\n")
    spec = (SPEC + "from ssl_graph import Transcripts\ntexts = Transcripts(corpus=corpus, "
            "path='transcripts.tsv')\n").format(alignments="alignments.tsv")
    (three / "p.py").write_text(spec)
    with pytest.raises(SpecError, match=rf"transcripts.tsv:{len(lines) + 1}: utterance .* already "
                                        r"has a transcript \(line 2\)"):
        Project(three / "p.py", str(three / "store")).plan()


# ---------------------------------------------------------------- phone sets
def test_timit_folding_maps_61_to_39_phones():
    folded = {PhoneMap.timit_39().fold(p) for p in TIMIT_61}
    folded.discard(None)  # q is deleted
    assert len(TIMIT_61) == 61 and len(folded) == 39 and "sil" in folded
    m = PhoneMap.timit_39()
    assert m.fold("h#") == m.fold("pau") == m.fold("epi") == m.fold("bcl") == "sil"
    assert m.fold("q") is None and m.fold("ax-h") == "ah" and m.fold("iy") == "iy"
    assert set(TIMIT_61_TO_39) <= set(TIMIT_61)


TIMIT_61 = ["iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "ao", "oy", "ow", "uh", "uw", "ux", "er", "ax", "ix", "axr", "ax-h", "jh", "ch", "b", "d", "g", "p", "t", "k", "dx", "s", "sh", "z", "zh", "f", "th", "v", "dh", "m", "n", "ng", "em", "nx", "en", "eng", "l", "r", "w", "y", "hh", "hv", "el", "bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "q", "pau", "epi", "h#"]


def test_one_labels_cache_scored_against_two_phone_sets(three):
    # relabel the demo's phones with TIMIT names so folding changes the classes
    path = three / "alignments.tsv"
    lines = path.read_text().splitlines()
    rename = {"sil": "h#", "ah": "ax", "ih": "ix", "n": "nx"}
    out = [lines[0]] + ["\t".join(c[:3] + [rename.get(c[3], c[3])])
                        for c in (r.split("\t") for r in lines[1:])]
    path.write_text("\n".join(out) + "\n")
    spec = SPEC.format(alignments="alignments.tsv") + '''
from ssl_graph import Alignments, PhoneMap
a39 = Alignments(corpus=corpus, path="alignments.tsv", phones=PhoneMap.timit_39())
quality39 = ClusterQuality(labels=labels, alignments=a39)
'''
    (three / "p.py").write_text(spec)
    p = Project(three / "p.py", str(three / "store"))
    report = p.run()
    assert [n.name for n in report.nodes if n.name == "labels" and n.status == "computed"]
    q61, q39 = p["quality"].record, p["quality39"].record
    assert {"h#", "ax", "ix", "nx"} <= set(q61["phones"])
    assert not {"h#", "ax", "ix", "nx"} & set(q39["phones"]) and "sil" in q39["phones"]
    m = PhoneMap.timit_39()
    assert q39["phones"] == sorted({m.fold(x) for x in q61["phones"]} - {None})
    assert len(q39["phones"]) < len(q61["phones"])
    assert q39["metrics"]["phone_purity"] >= q61["metrics"]["phone_purity"]


def test_phone_map_silence_is_dropped_from_phone_references(three):
    utts = {p.stem for p in (three / "wav").glob("*.flac")}
    corpus = Corpus(root=str(three / "wav"))
    plain = parse_alignments(Alignments(corpus=corpus, path=str(three / "alignments.tsv")), utts)
    custom = parse_alignments(Alignments(corpus=corpus, path=str(three / "alignments.tsv"),
                                         phones=PhoneMap(silence=("sil", "w"))), utts)
    from ssl_graph.train.vocab import references

    vocab, refs = references("phone", aset=plain)
    vocab2, refs2 = references("phone", aset=custom, silence=frozenset(("sil", "w")))
    assert "w" in vocab.symbols and "w" not in vocab2.symbols and len(vocab2) == len(vocab) - 1
    u = next(iter(refs))
    assert [t for t in refs[u] if t != "w"] == refs2[u]


def test_transcripts_can_come_from_a_manifest_column(three):
    utts = sorted(p.stem for p in (three / "wav").glob("*.flac"))
    texts = dict(r.split("\t", 1) for r in (three / "transcripts.tsv").read_text().splitlines()[1:])
    rows = ["utt\tpath\ttext"] + [f"{u}\twav/{u}.flac\t{texts[u]}" for u in utts]
    (three / "m.tsv").write_text("\n".join(rows) + "\n")
    from ssl_graph.audio.annotations import parse_transcripts

    t = Transcripts(corpus=Corpus(root=str(three), manifest="m.tsv"), path=str(three / "m.tsv"),
                    column="text")
    assert parse_transcripts(t, set(utts)) == {u: texts[u] for u in utts}
