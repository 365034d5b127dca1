"""Tests for ssl_graph.audio.mfcc (HuBERT's Kaldi MFCC + deltas, dither 0).

Three independent references for the 13 static coefficients:
* kaldi-native-fbank (a C++ port of Kaldi's feature code), when installed;
* a slow per-frame implementation written from the Kaldi algorithm description;
* physical identities (gain shifts only c0, DC offset is removed).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ssl_graph.audio.mfcc import compute_deltas, frame_count, mfcc_hubert, mfcc_static

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "wav"


def speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Real audio from the demo corpus if present, else a modulated tone plus noise."""
    files = sorted(DEMO.glob("*.flac")) if DEMO.is_dir() else []
    if files:
        import soundfile as sf

        wave, sr = sf.read(files[seed % len(files)], dtype="float32")
        assert sr == 16000
        return wave[: int(seconds * 16000)]
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.6 * np.sin(2 * np.pi * 4 * t))
    return (tone + 0.03 * rng.standard_normal(t.size)).astype(np.float32)


def slow_reference(wave: np.ndarray) -> np.ndarray:
    """Frame-by-frame Kaldi MFCC (use_energy=False, dither=0), written plainly."""

    def mel(f: float) -> float:
        return 1127.0 * math.log(1.0 + f / 700.0)

    n_mel, n_fft, frames = 23, 512, []
    lo, hi = mel(20.0), mel(8000.0)
    step = (hi - lo) / (n_mel + 1)
    for start in range(0, len(wave) - 400 + 1, 160):
        f = [float(v) for v in wave[start : start + 400]]
        mean = sum(f) / 400
        f = [v - mean for v in f]
        f = [f[0] * (1 - 0.97)] + [f[i] - 0.97 * f[i - 1] for i in range(1, 400)]
        f = [v * (0.5 - 0.5 * math.cos(2 * math.pi * i / 399)) ** 0.85 for i, v in enumerate(f)]
        spec = np.fft.fft(np.array(f + [0.0] * (n_fft - 400)))
        power = np.abs(spec[: n_fft // 2]) ** 2
        energies = []
        for m in range(n_mel):
            left, center, right = lo + m * step, lo + (m + 1) * step, lo + (m + 2) * step
            e = 0.0
            for b in range(n_fft // 2):
                z = mel(b * 16000 / n_fft)
                if left < z <= center:
                    e += power[b] * (z - left) / (center - left)
                elif center < z < right:
                    e += power[b] * (right - z) / (right - center)
            energies.append(math.log(max(e, np.finfo(np.float32).eps)))
        ceps = []
        for k in range(13):
            scale = math.sqrt((1 if k == 0 else 2) / n_mel)
            c = scale * sum(
                energies[j] * math.cos(math.pi * k * (j + 0.5) / n_mel) for j in range(n_mel)
            )
            ceps.append(c * (1 + 11 * math.sin(math.pi * k / 22)))
        frames.append(ceps)
    return np.array(frames).reshape(-1, 13)


def assert_close(ours: np.ndarray, ref: np.ndarray, rel: float = 1e-3) -> None:
    # relative to each coefficient's scale (c0 ~ 100, higher ones ~ 1-10)
    scale = np.abs(ref).max(axis=0) + 1e-6
    err = np.abs(ours - ref) / scale
    assert err.max() < rel, f"max scaled error {err.max():.2e}"


def test_matches_kaldi_native_fbank():
    knf = pytest.importorskip("kaldi_native_fbank")
    wave = speechlike(2.0)
    opts = knf.MfccOptions()
    opts.frame_opts.dither = 0.0
    opts.use_energy = False
    comp = knf.OnlineMfcc(opts)
    comp.accept_waveform(16000, wave.tolist())
    comp.input_finished()
    ref = np.stack([comp.get_frame(i) for i in range(comp.num_frames_ready)])
    ours = mfcc_hubert(wave)[:, :13]
    assert ours.shape == ref.shape
    assert_close(ours, ref)


def test_matches_slow_per_frame_reference():
    wave = speechlike(0.3, seed=1)
    assert_close(mfcc_static(wave), slow_reference(wave), rel=1e-6)


@pytest.mark.parametrize(
    ("n", "t"), [(0, 0), (399, 0), (400, 1), (559, 1), (560, 2), (16000, 98), (16000 * 3 + 17, 298)]
)
def test_frame_count_snip_edges(n, t):
    feats = mfcc_hubert(np.zeros(n, dtype=np.float32) + 0.1)
    assert feats.shape == (t, 39) and feats.dtype == np.float32
    assert frame_count(n) == t


def test_gain_shifts_only_c0_and_dc_is_removed():
    # light noise keeps every mel energy above the log floor (the corpus has digital
    # silence), so the identities below are exact up to round-off
    noise = 1e-2 * np.random.default_rng(0).standard_normal(8000)
    wave = speechlike(0.5, seed=2).astype(np.float64) + noise
    base = mfcc_static(wave)
    louder = mfcc_static(2.0 * wave)
    # log-mel energies all grow by ln 4; the orthonormal DCT row 0 sums them / sqrt(23)
    np.testing.assert_allclose(louder[:, 0] - base[:, 0], math.sqrt(23) * math.log(4), rtol=1e-6)
    np.testing.assert_allclose(louder[:, 1:], base[:, 1:], atol=1e-6)
    np.testing.assert_allclose(mfcc_static(wave + 0.25), base, atol=1e-6)


def test_deltas_of_a_ramp():
    # c_t = 3t + 1: interior delta = sum_n n*(2n*3) / (2 sum n^2) = 3.  With replicate
    # padding, t=0 sees (c1-c0) + 2(c2-c0) = 3 + 12 = 15 -> 1.5; t=1 sees (c2-c0) +
    # 2(c3-c0) = 6 + 18 = 24 -> 2.4, and symmetrically at the end.
    c = (3.0 * np.arange(10) + 1.0)[:, None]
    d = compute_deltas(c)[:, 0]
    np.testing.assert_allclose(d, [1.5, 2.4, 3, 3, 3, 3, 3, 3, 2.4, 1.5])
    dd = compute_deltas(compute_deltas(c))[:, 0]
    assert np.allclose(dd[4:6], 0.0) and dd[0] > 0 > dd[-1]


def test_layout_is_static_delta_delta2():
    wave = speechlike(1.0, seed=3)
    feats = mfcc_hubert(wave)
    static = mfcc_static(wave)
    d1 = compute_deltas(static)
    np.testing.assert_allclose(feats[:, :13], static, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(feats[:, 13:26], d1, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(feats[:, 26:], compute_deltas(d1), rtol=1e-6, atol=1e-5)


def test_deterministic():
    wave = speechlike(1.0, seed=4)
    a, b = mfcc_hubert(wave), mfcc_hubert(wave.copy())
    assert a.tobytes() == b.tobytes()
