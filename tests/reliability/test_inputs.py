"""The input side of the catalog (issue 8): bad audio, bad utterance ids, bad manifests, unknown
names. Each case breaks one input of a fully cached pipeline and checks that the command fails
with one line naming what and where, and that everything cached before reads back identically.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from ..conftest import DEMO
from ._inputs import (
    MANIFEST_SPEC,
    assert_intact,
    assert_refused,
    cli,
    copy_base,
    demo_wave,
)


def _refused_run(work, base, *needles):
    line = assert_refused(cli(work, "run", "pipe.py", "--no-progress", "-q"), *needles)
    assert_intact(work, base[1])
    return line


def _recovers(work, base, bad):
    """Removing the bad input is the whole fix: the next run reuses every cached node."""
    if bad.is_dir():
        bad.rmdir()
    else:
        bad.unlink()
    res = cli(work, "run", "pipe.py", "--no-progress")
    assert res.returncode == 0, res.stderr
    rows = {ln.split("│")[1].strip(): ln for ln in res.stdout.splitlines() if ln.count("│") > 3}
    for node in ("mfcc", "km", "labels", "quality"):
        assert "fresh" in rows[node], res.stdout
    assert_intact(work, base[1])


# ---- audio files ---------------------------------------------------------------------------
def test_missing_audio_file_in_manifest(work, base):
    (work / "man.py").write_text(MANIFEST_SPEC)
    (work / "m.tsv").write_text("car-0006\twav/car-0006.flac\nzz-gone\twav/zz-gone.flac\n")
    res = cli(work, "run", "man.py", "--no-progress", "-q")
    assert_refused(res, "'zz-gone'", "zz-gone.flac", "not found", "restore it")
    assert_intact(work, base[1])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_audio_file(work, base):
    bad = work / "wav" / "zz-noperm.flac"
    shutil.copy(next((work / "wav").glob("*.flac")), bad)
    bad.chmod(0)
    _refused_run(work, base, "'zz-noperm'", str(bad), "cannot read")


def test_directory_instead_of_audio_file(work, base):
    bad = work / "wav" / "zz-dir.flac"
    bad.mkdir()
    _refused_run(work, base, "'zz-dir'", str(bad), "not a regular file")
    # content-hash identities open the file: same message, not "[Errno 21] Is a directory"
    (work / "hash.py").write_text((work / "pipe.py").read_text().replace(
        'glob="*"', 'glob="*", identity="hash"'))
    assert_refused(cli(work, "plan", "hash.py"), "'zz-dir'", str(bad), "not a regular file")
    _recovers(work, base, bad)


def test_truncated_audio_file(work, base):
    src = sorted((work / "wav").glob("*.flac"))[0].read_bytes()
    bad = work / "wav" / "zz-trunc.flac"
    bad.write_bytes(src[: len(src) // 2])  # the header still claims every frame
    _refused_run(work, base, "'zz-trunc'", str(bad), "cannot read", "remove it")
    _recovers(work, base, bad)


def test_random_bytes_audio_file(work, base):
    bad = work / "wav" / "zz-noise.flac"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    _refused_run(work, base, "'zz-noise'", str(bad), "cannot read", "not recognised")


def test_zero_byte_audio_file(work, base):
    bad = work / "wav" / "zz-empty.flac"
    bad.write_bytes(b"")
    _refused_run(work, base, "'zz-empty'", str(bad), "0 bytes")


def test_zero_sample_audio_file(work, base):
    bad = work / "wav" / "zz-nosamples.wav"
    sf.write(str(bad), np.zeros(0, np.float32), 16000)
    _refused_run(work, base, "'zz-nosamples'", str(bad), "no samples")
    _recovers(work, base, bad)


def test_wrong_sample_rate(work, base):
    wave, _ = demo_wave(work)
    bad = work / "wav" / "zz-8k.wav"
    sf.write(str(bad), wave[::2], 8000)
    _refused_run(work, base, "'zz-8k'", str(bad), "8000 Hz", "resample=True")


def test_wrong_channel_count(work, base):
    wave, sr = demo_wave(work)
    bad = work / "wav" / "zz-stereo.wav"
    sf.write(str(bad), np.stack([wave, wave], axis=1), sr)
    _refused_run(work, base, "'zz-stereo'", str(bad), "2 channels", "mono")


def test_audio_shorter_than_the_mfcc_window(work, base):
    wave, sr = demo_wave(work)
    bad = work / "wav" / "zz-short.wav"
    sf.write(str(bad), wave[:200], sr)
    _refused_run(work, base, "mfcc:", "'zz-short'", "200 samples", "shorter than 400 samples",
                 "remove them")
    _recovers(work, base, bad)


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_samples_are_refused_at_decode(work, base, value):
    """k-means keeps its centroids when the corpus grows: the bad utterance would otherwise have
    been labelled silently from NaN features."""
    wave, sr = demo_wave(work)
    wave[1000] = value
    bad = work / "wav" / "zz-nonfinite.wav"
    sf.write(str(bad), wave, sr, subtype="FLOAT")
    _refused_run(work, base, "'zz-nonfinite'", str(bad), "non-finite", "sample 1000")
    _recovers(work, base, bad)


def _add_extra(work) -> str:
    extra = sorted((DEMO / "extra").glob("*.flac"))[0]
    shutil.copy2(extra, work / "wav" / extra.name)
    return extra.stem


def test_non_finite_op_output_is_never_committed(work, base, monkeypatch):
    """The runner checks every per-utterance op's output before commit (not each op itself)."""
    from ssl_graph.api import Project
    from ssl_graph.ops import mfcc as mfcc_op

    new = _add_extra(work)
    real = mfcc_op._mfcc_file

    def poisoned(job):
        out = real(job)
        if job[1] == new:
            out = out.copy()
            out[3, 0] = np.nan
        return out

    monkeypatch.setattr(mfcc_op, "_mfcc_file", poisoned)
    with pytest.raises(ValueError, match=rf"^mfcc: utterance '{new}': output has 1 non-finite.*wav/{new}\.flac"):
        Project(work / "pipe.py", str(work / "store")).run()
    assert_intact(work, base[1])
    assert new not in Project(work / "pipe.py", str(work / "store"))["mfcc"].utterances()


def test_non_finite_stored_features_refused_by_labels_and_kmeans(work, base, monkeypatch):
    """Features written before the check existed: labelling or fitting them names the utterance."""
    from ssl_graph.api import Project
    from ssl_graph.store import ragged

    victim = base[1]["utts"][2]
    new = sorted((DEMO / "extra").glob("*.flac"))[0].stem
    real = ragged.RaggedReader.get_many

    def get_many(self, utts):
        out = real(self, utts)
        if "mfcc" in self.key:
            out = [o.copy() for o in out]
            for u, o in zip(utts, out):
                if u in (victim, new):
                    o[0, 0] = np.inf
        return out

    from ssl_graph.ops import kmeans as kmeans_op

    real_iter = kmeans_op.iter_ragged

    def iter_ragged(reader, utts=None, block_bytes=None):  # the k-means op streams its sample
        for u, a in real_iter(reader, utts, block_bytes):
            if "mfcc" in reader.key and u in (victim, new):
                a = a.copy()
                a[0, 0] = np.inf
            yield u, a

    monkeypatch.setattr(ragged.RaggedReader, "get_many", get_many)
    monkeypatch.setattr(kmeans_op, "iter_ragged", iter_ragged)
    (work / "pipe.py").write_text((work / "pipe.py").read_text().replace("k=20", "k=19"))
    with pytest.raises(ValueError, match=rf"^km: utterance '{victim}': input mfcc has 1 non-finite.*{victim}\.flac"):
        Project(work / "pipe.py", str(work / "store")).run()
    (work / "pipe.py").write_text((work / "pipe.py").read_text().replace("k=19", "k=20"))
    assert_intact(work, base[1])
    # the corpus grows: centroids are kept, and the new utterance must not get labels silently
    _add_extra(work)
    with pytest.raises(ValueError, match=rf"^labels: utterance '{new}': input mfcc has 1 non-finite"):
        Project(work / "pipe.py", str(work / "store")).run()
    monkeypatch.undo()
    labels = Project(work / "pipe.py", str(work / "store"))["labels"]
    assert sorted(labels.utterances()) == sorted(base[1]["labels"])
    for u, lab in base[1]["labels"].items():
        np.testing.assert_array_equal(labels.labels(u), lab)


def test_non_finite_centroids_are_never_committed(work, base, monkeypatch):
    """Aggregate arrays are checked too: a NaN centroid would label frames silently wrong."""
    from ssl_graph.api import Project
    from ssl_graph.kernels import kmeans

    real = kmeans.fit_kmeans

    def poisoned(*a, **kw):
        res = real(*a, **kw)
        res.centroids[1, 2] = np.nan
        return res

    monkeypatch.setattr(kmeans, "fit_kmeans", poisoned)
    (work / "pipe.py").write_text((work / "pipe.py").read_text().replace("k=20", "k=19"))
    p = Project(work / "pipe.py", str(work / "store"))
    with pytest.raises(ValueError, match=r"^km: centroids holds 1 non-finite values"):
        p.run()
    assert p.store.record(p["km"].key)["status"] != "complete"
    (work / "pipe.py").write_text((work / "pipe.py").read_text().replace("k=19", "k=20"))
    assert_intact(work, base[1])


# ---- utterance ids -------------------------------------------------------------------------
def _manifest(work, *rows):
    (work / "man.py").write_text(MANIFEST_SPEC)
    (work / "m.tsv").write_bytes(b"".join(r + b"\n" for r in rows))
    return cli(work, "run", "man.py", "--no-progress", "-q")


def test_duplicate_utterance_id(work, base):
    res = _manifest(work, b"a\twav/car-0006.flac", b"a\twav/car-0102.flac")
    assert_refused(res, "utterance id 'a' appears twice", "car-0006.flac", "car-0102.flac")
    assert_intact(work, base[1])


def test_parent_path_utterance_id(work, base):
    res = _manifest(work, b"car-0006\twav/car-0006.flac", b"../x\twav/car-0102.flac")
    assert_refused(res, "utterance id '../x'", "car-0102.flac", "'..'", "fix its id")
    assert_intact(work, base[1])


def test_absolute_path_utterance_id(work, base):
    res = _manifest(work, b"/tmp/x\twav/car-0006.flac")
    assert_refused(res, "utterance id '/tmp/x'", "absolute path")
    assert_intact(work, base[1])


@pytest.mark.parametrize("char", ["\t", "\n"], ids=["tab", "newline"])
def test_control_character_in_utterance_id(work, base, char):
    bad = work / "wav" / f"zz{char}x.flac"
    shutil.copy(next((work / "wav").glob("car-*.flac")), bad)
    _refused_run(work, base, f"utterance id {'zz' + char + 'x'!r}", "control character",
                 "rename the file")
    _recovers(work, base, bad)


# ---- manifests ----------------------------------------------------------------------------
def test_manifest_row_with_too_few_columns(work, base):
    res = _manifest(work, b"car-0006\twav/car-0006.flac", b"car-0102 wav/car-0102.flac")
    assert_refused(res, "m.tsv:2", "2 tab-separated columns, got 1")
    assert_intact(work, base[1])


def test_manifest_not_utf8(work, base):
    res = _manifest(work, b"car-0006\twav/car-0006.flac", "caf\u00e9\twav/car-0102.flac".encode("latin-1"))
    assert_refused(res, "m.tsv:2", "not UTF-8", "0xe9", "re-save it as UTF-8")
    assert_intact(work, base[1])
    (work / "m.tsv").write_text((work / "m.tsv").read_bytes().decode("latin-1"), encoding="utf-8")
    assert cli(work, "run", "man.py", "--no-progress", "-q").returncode == 0
    assert cli(work, "query", "utts", "man.py:mfcc").stdout.split() == ["caf\u00e9", "car-0006"]


def test_manifest_is_a_directory(work, base):
    (work / "man.py").write_text(MANIFEST_SPEC)
    (work / "m.tsv").mkdir()
    assert_refused(cli(work, "plan", "man.py"), "manifest 'm.tsv' is a directory", "m.tsv")
    assert_intact(work, base[1])


def test_manifest_without_rows(work, base):
    res = _manifest(work, b"# nothing here")
    assert_refused(res, "m.tsv", "lists no utterances")
    assert_intact(work, base[1])


# ---- label / frame lengths --------------------------------------------------------------------
def test_label_frame_length_mismatch_names_the_utterance():
    from ssl_graph.train.loop import check_label_lengths

    lengths = {"a": 16000, "b": 32000}
    table = {"a": np.zeros(99, np.int16), "b": np.zeros(150, np.int16)}  # b: 1.5 s of 2.0 s
    with pytest.raises(ValueError, match=r"utterance 'b' has 2.00 s of audio but labels lab hold 150"):
        check_label_lengths("it1", "lab", table, 100.0, lengths, 16000)


# ---- names in query / explain / run ------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("query", "features", "pipe.py:nope", "--utt", "x"),
    ("explain", "pipe.py:nope"),
    ("run", "pipe.py", "nope", "--no-progress"),
], ids=["query", "explain", "run"])
def test_unknown_node_name(work, base, args):
    assert_refused(cli(work, *args), "no node named 'nope'", "nodes: corpus, mfcc, km")
    assert_intact(work, base[1])


def test_unknown_utterance_in_query(work, base):
    res = cli(work, "query", "features", "pipe.py:mfcc", "--utt", "zz-nope")
    assert_refused(res, "'mfcc' has no utterance 'zz-nope'", "12 stored")
    assert_intact(work, base[1])


# ---- audio shorter than a trained model's receptive field (LayerFeatures) -----------------------
W2V_SPEC = '''
from ssl_graph import Corpus, LayerFeatures
from ssl_graph.presets import wav2vec2

corpus = Corpus(root="wav")
pre = wav2vec2(corpus, size="tiny", steps=2, batch_seconds=4.0, crop_seconds=1.0)
other = Corpus(root=".", manifest="m.tsv")
feats = LayerFeatures(model=pre, layer=1, corpus=other, device="cpu"{chunk})
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step tiny wav2vec 2.0 (its weights do not matter, only that they exist)."""
    from ssl_graph.api import Project

    from ..conftest import make_corpus

    d = tmp_path_factory.mktemp("w2v")
    utts = make_corpus(d, 4)
    (d / "m.tsv").write_text(f"{utts[0]}\twav/{utts[0]}.flac\n")
    (d / "p.py").write_text(W2V_SPEC.format(chunk=""))
    Project(d / "p.py", str(d / "store")).run()
    return d, utts


def test_audio_shorter_than_the_receptive_field_is_refused_before_the_model_runs(trained, tmp_path):
    from ssl_graph.api import Project

    work = copy_base(trained[0], tmp_path / "w")
    utt = trained[1][0]
    before = Project(work / "p.py", str(work / "store"))["feats"].features(utt)
    wave, sr = demo_wave(work, utt)
    sf.write(str(work / "wav" / "zz-tiny.wav"), wave[:200], sr)
    with open(work / "m.tsv", "a") as fh:
        fh.write("zz-tiny\twav/zz-tiny.wav\n")
    res = cli(work, "run", "p.py", "--no-progress", "-q")
    assert_refused(res, "feats:", "'zz-tiny'", "200 samples", "shorter than 400 samples",
                   "receptive field of pre's encoder", "remove them from corpus other")
    p = Project(work / "p.py", str(work / "store"))
    assert p.plan()["pre"].status == "fresh"  # the model is kept; it never saw that corpus
    np.testing.assert_array_equal(p["feats"].features(utt), before)  # still complete, unchanged


def test_a_chunk_tail_shorter_than_the_receptive_field_joins_the_chunk_before(trained, tmp_path):
    """A ``chunk_seconds`` leaving a 200-sample tail used to fail in torch's conv."""
    from ssl_graph.api import Project
    from ssl_graph.ops.layer_features import chunk_bounds

    assert chunk_bounds(1000, 450, 400) == [(0, 450), (450, 1000)]
    assert chunk_bounds(1000, 800, 400) == [(0, 1000)]
    assert chunk_bounds(300, 1e9, 400) == [(0, 300)]
    work = copy_base(trained[0], tmp_path / "w")
    utt = trained[1][0]
    p = Project(work / "p.py", str(work / "store"))
    whole = p["feats"].features(utt)
    n = sf.info(str(work / "wav" / f"{utt}.flac")).frames
    (work / "p.py").write_text(W2V_SPEC.format(chunk=f", chunk_seconds={(n - 200) / 16000!r}"))
    p = Project(work / "p.py", str(work / "store"))
    assert [n.name for n in p.run().nodes if n.status == "computed"] == ["feats"]
    np.testing.assert_array_equal(p["feats"].features(utt), whole)
