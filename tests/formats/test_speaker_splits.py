"""Speakers from layouts or a TSV; speaker-disjoint test/dev splits that stay put as data grows;
fingerprints of corpora and splits written before these fields are unchanged."""

from __future__ import annotations

import pytest

from ssl_graph import Corpus, FineTune, Split
from ssl_graph.audio.scan import scan_corpus
from ssl_graph.specs.components import wav2vec2_model
from ssl_graph.train.split import dev_utterances, held_apart, labeled_utterances, split_of

from .helpers import plain_corpus


def _speakers(n_speakers=40, per=6):
    return {f"s{s}-u{i}": f"s{s}" for s in range(n_speakers) for i in range(per)}


def test_speaker_split_keeps_each_speaker_in_one_set_and_sets_disjoint():
    speakers = _speakers()
    split = Split(by="speaker", test_fraction=0.2, dev_fraction=0.2, labeled_minutes=None)
    durations = dict.fromkeys(speakers, 3.0)
    test = held_apart(speakers, split, speakers)
    dev = dev_utterances(speakers, split, speakers)
    train = labeled_utterances(durations, split, speakers)
    sets = [{speakers[u] for u in part} for part in (test, dev, train)]
    assert all(sets), "40 speakers at 20/20 % give non-empty sets"
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sorted(test + dev + train) == sorted(speakers)
    # by utterance, the same speakers straddle test and train
    by_utt = Split(test_fraction=0.2, labeled_minutes=None)
    straddle = {speakers[u] for u in held_apart(speakers, by_utt)} & \
        {speakers[u] for u in labeled_utterances(durations, by_utt)}
    assert straddle


def test_splits_stay_put_under_growth_and_dev_never_moves_test():
    speakers = _speakers(30)
    split = Split(by="speaker", test_fraction=0.25, dev_fraction=0.15)
    before = {u: split_of(u, split, speakers) for u in speakers}
    grown = {**speakers, **_speakers(60, 7), **{f"s3-new{i}": "s3" for i in range(4)}}
    after = {u: split_of(u, split, grown) for u in grown}
    assert all(after[u] == before[u] for u in speakers)
    assert {after[f"s3-new{i}"] for i in range(4)} == {before["s3-u0"]}
    no_dev = split.with_(dev_fraction=0.0)
    assert held_apart(grown, no_dev, grown) == held_apart(grown, split, grown)
    # an utterance with no known speaker is its own speaker
    assert split_of("lonely", split, {"lonely": None}) == split_of("lonely", split, {"lonely": "lonely"})


def test_fractions_must_leave_training_data():
    with pytest.raises(ValueError, match="test_fraction \\+ dev_fraction"):
        Split(test_fraction=0.6, dev_fraction=0.4)


def test_existing_fingerprints_do_not_move():
    corpus = Corpus(root="wav", transcripts="t.tsv")
    assert set(corpus.semantic()) == {"kind", "root", "glob", "manifest", "sample_rate",
                                      "resample", "identity"}
    assert set(Split().semantic()) == {"kind", "test_fraction", "labeled_minutes", "seed"}
    ft = FineTune(model=wav2vec2_model("tiny"), corpus=corpus)
    assert ft.with_(split=Split(by="speaker")).fingerprint != ft.fingerprint
    assert ft.with_(split=Split(dev_fraction=0.1)).fingerprint != ft.fingerprint
    assert Corpus.kaldi("data/x").fingerprint != Corpus(root="wav").fingerprint


def test_speakers_tsv_names_speakers_with_its_header_detected(tmp_path):
    utts = plain_corpus(tmp_path, 3)
    (tmp_path / "spk.tsv").write_text("utt_id\tspeaker\n" + "".join(
        f"{u}\tvoice-{u.split('-')[0]}\n" for u in utts[:2]))
    manifest = scan_corpus(Corpus(root=str(tmp_path / "plain" / "wav"),
                                  speakers=str(tmp_path / "spk.tsv")))
    assert [manifest.utts[u].speaker for u in utts] == \
        [f"voice-{utts[0].split('-')[0]}", f"voice-{utts[1].split('-')[0]}", None]


def test_speakers_from_a_wider_tsv_by_column_and_a_path_column_refused(tmp_path):
    from ssl_graph.specs.base import SpecError

    utts = plain_corpus(tmp_path, 4)
    wav = tmp_path / "plain" / "wav"
    rows = "".join(f"{u}\t{wav / u}.flac\tvoice-{i % 2}\n" for i, u in enumerate(utts))
    (tmp_path / "m.tsv").write_text("utt_id\tpath\tspeaker\n" + rows)
    (tmp_path / "bare.tsv").write_text(rows)

    def speakers(path, **kw):
        manifest = scan_corpus(Corpus(root=str(wav), speakers=str(tmp_path / path), **kw))
        return [manifest.utts[u].speaker for u in utts]

    expected = [f"voice-{i % 2}" for i in range(4)]
    assert speakers("m.tsv", speakers_column="speaker") == expected
    assert speakers("bare.tsv", speakers_column=2) == expected
    # the manifest itself as speakers= would have made every utterance its own "speaker"
    with pytest.raises(SpecError, match="m.tsv: speakers column 1 holds file paths"):
        speakers("m.tsv")
    with pytest.raises(SpecError, match="speakers_column='voice' names no column"):
        speakers("m.tsv", speakers_column="voice")
    with pytest.raises(SpecError, match="bare.tsv:1: speakers: no column 5"):
        speakers("bare.tsv", speakers_column=5)
    # which column names the speakers is annotation, like speakers= itself: no fingerprint moves
    assert Corpus(root="w", speakers="m.tsv", speakers_column=2).fingerprint == \
        Corpus(root="w").fingerprint


def test_finetune_on_a_librispeech_tree_holds_test_speakers_apart(tmp_path):
    """End to end: the layout's speakers and transcripts reach FineTune's split and vocabulary."""
    from ssl_graph.api import Project
    from ssl_graph.store.backend import read_json

    from .test_trees import _librispeech

    utts = plain_corpus(tmp_path, 10)
    ids = _librispeech(tmp_path, utts)
    (tmp_path / "p.py").write_text(
        "from ssl_graph import Corpus, Split\n"
        "from ssl_graph.presets import finetune_from_scratch\n"
        "from ssl_graph.specs.components import wav2vec2_model\n"
        "corpus = Corpus.librispeech('LibriSpeech/dev-clean')\n"
        "ft = finetune_from_scratch(wav2vec2_model('tiny'), corpus, size='tiny', steps=2,\n"
        "    labeled_minutes=None, batch_seconds=8.0, checkpoint_every=2,\n"
        "    split=Split(by='speaker', test_fraction=0.4, labeled_minutes=None, seed=3))\n")
    project = Project(tmp_path / "p.py", str(tmp_path / "store"))
    project.run(["ft"])
    split = read_json(project.store.backend, f"{project['ft'].key}/split.json")
    speaker = {k: k.split("-")[0] for k in ids}
    test, labeled = {speaker[u] for u in split["test"]}, {speaker[u] for u in split["labeled"]}
    assert test and labeled and not test & labeled
    assert split["test"] == held_apart(ids, project.pipeline.node("ft").split, speaker)
    assert project.pipeline.node("ft").transcripts.format == "librispeech"
    assert project["ft"].record["n_labeled"] == len(split["labeled"]) > 0


def test_editing_speakers_restales_only_the_speaker_split(tmp_path):
    from ssl_graph.api import Project

    utts = plain_corpus(tmp_path, 8)
    spk = tmp_path / "spk.tsv"
    spk.write_text("".join(f"{u}\t{u.split('-')[0]}\n" for u in utts))
    (tmp_path / "p.py").write_text(
        "from ssl_graph import Corpus, MFCC, Split\n"
        "from ssl_graph.presets import finetune_from_scratch\n"
        "from ssl_graph.specs.components import wav2vec2_model\n"
        "corpus = Corpus(root='plain/wav', transcripts='plain/transcripts.tsv', "
        "speakers='spk.tsv')\n"
        "mfcc = MFCC(corpus=corpus)\n"
        "kw = dict(size='tiny', steps=1, labeled_minutes=None, batch_seconds=8.0)\n"
        "by_spk = finetune_from_scratch(wav2vec2_model('tiny'), corpus, **kw,\n"
        "    split=Split(by='speaker', test_fraction=0.3, labeled_minutes=None))\n"
        "by_utt = by_spk.with_(split=Split(test_fraction=0.3, labeled_minutes=None))\n")
    project = Project(tmp_path / "p.py", str(tmp_path / "store"))
    project.run()
    assert not any(st.stale for st in project.plan().values())
    spk.write_text("".join(f"{u}\tone-voice\n" for u in utts))
    stale = {name: st.reasons for name, st in project.plan().items() if st.stale}
    assert stale == {"by_spk": ["speakers changed (split by speaker)"]}
