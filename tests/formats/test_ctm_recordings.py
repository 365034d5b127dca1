"""A CTM keyed by recording (times relative to the recording) on a Kaldi corpus with segments:
rows go to the utterance whose segment holds them, shifted to its start."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_graph import SpecError

from .helpers import demo_segments, long_recordings, plain_corpus, run_spec, stored_segments

SPEC = '''corpus = Corpus.kaldi("data/train")
tsv = Alignments(corpus=corpus, path="plain/alignments.tsv")
ctm = Alignments(corpus=corpus, path="reco.ctm", format="ctm"{extra})
'''


def _kaldi(d, n=5):
    """Kaldi dir of long recordings (3 utterances each, 0.25 s pauses) + a recording CTM of
    the demo phones; returns the segments [(utt, reco, start, end)] and the CTM rows."""
    utts = plain_corpus(d, n)
    recordings, segments = long_recordings(d, utts)
    data = d / "data" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("".join(f"{r} long/{r}.flac\n" for r in recordings))
    (data / "segments").write_text("".join(f"{u} {r} {s:.6f} {e:.6f}\n"
                                           for u, r, s, e in segments))
    segs = demo_segments()
    rows = [f"{r} A {s + a:.3f} {b - a:.3f} {p}" for u, r, s, _ in segments for a, b, p in segs[u]]
    return segments, rows


def _write(d, rows):
    (d / "reco.ctm").write_text(";; recording channel begin duration phone\n" +
                                "\n".join(rows) + "\n")


def _assert_same(got, want, atol=1.5e-3):  # the CTM holds times to 1 ms
    assert got.keys() == want.keys()
    for u in want:
        assert [p for *_, p in got[u]] == [p for *_, p in want[u]]
        np.testing.assert_allclose([g[:2] for g in got[u]], [w[:2] for w in want[u]], atol=atol)


def test_recording_ctm_is_rebased_onto_the_segments_and_utterance_rows_still_work(tmp_path):
    segments, rows = _kaldi(tmp_path)
    # the first utterance keyed by itself, times relative to it: both keyings in one file
    first, reco, start, _ = segments[0]
    n_first = len(demo_segments()[first])
    own = [f"{first} 1 {float(r.split()[2]) - start:.3f} {r.split()[3]} {r.split()[4]}"
           for r in rows[:n_first]]
    # the last phone of the second utterance overhangs its segment by 5 ms (under the 10 ms
    # tolerance): clipped to the segment's end
    u2, _, _, e2 = segments[1]
    last = n_first + len(demo_segments()[u2]) - 1
    cols = rows[last].split()
    rows[last] = f"{cols[0]} A {cols[2]} {float(cols[3]) + 0.005:.3f} {cols[4]}"
    _write(tmp_path, own + rows[n_first:])
    project = run_spec(tmp_path, SPEC.format(extra=""))
    got = stored_segments(project, "ctm")
    _assert_same(got, stored_segments(project, "tsv"))
    assert got[u2][-1][1] == pytest.approx(e2 - segments[1][2])
    assert sorted(got) == sorted(u for u, *_ in segments) and len({r for _, r, *_ in segments}) > 1


def test_rows_straddling_a_segment_edge_or_outside_every_segment_name_their_line(tmp_path):
    segments, rows = _kaldi(tmp_path, n=3)
    (u0, reco, _, e0), s1 = segments[0], segments[1][2]
    assert s1 - e0 > 0.2  # the pause between the two utterances belongs to no segment
    _write(tmp_path, rows + [f"{reco} A {e0 - 0.1:.3f} 0.200 x"])
    n = len(rows) + 2
    with pytest.raises(SpecError, match=rf"reco.ctm:{n}: 'x' at .* of recording '{reco}' "
                                        rf"straddles the edge of utterance '{u0}'"):
        run_spec(tmp_path, SPEC.format(extra=""))
    _write(tmp_path, rows + [f"{reco} A {e0 + 0.05:.3f} 0.100 noise"])
    with pytest.raises(SpecError, match=rf"reco.ctm:{n}: 'noise' at .* lies in none of its 3 "
                                        r"segments.*unknown='ignore'"):
        run_spec(tmp_path, SPEC.format(extra=""))
    project = run_spec(tmp_path, SPEC.format(extra=', unknown="ignore"'))
    _assert_same(stored_segments(project, "ctm"), stored_segments(project, "tsv"))


def test_editing_segments_rechecks_the_recording_ctm(tmp_path):
    segments, rows = _kaldi(tmp_path, n=3)
    _write(tmp_path, rows)
    project = run_spec(tmp_path, SPEC.format(extra=""))
    _assert_same(stored_segments(project, "ctm"), stored_segments(project, "tsv"))
    u, reco, s, e = segments[1]
    seg_file = tmp_path / "data" / "train" / "segments"
    lines = seg_file.read_text().splitlines()
    lines[1] = f"{u} {reco} {s + 0.05:.6f} {e:.6f}"  # now starts 50 ms later
    seg_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError, match=rf"reco.ctm:\d+: .* straddles the edge of utterance '{u}'"):
        run_spec(tmp_path, SPEC.format(extra=""))


def test_a_segment_edit_that_keeps_rows_valid_still_moves_the_stored_times(tmp_path):
    """The same CTM re-based onto a moved segment gives the moved times, never the old ones."""
    segments, rows = _kaldi(tmp_path, n=3)
    _write(tmp_path, rows)
    before = stored_segments(run_spec(tmp_path, SPEC.format(extra="")), "ctm")
    u, reco, s, e = segments[1]
    seg_file = tmp_path / "data" / "train" / "segments"
    lines = seg_file.read_text().splitlines()
    lines[1] = f"{u} {reco} {s - 0.1:.6f} {e:.6f}"  # 0.1 s earlier, into the pause before it
    seg_file.write_text("\n".join(lines) + "\n")
    after = stored_segments(run_spec(tmp_path, SPEC.format(extra="")), "ctm")
    # (the first row starts a hair before its segment, so it was clipped to 0 before)
    np.testing.assert_allclose([a[0] for a in after[u][1:]], [b[0] + 0.1 for b in before[u][1:]],
                               atol=1e-6)
    assert after[segments[0][0]] == before[segments[0][0]]


def test_recording_ctm_on_lhotse_supervisions(tmp_path):
    pytest.importorskip("lhotse")
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    segments, rows = _kaldi(tmp_path, n=4)  # the long recordings, and their CTM
    recordings = sorted({r for _, r, *_ in segments})
    RecordingSet.from_recordings(
        Recording.from_file(tmp_path / "long" / f"{r}.flac", recording_id=r) for r in recordings
    ).to_file(tmp_path / "recordings.jsonl.gz")
    SupervisionSet.from_segments(
        SupervisionSegment(id=u, recording_id=r, start=s, duration=e - s)
        for u, r, s, e in segments).to_file(tmp_path / "supervisions.jsonl.gz")
    _write(tmp_path, rows)
    project = run_spec(tmp_path, SPEC.replace(
        'Corpus.kaldi("data/train")', 'Corpus.lhotse("recordings.jsonl.gz", '
        'supervisions="supervisions.jsonl.gz")').format(extra=""))
    _assert_same(stored_segments(project, "ctm"), stored_segments(project, "tsv"))
    assert sorted(stored_segments(project, "ctm")) == sorted(u for u, *_ in segments)
