"""WavLM's utterance mixing, applied where a step's crops are decoded (``data.CropSampler``).

Every draw is a function of (seed, step, global row) and of the step's plan
(``batching.StepPlan``: every row's utterance, crop start and width), so the rows a rank or
micro-batch holds are mixed exactly as in one unsplit forward: a row's secondary segment is
decoded from the secondary's own crop (never from a mixed row), wherever that row lives.
Labels are untouched: the targets stay the primary utterance's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..specs.components_objectives import UtteranceMixing
from .batching import StepPlan

#: the crop starts use (seed, step, 2); mixing draws from (seed, step, MIX_STREAM, row)
MIX_STREAM = 3


@dataclass(frozen=True)
class Mix:
    """One row's mixing: ``length`` samples of row ``secondary``'s crop from ``src`` are added
    at ``dst`` of the primary, at ``ratio_db`` = 10 log10(power of primary / of segment)."""

    secondary: int
    length: int
    dst: int
    src: int
    ratio_db: float


def _rows(plan: StepPlan) -> list[tuple[str, int, int]]:
    """(utterance, crop start, width) of every global row of the step, in row order."""
    return [(u, s, g.width) for g in plan.groups for u, s in zip(g.utts, g.starts)]


def mixing_plan(spec: UtteranceMixing, plan: StepPlan, seed: int) -> dict[int, Mix]:
    """The rows of the step's global batch that are mixed, and how (a pure function)."""
    rows = _rows(plan)
    n, out = len(rows), {}
    if n < 2 or spec.prob == 0:
        return out
    lo, hi = spec.energy_ratio
    for r, (_, _, width) in enumerate(rows):
        u = np.random.default_rng([seed, plan.step, MIX_STREAM, r]).random(6)
        if u[0] >= spec.prob:
            continue
        j = min(int(u[1] * (n - 1)), n - 2)
        j += j >= r  # any other row of the global batch
        other = rows[j][2]
        longest = max(1, min(int(spec.max_overlap * width), other))
        length = min(1 + int(u[2] * longest), longest)
        dst = min(int(u[3] * (width - length + 1)), width - length)
        src = min(int(u[4] * (other - length + 1)), other - length)
        out[r] = Mix(j, length, dst, src, lo + float(u[5]) * (hi - lo))
    return out


def mix_rows(mixes: dict[int, Mix], plan: StepPlan, wave: np.ndarray, global_rows,
             read: Callable[[str], np.ndarray]) -> np.ndarray:
    """``wave`` (B, S): rows ``global_rows`` of the step, mixed in place as ``mixes``
    (:func:`mixing_plan`) says; ``read(utt)`` decodes a whole utterance."""
    if not mixes:
        return wave
    rows = _rows(plan)
    for b, r in enumerate(int(x) for x in global_rows):
        m = mixes.get(r)
        if m is None:
            continue
        utt, start, _ = rows[m.secondary]
        seg = read(utt)[start + m.src:start + m.src + m.length].astype(np.float64)
        primary = wave[b].astype(np.float64)
        e_p, e_s = float(np.mean(primary ** 2)), float(np.mean(seg ** 2))
        if e_s <= 0.0 or e_p <= 0.0:
            continue  # silence on either side: nothing to scale to a ratio
        scale = np.sqrt(e_p / (e_s * 10.0 ** (m.ratio_db / 10.0)))
        primary[m.dst:m.dst + m.length] += scale * seg
        wave[b] = primary.astype(wave.dtype)
    return wave
