"""Random draws keyed by the global row: distractors and Gumbel noise per utterance.

Each utterance of a global batch draws from its own generator, seeded by (step seed, stream,
global row index). A row's draws are then the same whichever micro-batch or rank computes it,
so splitting a batch into micro-batches or over ranks does not change the update. Each stream
is drawn from once per forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .common import derive_seed

#: streams 1 and 2 are the time and channel masks' (``masking.py``: drawn for the whole batch)
GUMBEL_STREAM, NEGATIVES_STREAM, CROSS_STREAM = 3, 4, 5
#: the noise that replaces masked frames (``SpanMask(replace="noise")``)
MASK_NOISE_STREAM = 6


class RowRandom:
    """Draws for the rows of one forward; ``rows[b]`` is local row b's global row index."""

    def __init__(self, seed: int, rows: Sequence[int], device: torch.device | str):
        self.seed, self.rows, self.device = int(seed), [int(r) for r in rows], device

    def generator(self, stream: int, b: int) -> torch.Generator:
        """Local row ``b``'s generator of ``stream``, fresh on every call."""
        g = torch.Generator(device=self.device)
        g.manual_seed(derive_seed(derive_seed(self.seed, stream), self.rows[b]))
        return g

    def uniform(self, stream: int, counts: Sequence[int], num: int) -> Tensor:
        """(Σ counts, num) float64 uniforms in [0, 1): ``counts[b]`` × ``num`` from row b's
        stream, rows in order (candidates grouped by row, as masked frames in row-major order)."""
        if num == 0:
            return torch.empty(sum(int(c) for c in counts), 0, device=self.device,
                               dtype=torch.float64)
        parts = [torch.rand(int(c), num, generator=self.generator(stream, b),
                            device=self.device, dtype=torch.float64)
                 for b, c in enumerate(counts) if int(c)]
        if not parts:
            return torch.empty(0, num, device=self.device, dtype=torch.float64)
        return torch.cat(parts)

    def gumbel(self, stream: int, shape: Sequence[int]) -> Tensor:
        """(B, *shape) float32 Gumbel(0, 1) noise, row b from row b's stream."""
        return torch.stack([
            -torch.empty(tuple(shape), device=self.device)
            .exponential_(generator=self.generator(stream, b)).log()
            for b in range(len(self.rows))])

    def normal(self, stream: int, shape: Sequence[int], std: float = 1.0,
               dtype: torch.dtype = torch.float32) -> Tensor:
        """(B, *shape) N(0, std²) noise, row b from row b's stream."""
        return torch.stack([
            torch.randn(tuple(shape), generator=self.generator(stream, b), device=self.device,
                        dtype=dtype) * std
            for b in range(len(self.rows))])

    def gumbel_noise(self, shape: Sequence[int]) -> Tensor:
        """A quantizer's training noise, (B, ...) = ``shape``, from the Gumbel stream."""
        if shape[0] != len(self.rows):
            raise ValueError(f"noise for {shape[0]} rows asked of {len(self.rows)}")
        return self.gumbel(GUMBEL_STREAM, shape[1:])
