"""Reading audio as float32 mono at the corpus rate, with errors that name the utterance."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class AudioError(ValueError):
    pass


def audio_info(path: Path, utt: str) -> tuple[int, int, int]:
    """(sample_rate, channels, frames) without decoding."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError/LibsndfileError with no path
        raise AudioError(f"utterance {utt!r}: cannot read {path}: {exc}") from None
    return info.samplerate, info.channels, info.frames


def read_audio(path: Path, utt: str, sample_rate: int = 16000, resample: bool = False) -> np.ndarray:
    """Decode one file to float32 mono; refuse other rates/channels unless asked to resample."""
    import soundfile as sf

    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"utterance {utt!r}: cannot read {path}: {exc}") from None
    if wave.shape[1] != 1:
        if not resample:
            raise AudioError(
                f"utterance {utt!r}: {path} has {wave.shape[1]} channels; the corpus must be mono "
                "(set Corpus(resample=True) to downmix)"
            )
        wave = wave.mean(axis=1, keepdims=True)
    wave = wave[:, 0]
    if sr != sample_rate:
        if not resample:
            raise AudioError(
                f"utterance {utt!r}: {path} is {sr} Hz, the corpus expects {sample_rate} Hz "
                "(convert it, or set Corpus(resample=True))"
            )
        wave = resample_poly(wave, sr, sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def resample_poly(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly as _rp

    g = gcd(sr_in, sr_out)
    return _rp(wave, sr_out // g, sr_in // g).astype(np.float32)
