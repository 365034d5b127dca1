"""Pipelines on a local S3 server (moto, 127.0.0.1): audio and store both on the object store,
two runs sharing the store through leases, and the quick demo run twice (the second computes
nothing)."""

from __future__ import annotations

import json
import socket
import textwrap
import time

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.audio.io import read_audio
from ssl_graph.audio.mfcc import mfcc_hubert

from ..conftest import DEMO, ROOT, make_corpus
from .conftest import SLOW_KM, spec_text, start, statuses, wait_for
from .s3 import BUCKET, copy_annotations, s3, upload  # noqa: F401  (fixture)

REMOTE_SPEC = textwrap.dedent(f'''
    from ssl_graph import MFCC, ClusterQuality, Corpus, KMeans, Labels

    corpus = Corpus(root="s3://{BUCKET}/audio", transcripts="transcripts.tsv",
                    alignments="alignments.tsv")
    mfcc = MFCC(corpus=corpus)
    km = KMeans(features=mfcc, k=8, fit_fraction=1.0, seed=0, max_iter=30)
    labels = Labels(kmeans=km)
    quality = ClusterQuality(labels=labels)
''')


def test_audio_and_store_on_s3_run_then_rerun_nothing(s3, tmp_path):  # noqa: F811
    local = tmp_path / "local"
    utts = make_corpus(local, 6)
    upload(s3["fs"], sorted((local / "wav").glob("*.flac")), "audio")
    copy_annotations(local, tmp_path)
    (tmp_path / "pipe.py").write_text(REMOTE_SPEC)
    url = f"s3://{BUCKET}/store"
    report = Project(tmp_path / "pipe.py", url).run(progress=False)
    assert set(report.computed) >= {"corpus", "mfcc", "km", "labels", "quality"}
    p = Project(tmp_path / "pipe.py", url)
    assert sorted(p["mfcc"].utterances()) == utts
    for utt in utts[:2]:  # the same frames as from the local copy of the file
        want = mfcc_hubert(read_audio(local / "wav" / f"{utt}.flac", utt))
        np.testing.assert_array_equal(p["mfcc"].features(utt), want)
    assert 0 < p["quality"].metrics["pnmi"] < 1
    assert Project(tmp_path / "pipe.py", url).run(progress=False).computed == []
    # an overwritten object restales its utterance only
    first = sorted((local / "wav").glob("*.flac"))[0]
    s3["fs"].put_file(str(sorted((DEMO / "extra").glob("*.flac"))[0]),
                      f"{BUCKET}/audio/{first.name}")
    plan = Project(tmp_path / "pipe.py", url).plan()
    assert plan["mfcc"].todo == [first.stem]
    keys = s3["fs"].find(f"{BUCKET}/store/locks")
    assert not [k for k in keys if "/runs/" in k]  # every run's registration was released


@pytest.mark.slow
def test_two_runs_share_an_s3_store(s3, tmp_path):  # noqa: F811
    make_corpus(tmp_path, 12)
    (tmp_path / "a.py").write_text(spec_text(SLOW_KM.format(n=30)))
    (tmp_path / "b.py").write_text(spec_text(SLOW_KM.format(n=30)))
    url = f"s3://{BUCKET}/store"
    env = {"SSL_GRAPH_LEASE_SECONDS": "3"}  # renewed every second while computing
    a = start(tmp_path, "a.py", store=url, env=env)
    try:
        def a_holds_km():  # (polled gently: the server shares this process with the test)
            time.sleep(0.3)
            try:  # (S3 has no folders: locks/ is gone whenever no lease is left in it)
                keys = [k for k in s3["fs"].ls(f"{BUCKET}/store/locks", refresh=True)
                        if "/kmeans-" in k]
                return bool(keys) and json.loads(s3["fs"].cat_file(keys[0])).get("pid") == a.pid
            except FileNotFoundError:  # no lease yet, or the last one released meanwhile
                return False

        wait_for(lambda: a.poll() is not None or a_holds_km(), timeout=300,
                 what="run A to take its k-means lease")
        assert a.poll() is None, a.communicate()
        sb, err_b = statuses(start(tmp_path, "b.py", store=url, env=env))
        sa, _ = statuses(a)
    finally:
        a.kill()
    assert f"waiting for km: computed by pid {a.pid} on {socket.gethostname()}" in err_b, err_b
    assert sa["km"][0] == "computed" and sb["km"][0] == "fresh", (sa, sb)
    assert "lost the lease" not in err_b
    pa, pb = Project(tmp_path / "a.py", url), Project(tmp_path / "b.py", url)
    np.testing.assert_array_equal(pa["km"].centroids, pb["km"].centroids)


@pytest.mark.slow  # ~2 min on a loaded 2-core box
def test_quick_demo_on_s3_twice(s3, tmp_path, monkeypatch):  # noqa: F811
    make_corpus(tmp_path / "data", 16)
    monkeypatch.setenv("SSL_GRAPH_DEMO_QUICK", "1")
    monkeypatch.setenv("SSL_GRAPH_DEMO_DATA", str(tmp_path / "data"))
    url = f"s3://{BUCKET}/demo-store"
    spec = ROOT / "specs" / "demo.py"
    first = Project(spec, url).run(progress=False)
    assert {"quality", "it1", "it2", "ft", "score"} <= set(first.computed)
    again = Project(spec, url).run(progress=False)
    assert again.computed == [], again
    p = Project(spec, url)
    assert 0 < p["quality"].metrics["pnmi"] < 1 and "cer" in p["score"].metrics
