"""Time-mask generation: ours (Numba, fairseq semantics) vs Hugging Face.

Hugging Face's ``_compute_mask_indices`` is what ``Wav2Vec2Model`` calls each step;
ours is :func:`ssl_graph.kernels.masking.compute_mask_indices` with fairseq semantics
(per-row random rounding, ``require_same_masks=True``), so ours does strictly more
work per row.  Numba compilation (or cache loading) happens in the warm-up and is
excluded.  Calls are timed one by one, in interleaved blocks so that background load
hits both sides alike, and the median is reported.

    python benchmarks/bench_masking.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ssl_graph.kernels import masking
from ssl_graph.kernels.masking import compute_mask_indices

B, T, PROB, M, MIN_MASKS = 32, 800, 0.65, 10, 2


def time_calls(
    fns: dict[str, Callable[[int], np.ndarray]], calls: int, block: int = 100
) -> dict[str, float]:
    """Median seconds per call of each fn, run in interleaved blocks of ``block`` calls."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    clock = time.perf_counter
    for b in range(0, calls, block):
        for name, fn in fns.items():
            out = samples[name]
            for j in range(b, min(b + block, calls)):
                t0 = clock()
                fn(j)
                out.append(clock() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def coverage(fn: Callable[[int], np.ndarray], n: int = 300) -> float:
    return float(np.mean([fn(s).mean() for s in range(n)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=3000, help="timed calls per function")
    args = ap.parse_args()

    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

    def hf(seed: int) -> np.ndarray:  # HF draws from numpy's global RNG
        return _compute_mask_indices((B, T), PROB, M, min_masks=MIN_MASKS)

    def ours(seed: int, **kw) -> np.ndarray:
        return compute_mask_indices((B, T), PROB, M, min_masks=MIN_MASKS, seed=seed, **kw)

    variants: dict[str, Callable[[int], np.ndarray]] = {
        "ours (fairseq, static)": ours,
        "hf _compute_mask_indices": hf,
    }
    info: dict[str, Callable[[int], np.ndarray]] = {
        "ours require_same_masks=False": lambda s: ours(s, require_same_masks=False),
        "ours no_overlap, min_space=1": lambda s: ours(s, no_overlap=True, min_space=1),
        "ours uniform [0, 2M]": lambda s: ours(s, mask_type="uniform"),
        "ours normal(M, 2)": lambda s: ours(s, mask_type="normal", mask_other=2.0),
        "ours poisson(M)": lambda s: ours(s, mask_type="poisson"),
        "ours static + mask_dropout=0.1": lambda s: ours(s, mask_dropout=0.1),
    }
    t0 = time.perf_counter()
    for fn in (*variants.values(), *info.values()):
        for s in range(20):
            fn(s)
    print(f"warm-up incl. numba compile/cache load: {time.perf_counter() - t0:.2f} s")
    print(
        f"batch B={B} T={T} mask_prob={PROB} M={M} min_masks={MIN_MASKS}, "
        f"median over {args.calls} calls\n"
    )

    med = time_calls(variants, args.calls)
    med |= time_calls(info, max(args.calls // 3, 100))
    print(f"{'':34s} {'ms/batch':>9s} {'coverage':>9s}")
    for name, fn in {**variants, **info}.items():
        print(f"{name:34s} {med[name] * 1e3:9.4f} {coverage(fn):9.3f}")
    ratio = med["hf _compute_mask_indices"] / med["ours (fairseq, static)"]
    print(f"\nspeedup ours vs HF (static, per batch): {ratio:.1f}x")
    print(f"reference 1-(1-p)^M: {1 - (1 - PROB / M) ** M:.3f} (before equalisation)")

    # A larger batch, for information (the prange driver starts at 2**20 cells).
    big_b, big_t = 256, 1600
    big = {
        "ours B=256 T=1600": lambda s: compute_mask_indices(
            (big_b, big_t), PROB, M, min_masks=MIN_MASKS, seed=s
        ),
        "hf B=256 T=1600": lambda s: _compute_mask_indices(
            (big_b, big_t), PROB, M, min_masks=MIN_MASKS
        ),
    }
    for fn in big.values():
        fn(0)
    med = time_calls(big, 200, block=20)
    driver = "prange" if big_b * big_t >= masking._PARALLEL_MIN_CELLS else "serial"
    print(
        f"\nB={big_b} T={big_t} ({driver} driver): "
        + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in med.items())
        + f", speedup {med['hf B=256 T=1600'] / med['ours B=256 T=1600']:.1f}x"
    )


if __name__ == "__main__":
    main()
