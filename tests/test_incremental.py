"""Plan and run on real audio: what reruns, and why, after each kind of change."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from ssl_graph import SpecError
from ssl_graph.api import Project
from ssl_graph.ops.base import OPS

from .conftest import add_extra_utterance, write_spec


def computed(report) -> dict[str, str]:
    return {n.name: n.utterances for n in report.nodes if n.status == "computed"}


def reasons(project) -> dict[str, list[str]]:
    return {name: st.reasons for name, st in project.plan().items() if st.stale}


def test_first_run_computes_everything_second_run_nothing(project):
    assert reasons(project) == {n: ["new"] for n in ("corpus", "mfcc", "km", "labels",
                                                     "quality.alignments", "quality")}
    report = project.run()
    assert computed(report) == {"corpus": 12, "mfcc": 12, "km": None, "labels": 12,
                                "quality.alignments": None, "quality": None}
    q = project["quality"].metrics
    assert 0.0 < q["pnmi"] < 1.0 and 0.0 < q["phone_purity"] <= 1.0
    again = Project(project.spec_path, project.store.location).run()
    assert computed(again) == {}
    assert all(n.status == "fresh" for n in again.nodes)


def test_changing_k_reruns_only_kmeans_labels_quality(project, workdir):
    project.run()
    mfcc_before = project["mfcc"].features(project["mfcc"].utterances()[0])
    write_spec(workdir, k=30)
    p2 = Project(project.spec_path, project.store.location)
    why = reasons(p2)
    assert set(why) == {"km", "labels", "quality"}
    assert why["km"] == ["k: 20 → 30"]
    assert why["labels"] == ["upstream changed: km (field kmeans)"]
    assert computed(p2.run()) == {"km": None, "labels": 12, "quality": None}
    assert p2["km"].centroids.shape == (30, 39)
    np.testing.assert_array_equal(p2["mfcc"].features(p2["mfcc"].utterances()[0]), mfcc_before)
    # switching back is a cache hit: the k=20 results are still in the store
    write_spec(workdir, k=20)
    p3 = Project(project.spec_path, project.store.location)
    assert reasons(p3) == {}


def test_editing_one_audio_file_reruns_its_features_and_everything_downstream(project, workdir):
    project.run()
    victim = sorted((workdir / "wav").glob("*.flac"))[3]
    other = project["mfcc"].utterances()[0]
    before = project["mfcc"].features(other)
    import soundfile as sf

    wave, sr = sf.read(victim, dtype="float32")
    sf.write(victim, wave[: len(wave) // 2], sr, subtype="PCM_16")  # a real edit: truncate
    p2 = Project(project.spec_path, project.store.location)
    why = reasons(p2)
    assert why["corpus"] == [f"1 utterance changed ({victim.stem})"]
    assert why["mfcc"] == [f"1 utterance changed ({victim.stem})"]
    assert why["km"] == [f"fit data changed: 1 utterance ({victim.stem})"]
    assert why["labels"] and why["quality"]
    # its phone segments now overrun the audio: refused, naming the row, once its length is known
    with pytest.raises(SpecError, match=rf"alignments.tsv:\d+: utterance '{victim.stem}': segment "
                                        r"ends at .* but the audio lasts"):
        p2.run()
    half = len(wave) // 2 / sr
    tsv = workdir / "alignments.tsv"
    rows = [r for r in tsv.read_text().splitlines()
            if not r.startswith(victim.stem + "\t") or float(r.split("\t")[2]) <= half]
    tsv.write_text("\n".join(rows) + "\n")  # re-aligned: the truncated part is gone
    p3 = Project(project.spec_path, project.store.location)
    # the check ran before any feature work (cheapest first); the corpus it measured is kept
    why = reasons(p3)
    assert "corpus" not in why and why["quality.alignments"] == [
        "incomplete (interrupted or failed run)"]
    assert why["mfcc"] == [f"1 utterance changed ({victim.stem})"]
    assert computed(p3.run()) == {"quality.alignments": None, "mfcc": 1, "km": None,
                                  "labels": 12, "quality": None}
    assert p3["mfcc"].record["inputs"] and p3["labels"].utterances() == project["labels"].utterances()
    np.testing.assert_array_equal(p3["mfcc"].features(other), before)
    n = len(p3["mfcc"].features(victim.stem))
    assert abs(n - (len(wave) // 2 - 400) // 160 - 1) <= 1


def test_adding_a_file_computes_only_that_file(project, workdir):
    project.run()
    km_before = project["km"].centroids.copy()
    new = add_extra_utterance(workdir)
    p2 = Project(project.spec_path, project.store.location)
    plan = p2.plan()
    assert plan["corpus"].reasons[0] == f"corpus grew: +1 utterance ({new})"
    assert plan["mfcc"].todo == [new]
    assert not plan["km"].stale and "centroids kept" in plan["km"].notes[0]
    assert plan["labels"].todo == [new]
    assert plan["quality"].stale
    assert plan["quality.alignments"].reasons == ["alignments file changed (alignments.tsv)"]
    assert computed(p2.run()) == {"corpus": 1, "mfcc": 1, "labels": 1,
                                  "quality.alignments": None, "quality": None}
    np.testing.assert_array_equal(p2["km"].centroids, km_before)
    assert len(p2["labels"].labels(new)) == len(p2["mfcc"].features(new))


def test_removing_a_file_drops_it_everywhere(project, workdir):
    project.run()
    gone = sorted((workdir / "wav").glob("*.flac"))[0]
    os.remove(gone)
    p2 = Project(project.spec_path, project.store.location)
    with pytest.raises(SpecError, match=rf"alignments.tsv:2: utterance '{gone.stem}' is not in the "
                                        "corpus; remove the row"):
        p2.plan()
    for tsv in ("alignments.tsv", "transcripts.tsv"):
        path = workdir / tsv
        path.write_text("".join(r for r in path.read_text().splitlines(keepends=True)
                                if not r.startswith(gone.stem + "\t")))
    why = reasons(p2)
    assert why["mfcc"] == [f"1 utterance removed ({gone.stem})"]
    assert why["km"] == ["fit data changed: 1 utterance removed"]
    p2.run()
    assert gone.stem not in p2["mfcc"].utterances() and len(p2["labels"].utterances()) == 11


def test_interrupted_run_resumes_where_it_stopped(project, monkeypatch):
    op_cls = OPS["MFCC"]
    real = op_cls.compute
    calls = {"n": 0}

    def crash_on_second_batch(self, utts, st, ctx):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real(self, utts, st, ctx)

    monkeypatch.setattr(op_cls, "batch_utts", 5)
    monkeypatch.setattr(op_cls, "compute", crash_on_second_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        project.run()
    p2 = Project(project.spec_path, project.store.location)
    plan = p2.plan()
    assert plan["mfcc"].reasons == ["incomplete: 5/12 utterances done (interrupted run)"]
    assert len(plan["mfcc"].todo) == 7
    monkeypatch.setattr(op_cls, "compute", real)
    assert computed(p2.run())["mfcc"] == 7
    assert len(p2["mfcc"].utterances()) == 12


def test_bad_audio_fails_naming_the_utterance_and_keeps_the_cache(project, workdir):
    project.run()
    import soundfile as sf

    wave, _ = sf.read(sorted((workdir / "wav").glob("*.flac"))[0], dtype="float32")
    sf.write(workdir / "wav" / "zz-bad.flac", wave, 8000)
    p2 = Project(project.spec_path, project.store.location)
    from ssl_graph.audio.io import AudioError

    with pytest.raises(AudioError, match=r"utterance 'zz-bad': .* is 8000 Hz, the corpus expects 16000"):
        p2.run()
    # nothing cached was lost: the old results are intact and fresh once the file is gone
    os.remove(workdir / "wav" / "zz-bad.flac")
    p3 = Project(project.spec_path, project.store.location)
    assert reasons(p3) == {}
    assert len(p3["labels"].utterances()) == 12


def test_shared_upstream_is_computed_once(workdir):
    spec = workdir / "two.py"
    spec.write_text(
        "from ssl_graph import *\n"
        "corpus = Corpus(root='wav')\n"
        "a = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=5, max_iter=5))\n"
        "b = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=6, max_iter=5))\n"
    )
    p = Project(spec, str(workdir / "store"))
    report = computed(p.run())
    assert list(report).count("a.kmeans.features") == 1 and "b.kmeans.features" not in report
    assert len(p.pipeline.graph) == 6  # corpus, mfcc, 2 × (kmeans, labels)


def test_copied_checkout_keeps_its_caches(project, workdir, tmp_path_factory):
    project.run()
    moved = tmp_path_factory.mktemp("moved") / "checkout"
    shutil.copytree(workdir, moved, copy_function=shutil.copy2)
    p2 = Project(moved / "pipe.py", str(moved / "store"))
    assert reasons(p2) == {}
