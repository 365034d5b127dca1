"""Shared benchmark input: ~200k x 39 HuBERT MFCC frames, cached on disk.

Source, in order of preference:

* ``data/demo/wav/*.flac`` (the demo corpus: 8 min, ~48k frames).  To reach the
  target size without another corpus we add augmented copies, as is standard for
  speech: speed perturbation by resampling to 0.9x and 1.1x speed (scipy
  ``resample_poly``; 0.9x speed = longer audio) and copies with light seeded white
  noise (30 dB SNR per utterance).  Frames are then subsampled (seeded) to the
  requested count.
* Otherwise (corpus not generated yet) a synthetic speech-like signal: vowel-like
  segments (glottal pulse trains through formant resonators), fricative noise,
  bursts and near-silence, run through the same MFCC front end.  A warning is
  printed because numbers on it are only indicative.

The result is cached as ``benchmarks/.cache/frames_<source>_<n>_<hash>.npy``.

``layer_frames_path`` makes iteration-2-shaped (768-d) frames from those: a fixed
seeded random-feature map of each MFCC frame and its two neighbours (GELU of a
117 → 768 projection, plus 5% isotropic noise), so the clusters keep the MFCC's
phonetic structure.  They stand in for HuBERT layer features (which need a trained
model); they are written chunk-wise to a ``.npy`` so a 1M-frame set (3 GB) never
has to sit in RAM.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ssl_graph.audio.mfcc import SAMPLE_RATE, mfcc_hubert

CACHE = Path(__file__).resolve().parent / ".cache"
CORPUS = ROOT / "data" / "demo" / "wav"
SNR_DB = 30.0


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.flac")) if CORPUS.is_dir() else []


def _augmented(wave: np.ndarray, copy: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import resample_poly

    if copy == 1:
        return resample_poly(wave, 10, 9).astype(np.float32)  # 0.9x speed
    if copy == 2:
        return resample_poly(wave, 10, 11).astype(np.float32)  # 1.1x speed
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) or 1e-4
    noise = rng.standard_normal(wave.size) * rms * 10 ** (-SNR_DB / 20)
    return (wave + noise).astype(np.float32)


def _corpus_frames(files: list[Path], n_frames: int, seed: int) -> np.ndarray:
    import soundfile as sf

    waves = []
    for f in files:
        w, sr = sf.read(f, dtype="float32", always_2d=True)
        if sr != SAMPLE_RATE:
            raise ValueError(f"{f}: expected {SAMPLE_RATE} Hz, got {sr}")
        waves.append(w.mean(axis=1))
    rng = np.random.default_rng(seed)
    feats = [mfcc_hubert(w) for w in waves]
    total, copy = sum(len(f) for f in feats), 1
    while total < n_frames:
        for w in waves:
            feats.append(mfcc_hubert(_augmented(w, min(3, copy), rng)))
            total += len(feats[-1])
        copy += 1
    return _subsample(np.concatenate(feats), n_frames, rng)


def _subsample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= n:
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(x[np.sort(rng.choice(len(x), n, replace=False))])


def synthetic_speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like 16 kHz audio: voiced/fricative/burst/silence segments."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    vowels = rng.uniform([250, 700, 2200], [850, 2300, 3200], size=(12, 3))
    out, n_total = [], int(seconds * SAMPLE_RATE)
    while sum(len(o) for o in out) < n_total:
        n = int(rng.uniform(0.04, 0.2) * SAMPLE_RATE)
        kind = rng.choice(4, p=[0.55, 0.2, 0.1, 0.15])
        if kind == 0:  # voiced: pulse train through three formant resonators
            f0 = rng.uniform(90, 240)
            src = np.zeros(n)
            src[(np.arange(0, n, SAMPLE_RATE / f0)).astype(int)] = 1.0
            seg = src
            for f, bw in zip(
                vowels[rng.integers(len(vowels))] * rng.uniform(0.95, 1.05), (80, 100, 150)
            ):
                r = np.exp(-np.pi * bw / SAMPLE_RATE)
                a = [1.0, -2 * r * np.cos(2 * np.pi * f / SAMPLE_RATE), r * r]
                seg = lfilter([1.0 - r], a, seg)
            seg *= 0.3 / (np.abs(seg).max() + 1e-9)
        elif kind == 1:  # fricative: high-passed noise
            seg = lfilter([1.0, -rng.uniform(0.7, 0.99)], [1.0], rng.standard_normal(n)) * 0.05
        elif kind == 2:  # burst: decaying noise
            seg = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.01 * SAMPLE_RATE)) * 0.2
        else:  # near-silence
            seg = rng.standard_normal(n) * 1e-3
        out.append(seg * rng.uniform(0.3, 1.0))
    return np.concatenate(out)[:n_total].astype(np.float32)


def load_frames(n_frames: int = 200_000, seed: int = 0) -> tuple[np.ndarray, str]:
    """(n_frames, 39) float32 MFCC frames and a description of their source."""
    files = _corpus_files()
    h = hashlib.sha1(f"{n_frames}:{seed}".encode())
    for f in files:
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    source = "corpus" if files else "synthetic"
    path = CACHE / f"frames_{source}_{n_frames}_{h.hexdigest()[:10]}.npy"
    if source == "synthetic":
        print(
            "WARNING: data/demo/wav/*.flac not found; using synthetic speech-like audio",
            file=sys.stderr,
        )
    if path.exists():
        return np.load(path), f"{source} (cached {path.name})"
    if files:
        x = _corpus_frames(files, n_frames, seed)
        desc = f"corpus: {len(files)} files + speed/noise copies"
    else:
        seconds = (n_frames + 10) * 0.01 + 0.03
        x = mfcc_hubert(synthetic_speech(seconds, seed))[:n_frames]
        desc = "synthetic speech-like audio"
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x, desc


LAYER_DIM = 768
_LAYER_VERSION = 1


def layer_frames_path(n_frames: int, seed: int = 0, dim: int = LAYER_DIM) -> Path:
    """Path of a cached (n_frames, dim) float32 ``.npy`` of layer-like frames."""
    mfcc, _ = load_frames(n_frames, seed)
    h = hashlib.sha1(f"{_LAYER_VERSION}:{dim}:{seed}".encode() + mfcc[:1000].tobytes())
    path = CACHE / f"layer{dim}_{n_frames}_{h.hexdigest()[:10]}.npy"
    if path.exists():
        return path
    rng = np.random.default_rng([seed, dim])
    ctx = np.concatenate([np.roll(mfcc, 1, axis=0), mfcc, np.roll(mfcc, -1, axis=0)], axis=1)
    mu, sd = ctx.mean(axis=0), ctx.std(axis=0) + 1e-6
    w = (rng.standard_normal((ctx.shape[1], dim)) / np.sqrt(ctx.shape[1])).astype(np.float32)
    b = rng.standard_normal(dim).astype(np.float32) * 0.5
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_frames, dim))
    for s in range(0, n_frames, 50_000):
        z = ((ctx[s : s + 50_000] - mu) / sd).astype(np.float32) @ w + b
        gelu = 0.5 * z * (1.0 + np.tanh(0.7978846 * (z + 0.044715 * z**3)))
        out[s : s + len(z)] = gelu + 0.05 * rng.standard_normal(z.shape, dtype=np.float32)
    out.flush()
    del out
    tmp.rename(path)
    return path


if __name__ == "__main__":
    frames, what = load_frames()
    print(frames.shape, frames.dtype, what)
