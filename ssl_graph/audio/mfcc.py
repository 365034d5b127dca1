"""Kaldi-compatible MFCC + deltas, as used for HuBERT's first-iteration targets.

HuBERT (fairseq ``examples/hubert/simple_kmeans/dump_mfcc_feature.py``) calls
``torchaudio.compliance.kaldi.mfcc(wave, use_energy=False)`` and appends first and
second order deltas.  We re-implement that in vectorised numpy so the audio stage
needs neither torch nor torchaudio, and so the features are reproducible
bit-for-bit on one machine.

Deliberate deviation: Kaldi's default ``dither=1.0`` adds random noise to every
frame; we use ``dither=0`` so that a re-run of the pipeline yields identical
features (and therefore identical k-means targets and cache keys).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16_000
FRAME_LENGTH = 400  # 25 ms
FRAME_SHIFT = 160  # 10 ms
N_FFT = 512  # frame length rounded up to a power of two
N_MELS = 23
N_CEPS = 13
LOW_FREQ = 20.0
PREEMPH = 0.97
LIFTER = 22.0
DELTA_WIN = 2  # torchaudio compute_deltas(win_length=5)
N_FEATURES = 3 * N_CEPS

_FLOAT_EPS = float(np.finfo(np.float32).eps)  # Kaldi floors mel energies at FLT_EPSILON


def _mel(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


@lru_cache(maxsize=8)
def povey_window(length: int = FRAME_LENGTH) -> np.ndarray:
    """Kaldi's default analysis window: a Hann window raised to 0.85."""
    n = np.arange(length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / (length - 1))) ** 0.85


def fft_size(win: int) -> int:
    """The frame length rounded up to a power of two (Kaldi ``round_to_power_of_two``)."""
    return 1 << (int(win) - 1).bit_length()


@lru_cache(maxsize=8)
def mel_banks(n_mels: int = N_MELS, n_fft: int = N_FFT, low_freq: float = LOW_FREQ,
              sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_fft//2 + 1, n_mels) triangular filters, triangles linear in the mel domain, from
    ``low_freq`` to Nyquist (the MFCC's 23 and the log-mel front end's 80 filters alike).

    Like Kaldi, only bins below Nyquist carry weight (the Nyquist row stays 0) and the
    triangle edges are exclusive.
    """
    n_bins = n_fft // 2
    mel_lo, mel_hi = _mel(low_freq), _mel(sample_rate / 2.0)
    delta = (mel_hi - mel_lo) / (n_mels + 1)
    left = mel_lo + np.arange(n_mels) * delta
    center, right = left + delta, left + 2.0 * delta
    mel = _mel(np.arange(n_bins) * (sample_rate / n_fft))[:, None]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    w = np.where((mel > left) & (mel < right), np.where(mel <= center, up, down), 0.0)
    return np.vstack([w, np.zeros((1, n_mels))])


@lru_cache(maxsize=1)
def _dct_lifter() -> np.ndarray:
    """(N_MELS, N_CEPS) orthonormal DCT-II (first N_CEPS rows) with the cepstral lifter."""
    k = np.arange(N_CEPS)[:, None]
    j = np.arange(N_MELS)[None, :]
    dct = np.sqrt(2.0 / N_MELS) * np.cos(np.pi / N_MELS * (j + 0.5) * k)
    dct[0] = np.sqrt(1.0 / N_MELS)
    lifter = 1.0 + 0.5 * LIFTER * np.sin(np.pi * np.arange(N_CEPS) / LIFTER)
    return (dct * lifter[:, None]).T


def frame_count(n_samples: int, win: int = FRAME_LENGTH, hop: int = FRAME_SHIFT) -> int:
    """Frames produced by Kaldi's ``snip_edges=True`` framing (98 for one second)."""
    return 0 if n_samples < win else 1 + (n_samples - win) // hop


def log_mel(wave: np.ndarray, n_mels: int = N_MELS, win: int = FRAME_LENGTH,
            hop: int = FRAME_SHIFT, low_freq: float = LOW_FREQ,
            sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(T, n_mels) float64 Kaldi log mel energies (``fbank``, ``dither=0``): frames of ``win``
    samples every ``hop``, DC removed, pre-emphasis, Povey window, power spectrum, mel filters,
    floored at FLT_EPSILON, log. The MFCCs are these times a DCT; the log-mel front end
    (``nn/filterbank.py``) computes the same in torch."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    n_frames = frame_count(wave.size, win, hop)
    if n_frames == 0:
        return np.zeros((0, n_mels), dtype=np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(wave, win)[::hop]
    frames = frames[:n_frames] - frames[:n_frames].mean(axis=1, keepdims=True)  # copies
    # Kaldi pre-emphasis: x[i] -= a*x[i-1] for i>0 and x[0] -= a*x[0].
    frames[:, 1:] -= PREEMPH * frames[:, :-1].copy()
    frames[:, 0] *= 1.0 - PREEMPH
    frames *= povey_window(win)
    n_fft = fft_size(win)
    spec = np.fft.rfft(frames, n=n_fft, axis=1)
    power = spec.real**2 + spec.imag**2
    mel = np.maximum(power @ mel_banks(n_mels, n_fft, low_freq, sample_rate), _FLOAT_EPS)
    return np.log(mel)


def mfcc_static(wave: np.ndarray) -> np.ndarray:
    """(T, 13) float64 Kaldi MFCCs (``use_energy=False``, ``dither=0``)."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    if frame_count(wave.size) == 0:
        return np.zeros((0, N_CEPS), dtype=np.float64)
    return log_mel(wave) @ _dct_lifter()


def compute_deltas(feats: np.ndarray, win: int = DELTA_WIN) -> np.ndarray:
    """Regression deltas along time (axis 0), replicate-padded like torchaudio.

    ``d_t = sum_{n=1..win} n (c_{t+n} - c_{t-n}) / (2 sum_{n=1..win} n^2)``.
    """
    if feats.shape[0] == 0:
        return feats.copy()
    padded = np.pad(feats, ((win, win), (0, 0)), mode="edge")
    t = feats.shape[0]
    out = np.zeros_like(feats)
    for n in range(1, win + 1):
        out += n * (padded[win + n : win + n + t] - padded[win - n : win - n + t])
    return out / (2.0 * sum(n * n for n in range(1, win + 1)))


def mfcc_hubert(wave: np.ndarray) -> np.ndarray:
    """(T, 39) float32 features: 13 MFCCs, deltas and delta-deltas (no CMVN).

    ``wave`` is mono 16 kHz audio at its natural float scale (soundfile's [-1, 1]),
    exactly what fairseq feeds to torchaudio.  Audio shorter than one 25 ms frame
    yields a (0, 39) array.
    """
    static = mfcc_static(wave)
    d1 = compute_deltas(static)
    d2 = compute_deltas(d1)
    return np.concatenate([static, d1, d2], axis=1).astype(np.float32)
