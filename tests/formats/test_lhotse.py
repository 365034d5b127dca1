"""Lhotse manifests written by lhotse itself: recordings + supervisions, and cuts."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_graph import Corpus, SpecError
from ssl_graph.audio.io import read_audio
from ssl_graph.audio.scan import scan_corpus

from .helpers import (
    assert_same_mfcc,
    demo_texts,
    long_recordings,
    plain_corpus,
    run_spec,
    stored_texts,
)

lhotse = pytest.importorskip("lhotse")


def _manifests(d, utts):
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recordings, segments = long_recordings(d, utts)
    recs = RecordingSet.from_recordings(
        Recording.from_file(d / "long" / f"{r}.flac", recording_id=r) for r in recordings)
    texts = demo_texts()
    sups = SupervisionSet.from_segments(
        SupervisionSegment(id=u, recording_id=r, start=s, duration=e - s, text=texts[u],
                           speaker=u.split("-")[0]) for u, r, s, e in segments)
    recs.to_file(d / "recordings.jsonl.gz")
    sups.to_file(d / "supervisions.jsonl.gz")
    return recs, sups


def test_recordings_and_supervisions_give_the_plain_corpus(tmp_path):
    utts = plain_corpus(tmp_path, 5)
    _manifests(tmp_path, utts)
    project = run_spec(tmp_path, 'corpus = Corpus.lhotse("recordings.jsonl.gz", '
                                 'supervisions="supervisions.jsonl.gz")\n'
                                 "mfcc = MFCC(corpus=corpus)\n"
                                 "texts = corpus_transcripts(corpus)\n")
    assert_same_mfcc(project, {u: u for u in utts})
    texts = demo_texts()
    assert stored_texts(project, "texts") == {u: texts[u] for u in utts}
    manifest = scan_corpus(project.pipeline.node("corpus"))
    assert {u: m.speaker for u, m in manifest.utts.items()} == {u: u.split("-")[0] for u in utts}


def test_cuts_read_the_samples_lhotse_loads(tmp_path):
    from lhotse import CutSet

    utts = plain_corpus(tmp_path, 4)
    recs, sups = _manifests(tmp_path, utts)
    cuts = CutSet.from_manifests(recordings=recs, supervisions=sups).trim_to_supervisions()
    cuts.to_file(tmp_path / "cuts.jsonl")
    project = run_spec(tmp_path, 'corpus = Corpus.lhotse("cuts.jsonl")\n'
                                 "mfcc = MFCC(corpus=corpus)\n"
                                 "texts = corpus_transcripts(corpus)\n")
    ids = {c.id: c.supervisions[0].id for c in cuts}
    assert_same_mfcc(project, ids)
    manifest = scan_corpus(project.pipeline.node("corpus"))
    for cut in cuts:
        ours = read_audio(manifest.utts[cut.id].path, cut.id)
        np.testing.assert_allclose(ours, cut.load_audio()[0], atol=1e-6)
    texts = demo_texts()
    assert stored_texts(project, "texts") == {c: texts[u] for c, u in ids.items()}


def test_a_command_source_is_refused(tmp_path):
    (tmp_path / "r.jsonl").write_text(
        '{"id": "r1", "sources": [{"type": "command", "channels": [0], "source": "sox x -t wav -"}],'
        ' "sampling_rate": 16000, "num_samples": 10, "duration": 0.000625}\n')
    with pytest.raises(SpecError, match=r"r.jsonl:1: recording 'r1' has a 'command' source"):
        scan_corpus(Corpus.lhotse(str(tmp_path / "r.jsonl")))
