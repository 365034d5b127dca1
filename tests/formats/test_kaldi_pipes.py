"""Kaldi ``wav.scp`` pipes as Kaldi users have them: the standard decode commands are read as the
file they decode (the same samples the real tools give), anything else runs only when opted in."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from ssl_graph import Corpus, SpecError
from ssl_graph.audio.io import read_audio
from ssl_graph.audio.scan import scan_corpus
from ssl_graph.formats.kaldi_pipes import Decoded, NotADecoder, decoded_file

from .helpers import assert_same_mfcc, plain_corpus, run_spec

RECOGNISED = {
    "flac -c -d -s a.flac": Decoded("a.flac"),
    "flac -d -c a.flac": Decoded("a.flac"),
    "flac -cds a.flac": Decoded("a.flac"),
    "/usr/bin/flac --decode --stdout --silent 'dir with space/a.flac'":
        Decoded("dir with space/a.flac"),
    "sox a.flac -t wav -": Decoded("a.flac"),
    "ffmpeg -threads 1 -i a.flac -ar 16000 -map_channel 0.0.0  -f wav -threads 1 pipe:1":
        Decoded("a.flac", 16000),
    "ffmpeg -nostdin -hide_banner -loglevel error -i a.mp3 -f wav pipe:1": Decoded("a.mp3"),
    "sph2pipe -f wav a.sph": Decoded("a.sph"),
    "sph2pipe a.sph -f wav -c 1 -p | ffmpeg -threads 1 -i pipe:0 -ar 16000 -f wav -threads 1 "
    "pipe:1": Decoded("a.sph", 16000),
}

REFUSED = [
    "flac -d a.flac",  # to a file, not stdout
    "flac -c -d -s --apply-replaygain-which-is-not-decoding a.flac",
    "sox a.flac -t wav - vol 0.5",  # an effect changes the samples
    "sox a.flac -t wav -r 8000 -",
    "ffmpeg -i a.flac -af volume=0.5 -f wav pipe:1",
    "ffmpeg -i a.flac -f wav -map_channel 0.0.1 pipe:1",
    "ffmpeg -i a.flac -ac 2 -f wav pipe:1",
    "ffmpeg -i pipe:0 -f wav pipe:1",  # no file to read
    "cat a.wav",
    "flac -c -d -s a.flac; rm -rf ~",
    "sph2pipe -f wav a.sph | sox -t wav - -t wav -",
]


@pytest.mark.parametrize("command", sorted(RECOGNISED))
def test_standard_decoders_are_read_as_their_file(command):
    assert decoded_file(command) == RECOGNISED[command]


@pytest.mark.parametrize("command", REFUSED)
def test_other_commands_are_not_decoders(command):
    with pytest.raises(NotADecoder):
        decoded_file(command)


def test_lhotse_writes_commands_we_recognise():
    """lhotse's own wav.scp strings for a FLAC and a SPHERE recording."""
    from lhotse import Recording
    from lhotse.kaldi import make_wavscp_channel_string_map

    for suffix in (".flac", ".sph"):
        rec = Recording.from_dict({
            "id": "r", "sampling_rate": 16000, "num_samples": 16000, "duration": 1.0,
            "channel_ids": [0],
            "sources": [{"type": "file", "channels": [0], "source": f"/data/r{suffix}"}]})
        (line,) = make_wavscp_channel_string_map(rec.sources[0], 16000).values()
        assert line.endswith("|")
        assert decoded_file(line[:-1]) == Decoded(f"/data/r{suffix}", 16000)


def _ffmpeg_on_path(tmp_path) -> str | None:
    """A real ffmpeg: the system's, else the one the imageio-ffmpeg wheel ships."""
    if shutil.which("ffmpeg"):
        return os.environ["PATH"]
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.parametrize("tool", ["flac", "sox", "ffmpeg"])
def test_the_real_tool_gives_the_samples_we_read(tool, tmp_path):
    utt = plain_corpus(tmp_path, 1)[0]
    wav_dir = tmp_path / "plain" / "wav"
    command = {"flac": f"flac -c -d -s {utt}.flac",
               "sox": f"sox {utt}.flac -t wav -",
               # lhotse's form less -map_channel, which ffmpeg 7 dropped (mono: the same audio)
               "ffmpeg": f"ffmpeg -threads 1 -i {utt}.flac -ar 16000 -f wav -threads 1 pipe:1"}[tool]
    env = dict(os.environ)
    if tool == "ffmpeg":
        path = _ffmpeg_on_path(tmp_path)
        if path is None:
            pytest.skip("no ffmpeg binary (system or imageio-ffmpeg)")
        env["PATH"] = path
    elif shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    out = subprocess.run(["/bin/sh", "-c", command], cwd=wav_dir, env=env, capture_output=True,
                         check=True).stdout
    theirs, rate = sf.read(io.BytesIO(out), dtype="float32")
    ours = read_audio(wav_dir / decoded_file(command).file, utt)
    assert rate == 16000
    np.testing.assert_array_equal(theirs, ours)


def test_a_lhotse_kaldi_export_of_the_flac_corpus_reads_like_the_plain_directory(tmp_path):
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet
    from lhotse.kaldi import export_to_kaldi

    utts = plain_corpus(tmp_path, 4)
    recs = RecordingSet.from_recordings(
        Recording.from_file(tmp_path / "plain" / "wav" / f"{u}.flac", recording_id=u)
        for u in utts)
    sups = SupervisionSet.from_segments(
        SupervisionSegment(id=u, recording_id=u, start=0.0, duration=recs[u].duration,
                           speaker=u.split("-")[0]) for u in utts)
    export_to_kaldi(recs, sups, tmp_path / "kaldi")
    assert "pipe:1 |" in (tmp_path / "kaldi" / "wav.scp").read_text()  # FLAC goes through ffmpeg
    project = run_spec(tmp_path, 'corpus = Corpus.kaldi("kaldi")\nmfcc = MFCC(corpus=corpus)\n')
    assert_same_mfcc(project, {u: u for u in utts})


def test_other_commands_run_only_when_the_corpus_opts_in(tmp_path):
    utts = plain_corpus(tmp_path, 2)
    data = tmp_path / "kaldi"
    data.mkdir()
    (data / "wav.scp").write_text(
        f"{utts[0]} plain/wav/{utts[0]}.flac\n{utts[1]} cat plain/wav/{utts[1]}.flac |\n")
    with pytest.raises(SpecError, match=r"wav.scp:2: recording .* is a command ssl_graph does "
                                        r"not run .*commands='run'"):
        scan_corpus(Corpus.kaldi(str(data), root=str(tmp_path)))
    project = run_spec(tmp_path, 'corpus = Corpus.kaldi("kaldi", commands="run")\n'
                                 "mfcc = MFCC(corpus=corpus)\n")
    assert_same_mfcc(project, {u: u for u in utts})
    # the command's identity follows the file it names: an edit reruns that utterance
    before = scan_corpus(project.pipeline.node("corpus")).utts[utts[1]].identity
    os.utime(tmp_path / "plain" / "wav" / f"{utts[1]}.flac", ns=(1, 1))
    assert scan_corpus(project.pipeline.node("corpus")).utts[utts[1]].identity != before
    assert Corpus.kaldi("k").fingerprint != Corpus.kaldi("k", commands="run").fingerprint
    assert "commands" not in Corpus.kaldi("k").semantic()  # old corpora keep their fingerprint


def test_a_resampling_command_must_match_the_corpus_rate(tmp_path):
    data = tmp_path / "kaldi"
    data.mkdir()
    (data / "wav.scp").write_text("r ffmpeg -i r.flac -ar 8000 -f wav pipe:1 |\n")
    with pytest.raises(SpecError, match=r"wav.scp:1: recording 'r': the command resamples to "
                                        r"8000 Hz, the corpus is 16000 Hz"):
        scan_corpus(Corpus.kaldi(str(data)))
