"""NIST SPHERE headers are checked against their file (issue 18): libsndfile trusted them, so a
wrong byte order or header length gave different audio and exit 0. Each broken header is now
refused naming ``file:line`` of the wrong field; well-formed files in either byte order read
the same samples as before."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ssl_graph.api import Project
from ssl_graph.audio.io import AudioError, read_audio

from ..formats.helpers import plain_corpus, timit_tree
from ._inputs import assert_refused, cli

SPEC = "from ssl_graph import MFCC, Corpus\ncorpus = Corpus.timit('TIMIT')\nmfcc = MFCC(corpus=corpus)\n"


@pytest.fixture
def tree(tmp_path):
    utts = plain_corpus(tmp_path, 2)
    timit_tree(tmp_path, utts)
    (tmp_path / "p.py").write_text(SPEC)
    wav = sorted((tmp_path / "TIMIT").rglob("*.WAV"))[0]
    return tmp_path, wav


def _header_line(data: bytes, field: bytes) -> int:
    return data[:1024].split(b"\n").index(next(ln for ln in data[:1024].split(b"\n")
                                               if ln.startswith(field))) + 1


#: (name, edit of the file's bytes, header field named, words of the refusal)
BROKEN = [
    ("byte-order-flipped", lambda b: b.replace(b"sample_byte_format -s2 01",
                                               b"sample_byte_format -s2 10"),
     b"sample_byte_format", "reads the samples as noise"),
    ("byte-format-too-short", lambda b: b.replace(b"sample_byte_format -s2 01",
                                                  b"sample_byte_format -s1 1 "),
     b"sample_byte_format", "does not fit sample_n_bytes 2"),
    ("header-length-short", lambda b: b.replace(b"\n   1024\n", b"\n   1000\n"),
     b"sample_count", "but 85406 follow the 1000-byte header"),
    ("header-length-long", lambda b: b.replace(b"\n   1024\n", b"\n   2048\n"),
     b"sample_count", "follow the 2048-byte header"),
    ("header-length-not-a-number", lambda b: b.replace(b"\n   1024\n", b"\n   1x24\n"),
     b"   1x24", "header length '1x24' is not a number"),
    ("header-length-past-the-end", lambda b: b.replace(b"\n   1024\n", b"\n 999999\n"),
     b" 999999", "past the end of the file"),
    ("sample-count-wrong", lambda b: b.replace(b"sample_count -i ", b"sample_count -i 1"),
     b"sample_count", "bytes of samples, but"),
    ("truncated", lambda b: b[: len(b) // 2], b"sample_count", "cut short"),
    ("shorten-compressed", lambda b: b.replace(b"sample_coding -s3 pcm\n",
                                               b"sample_coding -s3 pcm,embedded-shorten-v2.00\n"),
     b"sample_coding", "decompress the file first"),
]


@pytest.mark.parametrize("edit,field,words", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_sphere_header_is_refused_naming_file_and_line(tree, edit, field, words):
    d, wav = tree
    wav.write_bytes(edit(wav.read_bytes()))
    line = _header_line(wav.read_bytes(), field)
    with pytest.raises(AudioError, match=None) as err:
        Project(d / "p.py", str(d / "store")).run()
    msg = str(err.value)
    assert f"{wav}:{line}: SPHERE" in msg and words in msg, msg
    with pytest.raises(AudioError):  # decoding refuses it too (not only measuring)
        read_audio(wav, "u")


def test_cli_names_the_file_and_line_in_one_line(tree):
    d, wav = tree
    data = wav.read_bytes()
    wav.write_bytes(data.replace(b"sample_byte_format -s2 01", b"sample_byte_format -s2 10"))
    res = cli(d, "run", "p.py", "--no-progress", "-q")
    assert_refused(res, f"{wav}:{_header_line(data, b'sample_byte_format')}:",
                   "sample_byte_format '10'", "set it to '01'")


def test_well_formed_sphere_reads_the_same_in_either_byte_order(tree):
    """The checks pass real files: little- and big-endian SPHERE give the plain audio, and a
    noise recording (as rough in both byte orders) is not mistaken for a swapped one."""
    d, wav = tree
    plain = read_audio(wav, "u")
    wave, sr = sf.read(wav, dtype="int16")
    big = d / "big.wav"
    sf.write(big, wave, sr, format="NIST", subtype="PCM_16", endian="BIG")
    assert b"sample_byte_format -s2 10" in big.read_bytes()[:1024]
    np.testing.assert_array_equal(read_audio(big, "u"), plain)
    noise = d / "noise.wav"
    sf.write(noise, (np.random.default_rng(0).standard_normal(40000) * 3000).astype(np.int16),
             16000, format="NIST", subtype="PCM_16")
    assert len(read_audio(noise, "u")) == 40000
    assert len(Project(d / "p.py", str(d / "store")).run().computed) == 2
