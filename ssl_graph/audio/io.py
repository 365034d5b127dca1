"""Reading audio as float32 mono at the corpus rate, with errors that name the utterance.

Every failure is an ``AudioError`` naming the utterance, the file and what to do, so one bad
file in a corpus of thousands is found from the message alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..formats.sources import AudioSegment, CommandAudio
from .remote import RemoteFile


class AudioError(ValueError):
    pass


def _cannot_read(utt: str, path: Path, exc: Exception) -> AudioError:
    # soundfile's messages repeat the path and may span lines; keep the reason only
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    reason = reason.replace(f"Error opening {str(path)!r}: ", "").strip() or type(exc).__name__
    if isinstance(path, RemoteFile):
        reason = "no such object" if isinstance(exc, FileNotFoundError) else reason
    elif isinstance(path, CommandAudio):
        pass
    elif not path.exists():
        reason = "no such file"
    elif path.is_dir():
        reason = "it is a directory"
    elif path.is_file() and path.stat().st_size == 0:
        reason = "it is empty, 0 bytes"
    return AudioError(
        f"utterance {utt!r}: cannot read {path} ({reason}); replace it with a readable audio "
        "file or remove it from the corpus"
    )


def audio_info(path: Path | AudioSegment, utt: str) -> tuple[int, int, int]:
    """(sample_rate, channels, frames) without decoding; a segment counts its range only."""
    import soundfile as sf

    file = path.file if isinstance(path, AudioSegment) else path
    try:
        source = file.open() if isinstance(file, (RemoteFile, CommandAudio)) else str(file)
        check_header(source, utt, file)
        info = sf.info(source)
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises RuntimeError/LibsndfileError with no path
        raise _cannot_read(utt, file, exc) from None
    frames = info.frames
    if isinstance(path, AudioSegment):
        first, stop = _checked_range(path, info.samplerate, frames, utt)
        frames = stop - first
    return info.samplerate, info.channels, frames


def check_header(source, utt: str, shown) -> None:
    """Headers libsndfile trusts without checking (NIST SPHERE) are checked against the file;
    ``source`` is a path or an in-memory file. A file that cannot be opened is left to the
    decoder, whose error names it."""
    from .sphere import SphereError, check_sphere

    try:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                check_sphere(fh, os.fstat(fh.fileno()).st_size, source)
        else:
            check_sphere(source, len(source.getbuffer()), str(shown))
            source.seek(0)
    except SphereError as exc:
        raise AudioError(f"utterance {utt!r}: {exc}") from None
    except OSError:
        pass


#: a segment may end this many seconds past its recording (Kaldi end times are rounded)
SEGMENT_END_TOLERANCE = 0.05


def _checked_range(seg: AudioSegment, rate: int, frames: int, utt: str) -> tuple[int, int]:
    dur = frames / rate
    if seg.start >= dur or (seg.end is not None and seg.end > dur + SEGMENT_END_TOLERANCE):
        raise AudioError(
            f"utterance {utt!r}: segment {seg} lies outside its recording ({dur:.3f} s "
            "long); fix the segment's times"
        )
    return seg.sample_range(rate, frames)


def _read(path: Path | AudioSegment, utt: str):
    import soundfile as sf

    if isinstance(path, (RemoteFile, CommandAudio)):  # fetched or run whole, decoded in memory
        data = path.open()
        check_header(data, utt, path)
        return sf.read(data, dtype="float32", always_2d=True)
    file = path.file if isinstance(path, AudioSegment) else path
    if isinstance(file, (RemoteFile, CommandAudio)):  # a segment of one: decode, then cut
        data = file.open()
        check_header(data, utt, file)
        wave, sr = sf.read(data, dtype="float32", always_2d=True)
        first, stop = _checked_range(path, sr, len(wave), utt)
        return wave[first:stop], sr
    check_header(str(file), utt, path)
    if not isinstance(path, AudioSegment):
        return sf.read(str(path), dtype="float32", always_2d=True)
    info = sf.info(str(path.file))
    first, stop = _checked_range(path, info.samplerate, info.frames, utt)
    return sf.read(str(path.file), start=first, stop=stop, dtype="float32", always_2d=True)


def read_audio(path: Path | AudioSegment, utt: str, sample_rate: int = 16000,
               resample: bool = False) -> np.ndarray:
    """Decode one file (or a segment of one) to float32 mono; refuse other rates/channels
    unless asked to resample, and refuse empty or non-finite audio (NaN/Inf would become NaN
    features downstream)."""
    try:
        wave, sr = _read(path, utt)
    except AudioError:
        raise
    except Exception as exc:
        raise _cannot_read(utt, path.file if isinstance(path, AudioSegment) else path, exc) \
            from None
    if wave.shape[1] != 1:
        if not resample:
            raise AudioError(
                f"utterance {utt!r}: {path} has {wave.shape[1]} channels; the corpus must be mono "
                "(set Corpus(resample=True) to downmix)"
            )
        wave = wave.mean(axis=1, keepdims=True)
    wave = wave[:, 0]
    check_samples(wave, utt, path, sr)
    if sr != sample_rate:
        if not resample:
            raise AudioError(
                f"utterance {utt!r}: {path} is {sr} Hz, the corpus expects {sample_rate} Hz "
                "(convert it, or set Corpus(resample=True))"
            )
        wave = resample_poly(wave, sr, sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def check_samples(wave: np.ndarray, utt: str, path: Path, sr: int) -> None:
    """Refuse audio with no samples or with NaN/Inf samples, naming where the first one is."""
    if len(wave) == 0:
        raise AudioError(f"utterance {utt!r}: {path} holds no samples; remove it from the corpus")
    bad = ~np.isfinite(wave)
    if bad.any():
        first = int(np.argmax(bad))
        raise AudioError(
            f"utterance {utt!r}: {path} has {int(bad.sum())} non-finite (NaN/Inf) samples, the "
            f"first at sample {first} ({first / sr:.3f} s); fix or remove the file"
        )


def resample_poly(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly as _rp

    g = gcd(sr_in, sr_out)
    return _rp(wave, sr_out // g, sr_in // g).astype(np.float32)
